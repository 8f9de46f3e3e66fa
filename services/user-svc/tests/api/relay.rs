//! The relay of user events to a real NATS JetStream server (`NATS_URL`, which
//! `scripts/test.sh` provides): every event reaches stream `VOTTERY_USERS` once, in order for
//! each user, with its id as `Nats-Msg-Id`; while NATS cannot be reached the events wait in the
//! outbox and the failures are counted, and they all arrive once a relay reaches it. The
//! stream is read whole over the test's range, so a repeat of an id would be seen and counted.
//! (`relay_faults` stops NATS under load and kills a relaying process.)

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::Value;

use crate::helpers::{TestApp, closed_port, spawn_app};

/// The NATS server the tests publish to.
pub(crate) fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| {
        panic!(
            "NATS_URL is not set: the relay tests need a NATS server with JetStream \
             (scripts/test.sh starts one; or export NATS_URL=nats://127.0.0.1:4222)"
        )
    })
}

/// The stream's next sequence number: where this test's messages start.
pub(crate) async fn stream_start(url: &str) -> (jetstream::Context, u64) {
    let client = async_nats::connect(url).await.expect("NATS answers");
    let context = jetstream::new(client);
    let mut stream = context
        .get_or_create_stream(stream::Config {
            name: "VOTTERY_USERS".into(),
            subjects: vec!["vottery.users.>".into()],
            ..Default::default()
        })
        .await
        .expect("the stream exists");
    let last = stream
        .info()
        .await
        .expect("stream info")
        .state
        .last_sequence;
    (context, last + 1)
}

/// Some users created and changed: several events each.
async fn write_users(app: &TestApp, count: usize) {
    for _ in 0..count {
        app.created_edited_and_activated().await;
    }
}

/// Every outbox row's id and subject, in sequence order.
pub(crate) async fn outbox(app: &TestApp) -> Vec<(String, String)> {
    app.rows("SELECT id::text AS id, subject::text AS subject FROM vottery_user_events ORDER BY sequence")
        .await
        .iter()
        .map(|row| (row["id"].as_str().unwrap().to_owned(), row["subject"].as_str().unwrap().to_owned()))
        .collect()
}

pub(crate) async fn unpublished(app: &TestApp) -> i64 {
    app.count("SELECT count(*) FROM vottery_user_events WHERE published_at IS NULL")
        .await
}

/// Waits until the outbox is fully relayed.
pub(crate) async fn until_relayed(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while unpublished(app).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the outbox was not relayed in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A message of the stream: its id header, the event, its subject.
pub(crate) struct Received {
    msg_id: String,
    event: Value,
    subject: String,
}

/// The stream's messages whose id is in `ids`, every one from `start` to the stream's last
/// message when called (repeats included), waiting up to 20 s for the ids still missing.
pub(crate) async fn receive(
    context: &jetstream::Context,
    start: u64,
    ids: &HashSet<String>,
) -> Vec<Received> {
    let mut stream = context
        .get_stream("VOTTERY_USERS")
        .await
        .expect("the stream");
    let end = stream
        .info()
        .await
        .expect("stream info")
        .state
        .last_sequence;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .expect("a consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut received = Vec::new();
    let mut seen = HashSet::new();
    let mut read_to = start.saturating_sub(1);
    let deadline = Instant::now() + Duration::from_secs(20);
    while (seen.len() < ids.len() || read_to < end) && Instant::now() < deadline {
        let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(1), messages.next()).await
        else {
            continue;
        };
        let message = message.expect("a message");
        read_to = message.info().expect("a stream message").stream_sequence;
        let msg_id = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get("Nats-Msg-Id"))
            .map(ToString::to_string)
            .unwrap_or_default();
        if !ids.contains(&msg_id) {
            continue;
        }
        seen.insert(msg_id.clone());
        received.push(Received {
            msg_id,
            event: serde_json::from_slice(&message.payload).expect("the payload is JSON"),
            subject: message.subject.to_string(),
        });
    }
    received
}

