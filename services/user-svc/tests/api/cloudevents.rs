//! A consumer parses every event of the pull feed with the CloudEvents SDK (the `cloudevents`
//! package, through `scripts/events/check_cloudevents.py`) and refuses a malformed one.
//! `CLOUDEVENTS_PYTHON` names a Python with that package (`scripts/test.sh` provisions it).

use std::path::PathBuf;
use std::process::{Output, Stdio};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::events::{all_events, created_edited_activated_and_promoted, events_of};
use crate::helpers::spawn_app;
use crate::sessions::Recorded;

const TYPES: [&str; 6] = [
    "created",
    "profile_changed",
    "status_changed",
    "role_changed",
    "sessions_revoked",
    "deleted",
];

/// Runs the SDK check on `events` and returns its output.
async fn check(events: &[Value]) -> Output {
    let python = std::env::var("CLOUDEVENTS_PYTHON").unwrap_or_else(|_| {
        panic!(
            "CLOUDEVENTS_PYTHON is not set: run scripts/test.sh, or export CLOUDEVENTS_PYTHON \
             (`. scripts/lib/provision.sh; ensure_cloudevents`) naming a Python with the \
             cloudevents package"
        )
    });
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/events/check_cloudevents.py");
    let mut child = tokio::process::Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {python} {}: {error}", script.display()));
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(&serde_json::to_vec(events).unwrap())
        .await
        .unwrap();
    drop(stdin);
    child.wait_with_output().await.unwrap()
}

#[tokio::test]
async fn every_event_of_the_feed_parses_with_the_cloudevents_sdk() {
    let app = spawn_app().await;
    let user = created_edited_activated_and_promoted(&app).await;
    let path = format!("/api/users/{}", user.id);
    Recorded::with_sessions(&app, user.id, &[(true, 1)]).await;
    app.call(Method::DELETE, &format!("{path}/sessions"))
        .token(&user.token)
        .send()
        .await
        .expect(200);
    app.delete(&path, &app.manager.token).await;
    events_of(&app, user.id, TYPES.len()).await;

    let events = all_events(&app).await;
    let output = check(&events).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the SDK check refused the feed: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let counts: Value = serde_json::from_str(stdout.trim()).unwrap();
    for suffix in TYPES {
        let kind = format!("dev.vottery.user.{suffix}");
        assert!(
            counts[&kind].as_u64().unwrap_or(0) >= 1,
            "no {kind}: {counts}"
        );
    }
    let total: u64 = counts
        .as_object()
        .unwrap()
        .values()
        .map(|count| count.as_u64().unwrap())
        .sum();
    assert_eq!(total, events.len() as u64, "{counts}");
}

#[tokio::test]
async fn the_cloudevents_check_refuses_a_malformed_event() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    let good = events_of(&app, user.id, 1).await.remove(0);
    assert!(check(std::slice::from_ref(&good)).await.status.success());

    let mut old_spec = good.clone();
    old_spec["specversion"] = json!("0.3");
    let mut no_id = good.clone();
    no_id.as_object_mut().unwrap().remove("id");
    let mut wrong_subject = good.clone();
    wrong_subject["subject"] = json!("0");
    for (malformed, reason) in [
        (old_spec, "specversion"),
        (no_id, "no id"),
        (wrong_subject, "subject"),
    ] {
        let output = check(&[good.clone(), malformed]).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "accepted: {reason}");
        assert!(
            stderr.contains("event 1 ") && stderr.contains(reason),
            "{reason}: {stderr}"
        );
    }
}
