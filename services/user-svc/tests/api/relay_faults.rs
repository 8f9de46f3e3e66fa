//! The relay through faults, each against a NATS server of the test's own: NATS stopped for ten
//! seconds in the middle of a write load, and a relaying user-svc process killed (SIGKILL)
//! partway through a backlog, and again while it holds a batch JetStream has acknowledged but
//! it has not marked, and started again. Both times every event reaches stream
//! `VOTTERY_USERS`, each user's in order, and what is sent twice is only ever a repeat of one
//! id, which JetStream drops by its `Nats-Msg-Id` and the relay counts.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures_util::future::join_all;
use reqwest::Method;
use tokio::process::Child;

use crate::helpers::{TestApp, closed_port, spawn_app, spawn_app_with};
use crate::nats_server::NatsServer;
use crate::relay::{
    assert_delivered, assert_delivered_with_repeats, metric, outbox, receive, unpublished,
    until_relayed,
};

/// Concurrent writers of the loads.
const WRITERS: usize = 4;

/// One user created, given a city and activated: three events. Every write must succeed.
async fn write_round(app: &TestApp) -> usize {
    app.created_edited_and_activated().await;
    3
}

/// `WRITERS` writers, each writing rounds one after another until `until`; the events written.
async fn write_until(app: &TestApp, until: Instant) -> usize {
    let writer = async || {
        let mut events = 0;
        while Instant::now() < until {
            events += write_round(app).await;
        }
        events
    };
    join_all((0..WRITERS).map(|_| writer())).await.iter().sum()
}

/// `WRITERS` writers writing `rounds` rounds each; the events written.
async fn write_rounds(app: &TestApp, rounds: usize) -> usize {
    let writer = async || {
        let mut events = 0;
        for _ in 0..rounds {
            events += write_round(app).await;
        }
        events
    };
    join_all((0..WRITERS).map(|_| writer())).await.iter().sum()
}

/// A JetStream client of `nats`, and the number of messages its stream holds.
async fn stream_messages(nats: &NatsServer) -> (jetstream::Context, u64) {
    let context = jetstream::new(async_nats::connect(nats.url()).await.expect("NATS answers"));
    let mut stream = context
        .get_stream("VOTTERY_USERS")
        .await
        .expect("the relay created the stream");
    let messages = stream.info().await.expect("stream info").state.messages;
    (context, messages)
}

#[tokio::test]
async fn nats_stopped_for_ten_seconds_under_write_load_loses_no_event() {
    let mut nats = NatsServer::start().await;
    let url = nats.url();
    let app = spawn_app_with(move |settings| {
        settings.events.nats_url = url;
        settings.events.poll_interval_ms = 20;
        settings.events.publish_timeout_ms = 1_000;
    })
    .await;

    let started = Instant::now();
    let outage = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        nats.stop();
        tokio::time::sleep(Duration::from_secs(10)).await;
        let waiting = unpublished(&app).await;
        nats.resume().await;
        waiting
    };
    let (written, waiting) =
        tokio::join!(write_until(&app, started + Duration::from_secs(15)), outage);
    assert!(
        waiting > 0,
        "the events written while NATS was down wait in the outbox"
    );
    until_relayed(&app).await;

    let outbox = outbox(&app).await;
    assert_eq!(
        outbox.len(),
        1 + written,
        "the manager's creation and the load's"
    );
    let ids: HashSet<String> = outbox.iter().map(|(id, _)| id.clone()).collect();
    let (context, stored) = stream_messages(&nats).await;
    let received = receive(&context, 1, &ids).await;
    assert_eq!(
        received.len() as u64,
        stored,
        "the stream holds the outbox's events and nothing else"
    );
    let repeats = assert_delivered_with_repeats(&outbox, &received);
    let metrics = app.call(Method::GET, "/metrics").send().await.text;
    assert!(metric(&metrics, "user_events_publish_errors_total") > 0.0);
    eprintln!(
        "{} events written by {WRITERS} writers over {:?}, {waiting} waiting when NATS came \
         back; in the stream: {} messages, {repeats} repeated ids; JetStream dropped {} repeats",
        outbox.len(),
        started.elapsed(),
        received.len(),
        metric(&metrics, "user_events_duplicates_total"),
    );
}

