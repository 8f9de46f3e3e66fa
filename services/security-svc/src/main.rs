//! The `security-svc` binary: the service (`serve`, the default), its operator commands and the
//! guardian ceremony mediator, parsed with clap.

mod ceremony;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use security_svc::seal::{Seal, root_key_file_text};
use security_svc::{Application, MIGRATIONS, Settings};
use serde::Serialize;
use vottery_common::sys::InitResponse;

const SETTINGS_HELP: &str = "Settings of serve, migrate, healthcheck and operator init come from \
config/default.toml, the file named in SECURITY_SVC_CONFIG, and SECURITY_SVC__<SECTION>__<KEY> \
environment variables (for example SECURITY_SVC__APPLICATION__PORT, SECURITY_SVC__DATABASE__URL, \
or DATABASE_URL). The ceremony commands are clients and read none of them.";

/// Encryption as a service (Vault Transit compatible) behind a Shamir-sealed root key, and the
/// mediator of guardian key ceremonies between such instances.
#[derive(Debug, Parser)]
#[command(name = "security-svc", version, after_help = SETTINGS_HELP)]
struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Service(ServiceCommand),
    /// Drive a guardian key ceremony between security-svc instances, and encrypt to, tally and
    /// decrypt with its joint key. A client: it holds no secret.
    #[command(subcommand, after_help = ceremony::GUARDIANS_HELP)]
    Ceremony(ceremony::CeremonyCommand),
}

/// The commands that run against this instance's settings and database.
#[derive(Debug, Subcommand)]
enum ServiceCommand {
    /// Run the HTTP service (the default).
    #[command(after_help = SETTINGS_HELP)]
    Serve,
    /// Apply pending database migrations and exit.
    #[command(after_help = SETTINGS_HELP)]
    Migrate,
    /// Exit 0 if the local service answers /health/live (container health checks); the port is
    /// SECURITY_SVC__APPLICATION__PORT.
    #[command(after_help = SETTINGS_HELP)]
    Healthcheck,
    /// Operator commands run against the service's database.
    #[command(subcommand)]
    Operator(OperatorCommand),
}

#[derive(Debug, Subcommand)]
enum OperatorCommand {
    /// Make the root key, print its unseal shares (any THRESHOLD of them unseal) and the root
    /// token once, as JSON.
    #[command(after_help = SETTINGS_HELP)]
    Init(InitArgs),
}

#[derive(Debug, Args)]
struct InitArgs {
    /// How many unseal shares to make.
    #[arg(long, env = "SECURITY_SVC_INIT_SHARES", default_value_t = 5)]
    shares: i64,
    /// How many of the shares unseal.
    #[arg(long, env = "SECURITY_SVC_INIT_THRESHOLD", default_value_t = 3)]
    threshold: i64,
    /// Also write the root key itself to PATH, for development auto-unseal
    /// (SECURITY_SVC__SEAL__DEV_ROOT_KEY_FILE); refused in production.
    #[arg(long, value_name = "PATH", env = "SECURITY_SVC_INIT_ROOT_KEY_FILE")]
    root_key_file: Option<PathBuf>,
}

#[derive(Serialize)]
struct InitOutput {
    #[serde(flatten)]
    handed_out: InitResponse,
    secret_shares: usize,
    secret_threshold: i64,
}

async fn operator_init(settings: Settings, args: InitArgs) -> Result<(), String> {
    if args.root_key_file.is_some()
        && settings.environment == vottery_server::settings::Environment::Production
    {
        return Err("--root-key-file is for development only".into());
    }
    vottery_server::db::run_migrations(&settings.database.url, MIGRATIONS)
        .await
        .map_err(|error| error.to_string())?;
    let pool =
        vottery_server::db::build_pool(&settings.database).map_err(|error| error.to_string())?;
    let seal = Seal::new(
        pool,
        security_svc::keys::store::StoreSettings {
            max_cached_keys: 1,
            remembered_signatures: 0,
            context_key_cache: 0,
        },
    );
    let initialized = seal
        .init(args.shares, args.threshold)
        .await
        .map_err(|error| error.to_string())?;
    if let Some(path) = &args.root_key_file {
        write_private_file(path, root_key_file_text(&initialized.root_key).as_bytes())
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    }
    let output = InitOutput {
        handed_out: initialized.handed_out(),
        secret_shares: initialized.shares.len(),
        secret_threshold: args.threshold,
    };
    let text = serde_json::to_string_pretty(&output).map_err(|error| error.to_string())?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}").map_err(|error| error.to_string())
}

/// Writes a file only its owner can read.
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)
}

/// mimalloc: the request paths allocate many short-lived buffers, which glibc's allocator serves
/// markedly slower under concurrent load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Some(Command::Ceremony(command)) => ceremony::run(command).await,
        Some(Command::Service(command)) => run_service(command).await,
        None => run_service(ServiceCommand::Serve).await,
    }
}

async fn run_service(command: ServiceCommand) -> ExitCode {
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("security-svc: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    vottery_server::telemetry::init(&settings.log);
    let result = match command {
        ServiceCommand::Serve => serve(settings).await,
        ServiceCommand::Migrate => {
            vottery_server::db::run_migrations(&settings.database.url, MIGRATIONS)
                .await
                .map(|applied| tracing::info!(?applied, "migrations applied"))
                .map_err(|error| error.to_string())
        }
        ServiceCommand::Operator(OperatorCommand::Init(args)) => {
            operator_init(settings, args).await
        }
        ServiceCommand::Healthcheck => {
            let port = settings.application.port;
            return if vottery_server::health::probe_local(port, "/health/live") {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("security-svc: {error}");
            tracing::error!(%error, "security-svc stopped");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    let host = settings.application.host.clone();
    let application = Application::build(settings)
        .await
        .map_err(|error| error.to_string())?;
    tracing::info!(%host, port = application.port(), "security-svc listening");
    application
        .run_until_stopped()
        .await
        .map_err(|error| error.to_string())
}
