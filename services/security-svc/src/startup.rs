//! Builds the application: pool, migrations, seal (and development unseal), routes, background
//! tasks; binds its own listener so tests can ask for port 0.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use vottery_server::db::{build_pool, run_migrations};
use vottery_server::listen;
use vottery_server::metrics::HttpMetrics;
use vottery_server::observe::{AccessLogLevel, observe};

use crate::auth::Tokens;
use crate::configuration::{Settings, TransitSettings};
use crate::error::VaultError;
use crate::keys::store::StoreSettings;
use crate::metrics::OperationMetrics;
use crate::routes;
use crate::seal::{Seal, read_root_key_file};

/// security-svc's migrations, compiled in.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/security-svc");

/// State shared by every handler.
pub struct AppState {
    pub seal: Seal,
    pub tokens: Tokens,
    pub metrics: OperationMetrics,
    pub transit: TransitSettings,
    /// Keys created at every unseal when missing.
    pub bootstrap_keys: Vec<(String, crate::keys::rules::NewKey)>,
    pub max_body_bytes: usize,
}

impl AppState {
    /// Creates the configured bootstrap keys once unsealed; failures are logged, not fatal.
    pub async fn ensure_bootstrap_keys(&self) {
        if self.bootstrap_keys.is_empty() {
            return;
        }
        if let Ok(store) = self.seal.store()
            && let Err(error) = store.ensure(&self.bootstrap_keys).await
        {
            tracing::error!(%error, "could not create the bootstrap keys");
        }
    }
}

/// The service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(String),
    #[error("seal: {0}")]
    Seal(String),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// A built, listening, not yet running security-svc.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn not_found() -> Result<HttpResponse, VaultError> {
    Err(VaultError::not_found())
}

/// A method a route does not take answers Vault's `405 {"errors":[]}`, not an empty body.
fn method_not_allowed<B>(
    response: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let (request, _) = response.into_parts();
    let answer = actix_web::ResponseError::error_response(&VaultError::method_not_allowed());
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(request, answer).map_into_right_body(),
    ))
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        settings.check().map_err(StartupError::Config)?;
        let pool = build_pool(&settings.database)
            .map_err(|error| StartupError::Database(error.to_string()))?;
        if settings.database.migrate_on_start {
            run_migrations(&settings.database.url, MIGRATIONS)
                .await
                .map_err(|error| StartupError::Database(error.to_string()))?;
        }
        let seal = Seal::new(
            pool.clone(),
            StoreSettings {
                max_cached_keys: settings.transit.max_cached_keys,
                remembered_signatures: settings.transit.remembered_signatures,
                context_key_cache: settings.transit.context_key_cache,
            },
        );
        if let Err(error) = seal.sync_config().await {
            tracing::warn!(%error, "could not read the seal configuration yet; starting sealed");
        }
        if let Some(path) = settings.seal.dev_root_key_file() {
            let root_key = read_root_key_file(path).map_err(StartupError::Seal)?;
            seal.unseal_with_root_key(root_key)
                .await
                .map_err(|error| StartupError::Seal(error.to_string()))?;
            tracing::warn!(file = %path.display(), "unsealed from a development root-key file");
        }
        let tokens = Tokens::from_settings(&settings.auth.tokens).map_err(StartupError::Config)?;
        let state = web::Data::new(AppState {
            seal,
            tokens,
            metrics: OperationMetrics::new(),
            transit: settings.transit.clone(),
            bootstrap_keys: settings
                .transit
                .bootstrap_keys()
                .map_err(StartupError::Config)?,
            max_body_bytes: settings.application.max_body_bytes,
        });
        state.ensure_bootstrap_keys().await;
        let http_metrics = web::Data::new(HttpMetrics::new());
        let access_log = AccessLogLevel(settings.log.access_level());
        let pool_data = web::Data::new(pool);

        let listener = listen::bind(&settings.application.host, settings.application.port)?;
        let port = listener.port;
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(pool_data.clone())
                .app_data(http_metrics.clone())
                .app_data(access_log)
                .wrap(
                    ErrorHandlers::new()
                        .handler(StatusCode::METHOD_NOT_ALLOWED, method_not_allowed),
                )
                .wrap(from_fn(observe))
                .configure(routes::configure)
                .configure(crate::routes::openapi::configure)
                .default_service(web::to(not_found))
        })
        .workers(listen::workers(settings.application.workers))
        .keep_alive(vottery_common::SERVER_KEEP_ALIVE)
        .listen(listener.socket)?
        .run();

        let tasks = background_tasks(&state, &settings);
        Ok(Self {
            port,
            server,
            state,
            tasks,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (tests inspect the seal through it).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        for task in self.tasks {
            task.abort();
        }
        result
    }
}

/// Key refresh (changes made by other instances) and automatic rotation, while unsealed.
fn background_tasks(
    state: &web::Data<AppState>,
    settings: &Settings,
) -> Vec<tokio::task::JoinHandle<()>> {
    let refresh_every = Duration::from_millis(settings.seal.key_refresh_interval_ms.max(100));
    let rotate_every = Duration::from_secs(settings.seal.auto_rotate_check_secs.max(1));
    let state: Arc<AppState> = state.clone().into_inner();
    let refresh_state = state.clone();
    let refresh = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(refresh_every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Ok(store) = refresh_state.seal.store()
                && let Err(error) = store.refresh().await
            {
                tracing::warn!(%error, "key refresh failed");
            }
        }
    });
    let rotate = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(rotate_every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let Ok(store) = state.seal.store() else {
                continue;
            };
            match store.rotate_due_keys().await {
                Ok(rotated) => {
                    for name in rotated {
                        tracing::info!(key = %name, "key rotated automatically");
                    }
                }
                Err(error) => tracing::warn!(%error, "automatic rotation check failed"),
            }
        }
    });
    vec![refresh, rotate]
}
