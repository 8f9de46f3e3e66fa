//! The relay: publishes the outbox to the JetStream stream `VOTTERY_USERS`, subject
//! `vottery.users.<type>`, with `Nats-Msg-Id` set to the event id, in sequence order, and marks
//! rows published only once JetStream has acknowledged them.
//!
//! One instance relays at a time: each round runs in a transaction that first takes a
//! transaction-scoped advisory lock, and an instance that does not get it waits for the next
//! round. `FOR UPDATE SKIP LOCKED` would let two instances publish neighbouring rows at once,
//! so two events of one user could reach the stream in either order; with one publisher they
//! go in sequence order, which for each user is commit order (a user's events are inserted
//! under the lock of the user's audit chain). The lock goes with the transaction, so a relay
//! that dies hands over at once. A crash between an ack and the commit sends those rows
//! again: delivery is at least once, and JetStream drops a repeated `Nats-Msg-Id` within its
//! duplicate window (the acknowledgement then says so, and the relay counts it). A round sends
//! its batch before awaiting the acks; when one fails, the rows from it on are sent again next
//! round.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, Context, context::PublishAckFuture};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Bool, Jsonb, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use vottery_server::db::DbPool;

use super::metrics::RelayMetrics;
use crate::configuration::EventSettings;

/// The stream the events go to, and its subjects.
pub const STREAM: &str = "VOTTERY_USERS";
pub const SUBJECTS: &str = "vottery.users.>";

/// Key of the advisory lock held by the instance relaying this round.
const RELAY_LOCK: i64 = 0x766f_7465_7265_6c79;
/// How often relayed rows past their retention are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Starts the relay of `settings.nats_url`.
pub fn spawn(
    pool: DbPool,
    settings: EventSettings,
    metrics: Arc<RelayMetrics>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        match connect(&settings).await {
            Ok(jetstream) => run(&pool, &jetstream, &settings, &metrics).await,
            Err(error) => tracing::error!(%error, "the event relay cannot start"),
        }
    })
}

/// A JetStream context on a client that keeps (re)connecting in the background. A round holds
/// up to a batch of acknowledgements in flight, and those a failed round leaves unawaited are
/// given up after the publish timeout, so the next round always finds room for its batch.
async fn connect(settings: &EventSettings) -> Result<Context, async_nats::ConnectError> {
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        .connect(settings.nats_url.trim())
        .await?;
    let timeout = Duration::from_millis(settings.publish_timeout_ms);
    let in_flight = usize::try_from(settings.batch_size.max(1)).unwrap_or(usize::MAX);
    Ok(jetstream::ContextBuilder::new()
        .timeout(timeout)
        .ack_timeout(timeout)
        .max_ack_inflight(in_flight.saturating_mul(2))
        .build(client))
}

/// Relays rounds forever: the stream first, then the rows, then the measures and the pruning.
async fn run(pool: &DbPool, jetstream: &Context, settings: &EventSettings, metrics: &RelayMetrics) {
    let mut stream_ready = false;
    let mut pruned_at: Option<Instant> = None;
    loop {
        if !stream_ready {
            stream_ready = ensure_stream(jetstream, metrics).await;
        }
        let more = stream_ready && round(pool, jetstream, settings, metrics).await;
        measure(pool, metrics).await;
        if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            prune(pool, settings.retention_hours).await;
            pruned_at = Some(Instant::now());
        }
        if !more {
            tokio::time::sleep(Duration::from_millis(settings.poll_interval_ms)).await;
        }
    }
}

/// Creates the stream unless it exists; false (and an error counted) when NATS does not answer.
async fn ensure_stream(jetstream: &Context, metrics: &RelayMetrics) -> bool {
    let config = jetstream::stream::Config {
        name: STREAM.into(),
        subjects: vec![SUBJECTS.into()],
        ..Default::default()
    };
    match jetstream.get_or_create_stream(config).await {
        Ok(_) => true,
        Err(error) => {
            metrics.publish_errors.inc();
            tracing::warn!(%error, "cannot reach the JetStream stream {STREAM}");
            false
        }
    }
}

/// What one round did.
#[derive(Debug, Default)]
struct Relayed {
    published: usize,
    /// Of those, how many JetStream already held (same `Nats-Msg-Id`) and dropped.
    duplicates: usize,
    failed: Option<String>,
}

/// One round; true when it published a whole batch (so more may be waiting).
async fn round(
    pool: &DbPool,
    jetstream: &Context,
    settings: &EventSettings,
    metrics: &RelayMetrics,
) -> bool {
    let limit = settings.batch_size.max(1);
    let result = async {
        let mut conn = pool
            .get()
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        conn.transaction::<_, anyhow::Error, _>(async |conn| {
            relay_batch(conn, jetstream, limit).await
        })
        .await
    }
    .await;
    match result {
        Ok(relayed) => {
            metrics.published.add(relayed.published as u64);
            metrics.duplicates.add(relayed.duplicates as u64);
            if let Some(error) = &relayed.failed {
                metrics.publish_errors.inc();
                tracing::warn!(error, "publishing user events failed; they are retried");
            }
            relayed.failed.is_none() && relayed.published == limit as usize
        }
        Err(error) => {
            tracing::warn!(%error, "a relay round failed");
            false
        }
    }
}

