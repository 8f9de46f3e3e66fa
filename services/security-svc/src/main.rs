//! The `security-svc` binary: `serve` (default), `migrate`, `operator init`.

use std::io::Write;
use std::process::ExitCode;

use base64::Engine;
use security_svc::seal::{Seal, root_key_file_text};
use security_svc::{Application, MIGRATIONS, Settings};
use serde::Serialize;

const USAGE: &str = "usage: security-svc [serve | migrate | healthcheck | operator init --shares N --threshold T [--root-key-file PATH]]

  serve           run the HTTP service (default)
  migrate         apply pending database migrations and exit
  healthcheck     exit 0 if the local service answers /health/live (container health checks)
  operator init   make the root key, print its N unseal shares (any T unseal) and the root
                  token once, as JSON; --root-key-file also writes the root key itself to PATH
                  for development auto-unseal (refused in production)

Settings come from SECURITY_SVC__* environment variables (see README).";

#[derive(Serialize)]
struct InitOutput {
    keys: Vec<String>,
    keys_base64: Vec<String>,
    root_token: String,
    secret_shares: usize,
    secret_threshold: i64,
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|arg| arg == name)
        .and_then(|index| args.get(index + 1).cloned())
}

async fn operator_init(settings: Settings, args: &[String]) -> Result<(), String> {
    let shares: i64 = flag(args, "--shares")
        .unwrap_or_else(|| "5".into())
        .parse()
        .map_err(|_| "--shares takes a number")?;
    let threshold: i64 = flag(args, "--threshold")
        .unwrap_or_else(|| "3".into())
        .parse()
        .map_err(|_| "--threshold takes a number")?;
    let root_key_file = flag(args, "--root-key-file");
    if root_key_file.is_some()
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
        },
    );
    let initialized = seal
        .init(shares, threshold)
        .await
        .map_err(|error| error.to_string())?;
    if let Some(path) = root_key_file {
        write_private_file(&path, root_key_file_text(&initialized.root_key).as_bytes())
            .map_err(|error| format!("cannot write {path}: {error}"))?;
    }
    let output = InitOutput {
        keys: initialized
            .shares
            .iter()
            .map(|share| hex::encode(share.as_slice()))
            .collect(),
        keys_base64: initialized
            .shares
            .iter()
            .map(|share| base64::engine::general_purpose::STANDARD.encode(share.as_slice()))
            .collect(),
        root_token: secrecy::ExposeSecret::expose_secret(&initialized.root_token).to_owned(),
        secret_shares: initialized.shares.len(),
        secret_threshold: threshold,
    };
    let text = serde_json::to_string_pretty(&output).map_err(|error| error.to_string())?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}").map_err(|error| error.to_string())
}

/// Writes a file only its owner can read.
fn write_private_file(path: &str, contents: &[u8]) -> std::io::Result<()> {
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--help" || arg == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("security-svc: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    vottery_server::telemetry::init(&settings.log);
    let command: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|arg| !arg.starts_with("--"))
        .take(2)
        .collect();
    let result = match command.as_slice() {
        [] | ["serve"] => serve(settings).await,
        ["migrate"] => vottery_server::db::run_migrations(&settings.database.url, MIGRATIONS)
            .await
            .map(|applied| tracing::info!(?applied, "migrations applied"))
            .map_err(|error| error.to_string()),
        ["operator", "init", ..] => operator_init(settings, &args).await,
        ["healthcheck"] => {
            return if vottery_server::health::probe_local(settings.application.port, "/health/live")
            {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
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