/// Every outbox event arrived, with its id as `Nats-Msg-Id`, on its type's subject, and each
/// user's events (first deliveries) in outbox order. Returns how many messages repeated an id
/// already delivered.
pub(crate) fn assert_delivered_with_repeats(
    outbox: &[(String, String)],
    received: &[Received],
) -> usize {
    let mut per_user: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut first = HashSet::new();
    let mut repeats = 0;
    for message in received {
        assert_eq!(message.event["id"], message.msg_id.as_str());
        if !first.insert(message.msg_id.as_str()) {
            repeats += 1;
            continue;
        }
        let suffix = message.event["type"]
            .as_str()
            .unwrap()
            .rsplit('.')
            .next()
            .unwrap();
        assert_eq!(message.subject, format!("vottery.users.{suffix}"));
        per_user
            .entry(message.event["subject"].as_str().unwrap())
            .or_default()
            .push(message.msg_id.as_str());
    }
    for (user, ids) in per_user {
        let expected: Vec<&str> = outbox
            .iter()
            .filter(|(_, subject)| subject == user)
            .map(|(id, _)| id.as_str())
            .collect();
        assert_eq!(ids, expected, "user {user}'s events in order");
    }
    assert_eq!(first.len(), outbox.len(), "every event arrives");
    repeats
}

/// Every outbox event is in the stream exactly once (JetStream dropped any repeat by its
/// `Nats-Msg-Id`), on its type's subject, each user's in outbox order.
pub(crate) fn assert_delivered(outbox: &[(String, String)], received: &[Received]) {
    let repeats = assert_delivered_with_repeats(outbox, received);
    assert_eq!(repeats, 0, "each event is in the stream once");
}

#[tokio::test]
async fn two_relaying_instances_deliver_every_event_once_in_order_per_user() {
    let url = nats_url();
    let (context, start) = stream_start(&url).await;
    let app = spawn_app().await;
    write_users(&app, 4).await;
    let mut instances = Vec::new();
    for _ in 0..2 {
        let instance = app
            .start_instance(|settings| {
                settings.events.nats_url = nats_url();
                settings.events.poll_interval_ms = 20;
                settings.events.batch_size = 3;
            })
            .await;
        instances.push(instance);
    }
    write_users(&app, 3).await;
    until_relayed(&app).await;

    let outbox = outbox(&app).await;
    let ids: HashSet<String> = outbox.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids.len(), 1 + 7 * 3);
    assert_delivered(&outbox, &receive(&context, start, &ids).await);

    // Each row was acknowledged and marked by one instance only, and none was sent twice.
    let (mut published, mut duplicates) = (0.0, 0.0);
    for instance in &instances {
        let text = app
            .call_at(instance, Method::GET, "/metrics")
            .send()
            .await
            .text;
        published += metric(&text, "user_events_published_total");
        duplicates += metric(&text, "user_events_duplicates_total");
    }
    assert_eq!(
        published,
        outbox.len() as f64,
        "each row is marked by one relay"
    );
    assert_eq!(
        duplicates, 0.0,
        "JetStream dropped no repeat: none was sent"
    );
}

#[tokio::test]
async fn events_wait_while_nats_is_unreachable_and_all_arrive_once_it_is_reached() {
    let url = nats_url();
    let (context, start) = stream_start(&url).await;
    let app = spawn_app().await;
    let dead = app
        .start_instance(|settings| {
            settings.events.nats_url = format!("nats://127.0.0.1:{}", closed_port());
            settings.events.publish_timeout_ms = 300;
            settings.events.poll_interval_ms = 20;
        })
        .await;
    write_users(&app, 3).await;
    let errors = async || {
        let reply = app.call_at(&dead, Method::GET, "/metrics").send().await;
        metric(&reply.text, "user_events_publish_errors_total")
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while errors().await < 2.0 {
        assert!(Instant::now() < deadline, "publish errors are not counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let outbox = outbox(&app).await;
    assert_eq!(
        unpublished(&app).await,
        outbox.len() as i64,
        "nothing is marked sent"
    );
    let metrics = app
        .call_at(&dead, Method::GET, "/metrics")
        .send()
        .await
        .text;
    assert_eq!(
        metric(&metrics, "user_events_outbox_depth"),
        outbox.len() as f64
    );
    assert!(metric(&metrics, "user_events_relay_lag_seconds") > 0.0);

    app.start_instance(|settings| settings.events.nats_url = nats_url())
        .await;
    until_relayed(&app).await;
    let ids: HashSet<String> = outbox.iter().map(|(id, _)| id.clone()).collect();
    assert_delivered(&outbox, &receive(&context, start, &ids).await);
}

/// A metric's value in the Prometheus text.
pub(crate) fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}
