//! Builds the application: pool, migrations, security-svc client, authentication, rate
//! limits, routes; binds its own listener so tests can ask for port 0.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use vottery_server::db::{DbPool, build_pool, run_migrations};
use vottery_server::listen;
use vottery_server::metrics::HttpMetrics;
use vottery_server::observe::observe;
use vottery_server::problem::JsonBodyLimit;

use crate::auth::Authenticator;
use crate::configuration::{IdempotencySettings, Settings};
use crate::error::ApiError;
use crate::events::metrics::RelayMetrics;
use crate::events::relay;
use crate::idempotency::spawn_pruning;
use crate::ratelimit::{RateLimiter, limit_by_address, spawn_housekeeping};
use crate::reread::reread_on_lost_connection;
use crate::routes;
use crate::users::totals::ListTotals;
use crate::vault::Vault;

/// user-svc's migrations, compiled in.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/user-svc");

/// State shared by every handler.
pub struct AppState {
    pub pool: DbPool,
    pub vault: Vault,
    pub auth: Authenticator,
    pub limiter: RateLimiter,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub totals: ListTotals,
    /// The event relay's measures, when `events.nats_url` turns it on.
    pub relay: Option<Arc<RelayMetrics>>,
    /// How `Idempotency-Key` claims are held and answers kept.
    pub idempotency: IdempotencySettings,
    /// Whether changes write their events to the outbox (`events.recorded`).
    pub events_recorded: bool,
}

/// The service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(String),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// A built, listening, not yet running user-svc.
pub struct Application {
    port: u16,
    server: Server,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn not_found(req: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

impl AppState {
    /// Checks the settings, applies migrations when configured, and builds the state.
    pub async fn from_settings(settings: &Settings) -> Result<Self, StartupError> {
        settings.check().map_err(StartupError::Config)?;
        let pool = build_pool(&settings.database)
            .map_err(|error| StartupError::Database(error.to_string()))?;
        if settings.database.migrate_on_start {
            run_migrations(&settings.database.url, MIGRATIONS)
                .await
                .map_err(|error| StartupError::Database(error.to_string()))?;
        }
        let trusted_proxies = settings
            .application
            .trusted_proxies
            .iter()
            .map(|text| {
                text.parse::<ipnet::IpNet>().map_err(|_| {
                    StartupError::Config(format!("trusted proxy {text:?} is not a CIDR"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            pool,
            vault: Vault::new(&settings.security)
                .map_err(|error| StartupError::Config(error.to_string()))?,
            auth: Authenticator::new(&settings.auth).map_err(StartupError::Config)?,
            limiter: RateLimiter::new(&settings.rate_limit)
                .await
                .map_err(StartupError::Config)?,
            trusted_proxies,
            totals: ListTotals::new(Duration::from_millis(
                settings.application.list_total_cache_ms,
            )),
            relay: settings.events.relays().then(Arc::default),
            idempotency: settings.idempotency.clone(),
            events_recorded: settings.events.recorded,
        })
    }
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let state = web::Data::new(AppState::from_settings(&settings).await?);
        let http_metrics = web::Data::new(HttpMetrics::new());
        let body_limit = JsonBodyLimit(settings.application.max_body_bytes);

        let listener = listen::bind(&settings.application.host, settings.application.port)?;
        let port = listener.port;
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(http_metrics.clone())
                .app_data(body_limit)
                .wrap(from_fn(reread_on_lost_connection))
                .wrap(from_fn(limit_by_address))
                .wrap(from_fn(observe))
                .configure(routes::configure)
                .default_service(web::to(not_found))
        })
        .workers(listen::workers(settings.application.workers))
        .keep_alive(vottery_common::SERVER_KEEP_ALIVE)
        .listen(listener.socket)?
        .run();
        let shared: Arc<AppState> = state.into_inner();
        let mut tasks = Vec::new();
        if let Some(metrics) = &shared.relay {
            let events = settings.events.clone();
            tasks.push(relay::spawn(shared.pool.clone(), events, metrics.clone()));
        }
        tasks.push(spawn_pruning(
            shared.pool.clone(),
            settings.idempotency.retention_hours,
        ));
        tasks.push(spawn_housekeeping(shared));
        Ok(Self {
            port,
            server,
            tasks,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        for task in self.tasks {
            task.abort();
        }
        result
    }
}
