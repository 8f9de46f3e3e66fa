//! The PostgreSQL connection pool (diesel-async over deadpool) and embedded migrations.

use std::time::Duration;

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
pub use diesel_async::pooled_connection::deadpool::PoolError;
use diesel_async::pooled_connection::deadpool::{Hook, HookError, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// A pool of async PostgreSQL connections.
pub type DbPool = Pool<AsyncPgConnection>;
/// A connection checked out of the pool; returned on drop.
pub type DbConn = deadpool::managed::Object<AsyncDieselConnectionManager<AsyncPgConnection>>;

/// `[database]` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: usize,
    /// How long a request waits for a free connection before the service answers 503.
    pub acquire_timeout_ms: u64,
    /// Server-side limit for each statement, set on every new connection.
    pub statement_timeout_ms: u64,
    /// Apply pending migrations when the service starts.
    pub migrate_on_start: bool,
}

impl DatabaseSettings {
    /// The URL with another database name (tests create one database each).
    pub fn with_database(&self, name: &str) -> SecretString {
        let url = self.url.expose_secret();
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (url, None),
        };
        let base = match base.rsplit_once('/') {
            Some((server, _)) if server.contains("//") && !server.ends_with('/') => server,
            _ => base,
        };
        let mut out = format!("{base}/{name}");
        if let Some(query) = query {
            out.push('?');
            out.push_str(query);
        }
        SecretString::from(out)
    }
}

/// The pool could not be built.
#[derive(Debug, thiserror::Error)]
#[error("could not build the database pool: {0}")]
pub struct PoolBuildError(String);

/// A connection idle for longer than this is asked `SELECT 1` before it is handed out: a server
/// that went away without closing the socket (a failover, a dropped network path) leaves
/// connections that look open until they are used.
const IDLE_BEFORE_CHECK: Duration = Duration::from_secs(5);

/// How long that check may take before the connection is discarded as dead.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Builds the pool. Connections are made lazily; each gets `statement_timeout` on creation.
///
/// A pooled connection whose server closed it (a terminated backend, a restart) is discarded at
/// checkout and replaced by a new one, so a request is never handed a connection known to be
/// dead; one idle for [`IDLE_BEFORE_CHECK`] is checked with a round trip first.
pub fn build_pool(settings: &DatabaseSettings) -> Result<DbPool, PoolBuildError> {
    let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
    manager_config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
        settings.url.expose_secret(),
        manager_config,
    );
    let statement_timeout = format!("SET statement_timeout = {}", settings.statement_timeout_ms);
    let wait = Duration::from_millis(settings.acquire_timeout_ms);
    Pool::builder(manager)
        .max_size(settings.max_connections)
        .wait_timeout(Some(wait))
        .create_timeout(Some(wait.max(Duration::from_secs(2))))
        .recycle_timeout(Some(Duration::from_secs(2)))
        .runtime(deadpool::Runtime::Tokio1)
        .post_create(Hook::async_fn(move |conn: &mut AsyncPgConnection, _| {
            let statement = statement_timeout.clone();
            Box::pin(async move {
                diesel::sql_query(statement)
                    .execute(conn)
                    .await
                    .map(|_| ())
                    .map_err(|error| HookError::message(error.to_string()))
            })
        }))
        .post_recycle(Hook::async_fn(|conn: &mut AsyncPgConnection, metrics| {
            let idle = metrics.last_used();
            Box::pin(async move {
                if idle < IDLE_BEFORE_CHECK {
                    return Ok(());
                }
                match tokio::time::timeout(
                    CHECK_TIMEOUT,
                    diesel::sql_query("SELECT 1").execute(conn),
                )
                .await
                {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(error)) => Err(HookError::message(error.to_string())),
                    Err(_) => Err(HookError::message("idle connection did not answer")),
                }
            })
        }))
        .build()
        .map_err(|error| PoolBuildError(error.to_string()))
}

/// Messages PostgreSQL sends as it ends a session or refuses one (SQLSTATE 57P01–57P03, the
/// shutdown and startup of a restart), which diesel reports without a kind of its own.
const SESSION_ENDED: [&str; 5] = [
    "terminating connection",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is not yet accepting connections",
    "the database system is in recovery mode",
];

/// How the PostgreSQL driver describes a connection it lost (closed, a broken socket, a reply
/// that never came), reported as "unable to send command" like a malformed query would be.
const SOCKET_LOST: [&str; 4] = [
    "connection closed",
    "error communicating with the server",
    "unexpected message from server",
    "timeout waiting for server",
];

/// Whether a query failed because its connection is gone: the server ended the session (a
/// terminated backend, a restart, a failover) or the socket broke. Such a failure says the
/// database is unavailable right now, not that the request was wrong. A write that failed this
/// way may or may not have committed: the client retries it with its idempotency key.
pub fn is_connection_lost(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
        | Error::BrokenTransactionManager => true,
        Error::DatabaseError(DatabaseErrorKind::UnableToSendCommand, info) => {
            let message = info.message();
            SOCKET_LOST.iter().any(|lost| message.contains(lost))
        }
        Error::DatabaseError(_, info) => {
            let message = info.message();
            SESSION_ENDED.iter().any(|ended| message.contains(ended))
        }
        Error::RollbackErrorOnCommit {
            rollback_error,
            commit_error,
        } => is_connection_lost(rollback_error) || is_connection_lost(commit_error),
        _ => false,
    }
}

