//! Forgets idempotency keys past their retention (`idempotency.retention_hours`), on a timer.

use std::time::Duration;

use vottery_server::db::DbPool;

use super::store;

/// How often keys past their retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Deletes the keys older than `retention_hours`; how many, or why it could not.
pub async fn prune(pool: &DbPool, retention_hours: u64) -> Result<usize, String> {
    let mut conn = pool.get().await.map_err(|error| error.to_string())?;
    store::prune(&mut conn, retention_hours)
        .await
        .map_err(|error| error.to_string())
}

/// Prunes now and then every [`PRUNE_EVERY`], for as long as the service runs.
pub fn spawn_pruning(pool: DbPool, retention_hours: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(PRUNE_EVERY);
        loop {
            ticker.tick().await;
            match prune(&pool, retention_hours).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "pruned idempotency keys"),
                Err(error) => tracing::warn!(%error, "cannot prune idempotency keys"),
            }
        }
    })
}