/// The built user-svc, relaying `app`'s outbox to `nats` `batch_size` rows a round, serving on
/// `port`, with `failpoints`; returns once it answers.
async fn relaying_process(
    app: &TestApp,
    nats: &NatsServer,
    batch_size: u32,
    port: u16,
    failpoints: &str,
) -> Child {
    let mut child = app
        .command(&[], &app.security.address)
        .env("FAILPOINTS", failpoints)
        .env("USER_SVC__APPLICATION__HOST", "127.0.0.1")
        .env("USER_SVC__APPLICATION__PORT", port.to_string())
        .env("USER_SVC__EVENTS__NATS_URL", nats.url())
        .env("USER_SVC__EVENTS__BATCH_SIZE", batch_size.to_string())
        .env("USER_SVC__EVENTS__POLL_INTERVAL_MS", "20")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("user-svc starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let live = format!("http://127.0.0.1:{port}/health/live");
    while reqwest::get(&live).await.is_err() {
        assert!(
            child.try_wait().expect("user-svc's state").is_none(),
            "user-svc exited at start"
        );
        assert!(Instant::now() < deadline, "user-svc did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child
}

/// NATS, and an app whose outbox holds `rounds` rounds of writes (after the manager's
/// creation), not yet relayed.
async fn backlog(rounds: usize) -> (NatsServer, TestApp, Vec<(String, String)>) {
    let nats = NatsServer::start().await;
    let app = spawn_app().await;
    let written = write_rounds(&app, rounds).await;
    let outbox = outbox(&app).await;
    assert_eq!(outbox.len(), 1 + written);
    (nats, app, outbox)
}

/// A second relaying process takes the outbox over and relays the rest: afterwards the stream
/// holds each of `outbox`'s events once, and all are delivered. Returns that process (running)
/// and its metrics.
async fn resume_relaying(
    app: &TestApp,
    nats: &NatsServer,
    outbox: &[(String, String)],
) -> (Child, String) {
    let port = closed_port();
    let second = relaying_process(app, nats, 500, port, "").await;
    until_relayed(app).await;
    let ids: HashSet<String> = outbox.iter().map(|(id, _)| id.clone()).collect();
    let (context, stored) = stream_messages(nats).await;
    assert_eq!(
        stored,
        outbox.len() as u64,
        "each event is in the stream once"
    );
    assert_delivered(outbox, &receive(&context, 1, &ids).await);
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("the metrics text");
    (second, metrics)
}

#[tokio::test]
async fn a_relaying_process_killed_mid_backlog_is_resumed_by_the_next_without_loss() {
    let (nats, app, outbox) = backlog(40).await;
    let total = outbox.len() as i64;

    // Two rows a round, so the backlog takes many rounds; killed once the first are marked.
    let mut first = relaying_process(&app, &nats, 2, closed_port(), "").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while unpublished(&app).await == total {
        assert!(Instant::now() < deadline, "the relay never published");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.start_kill().expect("SIGKILL is sent");
    first.wait().await.expect("the killed process is reaped");
    let marked = total - unpublished(&app).await;
    assert!(
        marked < total,
        "killed with {} rows unpublished",
        total - marked
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        total - unpublished(&app).await,
        marked,
        "nothing relays now"
    );
    // Rows JetStream acknowledged after the last commit are in the stream but not marked.
    let (_, stored_at_kill) = stream_messages(&nats).await;
    let acked_unmarked = stored_at_kill - marked as u64;

    let (_second, metrics) = resume_relaying(&app, &nats, &outbox).await;
    assert_eq!(
        metric(&metrics, "user_events_published_total"),
        (total - marked) as f64
    );
    assert_eq!(
        metric(&metrics, "user_events_duplicates_total"),
        acked_unmarked as f64,
        "what the killed relay had sent but not marked is sent again and dropped by JetStream"
    );
    eprintln!(
        "{total} events; killed after {marked} were marked and {stored_at_kill} stored; \
         {acked_unmarked} sent again and dropped as duplicates"
    );
}

#[tokio::test]
async fn a_relay_killed_between_the_acknowledgement_and_its_commit_sends_the_batch_again_once() {
    let (nats, app, outbox) = backlog(10).await;
    let total = outbox.len() as u64;

    // Five rounds of 20 commit; the sixth is acknowledged, then the relay stops before marking.
    let mut first = relaying_process(
        &app,
        &nats,
        20,
        closed_port(),
        "relay-acked=5*off->sleep(60000)",
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // The stream exists once rows are marked.
        let marked = total - unpublished(&app).await as u64;
        if marked == 100 && stream_messages(&nats).await.1 == 120 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sixth round was not acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.start_kill().expect("SIGKILL is sent");
    first.wait().await.expect("the killed process is reaped");
    assert_eq!(total - unpublished(&app).await as u64, 100);

    let (_second, metrics) = resume_relaying(&app, &nats, &outbox).await;
    assert_eq!(
        metric(&metrics, "user_events_duplicates_total"),
        20.0,
        "the acknowledged batch is sent again and dropped by JetStream"
    );
}