/// A statement that is prepared once per connection and then reused, keyed by its SQL text
/// and parameter types.
///
/// diesel prepares and caches only statements whose SQL it can tie to their Rust type. It
/// refuses to cache the rest: every `UPDATE`, `ON CONFLICT`, insert with a `DEFAULT`, and raw
/// SQL. Those are parsed and planned again on each execution, and each one costs an extra
/// round trip to prepare. The SQL text names the statement exactly, so keying the cache by it
/// is sound for any query. Wrap the statements a hot path runs on every request. The cache
/// holds one prepared statement per distinct text, so don't wrap a query whose text varies
/// without bound, such as a list of parameters of arbitrary length.
#[derive(Debug, Clone, Copy)]
pub struct Prepared<Q>(pub Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

/// No static id: the cache key is the SQL text, whatever the wrapped type.
impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

/// Whether a pool error means "the database is unavailable right now" (503) rather than a bug.
pub fn is_unavailable(error: &PoolError) -> bool {
    matches!(
        error,
        PoolError::Timeout(_)
            | PoolError::Backend(_)
            | PoolError::Closed
            | PoolError::PostCreateHook(_)
    )
}

/// Migrations could not be applied.
#[derive(Debug, thiserror::Error)]
#[error("migrations failed: {0}")]
pub struct MigrationError(String);

/// Applies pending migrations on a dedicated connection; returns the versions applied.
pub async fn run_migrations(
    url: &SecretString,
    migrations: EmbeddedMigrations,
) -> Result<Vec<String>, MigrationError> {
    use diesel::Connection;
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;

    let url = url.expose_secret().to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
            .map_err(|error| MigrationError(error.to_string()))?;
        // Serialise concurrent starters of the same service on one database.
        diesel::RunQueryDsl::execute(
            diesel::sql_query("SELECT pg_advisory_lock(872349001)"),
            &mut conn,
        )
        .map_err(|error| MigrationError(error.to_string()))?;
        let applied = conn
            .run_pending_migrations(migrations)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(|error| MigrationError(error.to_string()));
        let _ = diesel::RunQueryDsl::execute(
            diesel::sql_query("SELECT pg_advisory_unlock(872349001)"),
            &mut conn,
        );
        applied
    })
    .await
    .map_err(|error| MigrationError(error.to_string()))?
}

/// Runs one statement on the server `admin` connects to, on a connection of its own and outside
/// any transaction (`CREATE DATABASE` and `DROP DATABASE` cannot run inside one).
pub async fn run_on_server(
    admin: &DatabaseSettings,
    statement: &str,
) -> Result<(), diesel::ConnectionError> {
    use diesel_async::AsyncConnection;
    let mut conn = AsyncPgConnection::establish(admin.url.expose_secret()).await?;
    diesel::sql_query(statement)
        .execute(&mut conn)
        .await
        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(())
}

/// Creates a database (tests and local tooling). Safe for generated names only.
pub async fn create_database(
    admin: &DatabaseSettings,
    name: &str,
) -> Result<(), diesel::ConnectionError> {
    run_on_server(admin, &format!("CREATE DATABASE \"{name}\"")).await
}

/// Drops a database, disconnecting whoever is still connected.
pub async fn drop_database(
    admin: &DatabaseSettings,
    name: &str,
) -> Result<(), diesel::ConnectionError> {
    let statement = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    run_on_server(admin, &statement).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> DatabaseSettings {
        DatabaseSettings {
            url: SecretString::from(url.to_owned()),
            max_connections: 1,
            acquire_timeout_ms: 1,
            statement_timeout_ms: 1,
            migrate_on_start: false,
        }
    }

    #[test]
    fn lost_connections_are_told_from_failed_queries() {
        use diesel::result::{DatabaseErrorKind, Error};
        let error = |kind, message: &str| Error::DatabaseError(kind, Box::new(message.to_owned()));
        let unsent = |message| error(DatabaseErrorKind::UnableToSendCommand, message);
        let unknown = |message| error(DatabaseErrorKind::Unknown, message);
        let lost = [
            unsent("connection closed"),
            unsent("error communicating with the server: Connection reset by peer"),
            unknown("terminating connection due to administrator command"),
            unknown("the database system is shutting down"),
            error(DatabaseErrorKind::ClosedConnection, "closed"),
            Error::BrokenTransactionManager,
        ];
        for error in &lost {
            assert!(is_connection_lost(error), "{error}");
        }
        let failed = [
            error(DatabaseErrorKind::UniqueViolation, "duplicate key value"),
            unsent("too many bind parameters"),
            unknown("canceling statement due to statement timeout"),
            Error::NotFound,
        ];
        for error in &failed {
            assert!(!is_connection_lost(error), "{error}");
        }
    }

    #[test]
    fn another_database_keeps_server_and_query() {
        let with = |url: &str| settings(url).with_database("t1").expose_secret().to_owned();
        assert_eq!(with("postgres://u@h:5/postgres"), "postgres://u@h:5/t1");
        assert_eq!(
            with("postgres://u@h:5/db?sslmode=disable"),
            "postgres://u@h:5/t1?sslmode=disable"
        );
        assert_eq!(with("postgres://u@h:5"), "postgres://u@h:5/t1");
    }
}