#[derive(QueryableByName)]
struct Leader {
    #[diesel(sql_type = Bool)]
    leads: bool,
}

#[derive(QueryableByName)]
struct OutboxRow {
    #[diesel(sql_type = BigInt)]
    sequence: i64,
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Jsonb)]
    payload: serde_json::Value,
}

/// Inside the round's transaction: if this instance leads, publishes the oldest unpublished
/// rows and marks those acknowledged, in order, up to the first that was not.
async fn relay_batch(
    conn: &mut AsyncPgConnection,
    jetstream: &Context,
    limit: u32,
) -> anyhow::Result<Relayed> {
    let leader: Leader = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS leads")
        .bind::<BigInt, _>(RELAY_LOCK)
        .get_result(conn)
        .await?;
    if !leader.leads {
        return Ok(Relayed::default());
    }
    let rows: Vec<OutboxRow> = diesel::sql_query(
        "SELECT sequence, id::text AS id, type AS kind, payload FROM vottery_user_events \
         WHERE published_at IS NULL ORDER BY sequence LIMIT $1",
    )
    .bind::<BigInt, _>(i64::from(limit))
    .load(conn)
    .await?;
    let acked = publish(jetstream, &rows).await;
    // JetStream holds the batch; a relay that dies here sends it again next round.
    fail::fail_point!("relay-acked");
    let sequences: Vec<i64> = rows[..acked.published]
        .iter()
        .map(|row| row.sequence)
        .collect();
    diesel::sql_query(
        "UPDATE vottery_user_events SET published_at = now() WHERE sequence = ANY($1)",
    )
    .bind::<Array<BigInt>, _>(sequences)
    .execute(conn)
    .await?;
    Ok(acked)
}

/// Sends every row, then awaits the acks in order: how many were acknowledged before the first
/// failure (and how many of those as duplicates), and that failure.
async fn publish(jetstream: &Context, rows: &[OutboxRow]) -> Relayed {
    let mut pending: Vec<PublishAckFuture> = Vec::with_capacity(rows.len());
    let mut failed = None;
    for row in rows {
        match send(jetstream, row).await {
            Ok(ack) => pending.push(ack),
            Err(error) => {
                failed = Some(error);
                break;
            }
        }
    }
    let mut acked = Relayed::default();
    for ack in pending {
        match ack.await {
            Ok(ack) => {
                acked.published += 1;
                acked.duplicates += usize::from(ack.duplicate);
            }
            Err(error) => {
                acked.failed = Some(error.to_string());
                return acked;
            }
        }
    }
    acked.failed = failed;
    acked
}

/// Publishes one row to `vottery.users.<type suffix>` with its id as `Nats-Msg-Id`.
async fn send(jetstream: &Context, row: &OutboxRow) -> Result<PublishAckFuture, String> {
    let suffix = row.kind.rsplit('.').next().unwrap_or(&row.kind);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, row.id.as_str());
    let body = serde_json::to_vec(&row.payload).map_err(|error| error.to_string())?;
    jetstream
        .publish_with_headers(format!("vottery.users.{suffix}"), headers, body.into())
        .await
        .map_err(|error| error.to_string())
}

#[derive(QueryableByName)]
struct Depth {
    #[diesel(sql_type = BigInt)]
    depth: i64,
    #[diesel(sql_type = BigInt)]
    lag_millis: i64,
}

/// Measures the outbox: its unpublished rows and the age of the oldest.
async fn measure(pool: &DbPool, metrics: &RelayMetrics) {
    let measured = async {
        let mut conn = pool
            .get()
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        let depth: Depth = diesel::sql_query(
            "SELECT count(*) AS depth, COALESCE((EXTRACT(EPOCH FROM now() - min(created_at)) \
             * 1000)::bigint, 0) AS lag_millis \
             FROM vottery_user_events WHERE published_at IS NULL",
        )
        .get_result(&mut conn)
        .await?;
        anyhow::Ok(depth)
    }
    .await;
    match measured {
        Ok(depth) => metrics.measured(
            u64::try_from(depth.depth).unwrap_or_default(),
            u64::try_from(depth.lag_millis).unwrap_or_default(),
        ),
        Err(error) => tracing::warn!(%error, "cannot measure the event outbox"),
    }
}

/// Deletes relayed rows older than the retention.
async fn prune(pool: &DbPool, retention_hours: u64) {
    let pruned = async {
        let mut conn = pool
            .get()
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        let hours = i64::try_from(retention_hours).unwrap_or(i64::MAX);
        let deleted = diesel::sql_query(
            "DELETE FROM vottery_user_events \
             WHERE published_at < now() - make_interval(hours => $1::integer)",
        )
        .bind::<BigInt, _>(hours.min(i64::from(i32::MAX)))
        .execute(&mut conn)
        .await?;
        anyhow::Ok(deleted)
    }
    .await;
    match pruned {
        Ok(0) => {}
        Ok(deleted) => tracing::info!(deleted, "pruned relayed user events"),
        Err(error) => tracing::warn!(%error, "cannot prune the event outbox"),
    }
}
