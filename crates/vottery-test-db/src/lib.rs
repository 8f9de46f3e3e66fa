//! Databases for the test suites, one per test, on the PostgreSQL server named by
//! `DATABASE_URL`.
//!
//! Running every migration for every test costs more than most tests themselves. A
//! [`Template`] names the migration sets a test database needs; the first test of a run that
//! asks for it builds a template database with those migrations applied, and every test then
//! gets `CREATE DATABASE … TEMPLATE` of it: a file copy on the server, with no migration run.
//! Templates are named after the process that built them, so a changed migration is picked up
//! by the next run, and the templates of processes that are gone are dropped when the next one
//! is built.
//!
//! `TEST_DB_TEMPLATES=0` migrates every test database in full instead, as each test did
//! before templates: to measure what the templates save, or to run a migration set on its own.

mod template;

use std::sync::Arc;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use secrecy::{ExposeSecret, SecretString};
use vottery_server::db::{DatabaseSettings, create_database, drop_database};

pub use template::Template;

/// The PostgreSQL server the tests create their databases on (`DATABASE_URL`, else the local
/// server's `postgres` database).
pub fn server_settings() -> DatabaseSettings {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    DatabaseSettings {
        url: SecretString::from(url),
        max_connections: 2,
        acquire_timeout_ms: 5_000,
        statement_timeout_ms: 30_000,
        migrate_on_start: false,
    }
}

/// Points a service's database settings at the test database `url`, with `connections`
/// connections, a 5 s wait for a free one and a 10 s limit per statement.
pub fn use_database(settings: &mut DatabaseSettings, url: &str, connections: usize) {
    settings.url = SecretString::from(url.to_owned());
    settings.max_connections = connections;
    settings.acquire_timeout_ms = 5_000;
    settings.statement_timeout_ms = 10_000;
}

/// A database made for one test, dropped (with its connections) when the last holder goes.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    server: DatabaseSettings,
}

impl TestDatabase {
    /// An empty database, for tests that run migrations themselves.
    pub async fn empty(prefix: &str) -> Arc<Self> {
        Self::made(prefix, None).await
    }

    /// A database holding `template`'s migrations, cloned from its template database (or
    /// migrated in full under `TEST_DB_TEMPLATES=0`).
    pub async fn migrated(prefix: &str, template: &Template) -> Arc<Self> {
        if std::env::var("TEST_DB_TEMPLATES").is_ok_and(|value| value == "0") {
            let database = Self::made(prefix, None).await;
            template.migrate(&database.name).await;
            return database;
        }
        let source = template.database().await;
        Self::made(prefix, Some(source)).await
    }

    async fn made(prefix: &str, template: Option<&str>) -> Arc<Self> {
        let server = server_settings();
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        match template {
            None => create_database(&server, &name).await,
            Some(source) => template::clone_database(&server, source, &name).await,
        }
        .unwrap_or_else(|error| panic!("cannot create test database {name}: {error}"));
        let url = server.with_database(&name).expose_secret().to_owned();
        Arc::new(Self { name, url, server })
    }

    /// A connection of the test's own.
    pub async fn connect(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url)
            .await
            .unwrap_or_else(|error| panic!("cannot connect to {}: {error}", self.name))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        // The test's runtime may be shutting down: drop on a thread with its own runtime.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|runtime| runtime.block_on(drop_database(&server, &name)))
        })
        .join();
        if !matches!(dropped, Ok(Ok(Ok(())))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}
