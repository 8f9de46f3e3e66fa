//! The `user-svc` binary: the service (`serve`, the default), `migrate`, `healthcheck` and the
//! operator commands, parsed with clap.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use user_svc::users::batches::{BatchOptions, DEFAULT_BATCH_SIZE};
use user_svc::{Application, MIGRATIONS, Settings};

const SETTINGS_HELP: &str = "Settings come from config/default.toml, the file named in \
USER_SVC_CONFIG, and USER_SVC__<SECTION>__<KEY> environment variables (for example \
USER_SVC__APPLICATION__PORT, USER_SVC__DATABASE__URL or DATABASE_URL, USER_SVC__SECURITY__URL, \
USER_SVC__SECURITY__TOKEN). A configuration error exits with status 2.";

/// Users, profiles and roles on the Vottery tables, with encrypted PII, signed records and a
/// hash-chained audit log.
#[derive(Debug, Parser)]
#[command(name = "user-svc", version, after_help = SETTINGS_HELP)]
struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Run(RunCommand),
    /// Exit 0 if the local service answers /health/live, 1 otherwise.
    ///
    /// For container health checks; the port is USER_SVC__APPLICATION__PORT.
    #[command(after_help = SETTINGS_HELP)]
    Healthcheck,
}

/// The commands that run with logging, and exit 1 when they fail.
#[derive(Debug, Subcommand)]
enum RunCommand {
    /// Run the HTTP service (the default).
    #[command(after_help = SETTINGS_HELP)]
    Serve,
    /// Apply pending database migrations and exit.
    #[command(after_help = SETTINGS_HELP)]
    Migrate,
    /// Create the first manager; refused once a manager exists.
    ///
    /// The manager is active, encrypted, signed and audited through security-svc like any
    /// other user, and printed as JSON.
    #[command(after_help = SETTINGS_HELP)]
    BootstrapManager(BootstrapArgs),
    /// Development only: print a JWT for USER_ID.
    ///
    /// An HS256 token signed with the configured secret (USER_SVC__AUTH__JWT_SECRET), as the
    /// auth-service would issue it; refused outside development.
    #[command(after_help = SETTINGS_HELP)]
    IssueDevToken(DevTokenArgs),
    /// Encrypt the rows still holding plaintext PII (written before user-svc).
    ///
    /// Encrypts, blind-indexes and signs them in committed batches in id order; refuses while
    /// security-svc is sealed or down; a rerun resumes. Rows whose email or phone collides
    /// with another user's are left plaintext, listed, and make the exit status 1.
    #[command(after_help = SETTINGS_HELP)]
    EncryptExisting(BatchArgs),
    /// Move every record onto the latest PII and signing key versions.
    ///
    /// Records whose ciphertexts or signature use an older key version are rewrapped inside
    /// security-svc, signed again and audited, in committed batches; afterwards the old
    /// versions can be retired. Rows whose signature does not verify, or with a value
    /// security-svc cannot rewrap, are left as they are, listed, and make the exit status 1.
    #[command(after_help = SETTINGS_HELP)]
    Rewrap(BatchArgs),
}

#[derive(Debug, Args)]
struct BootstrapArgs {
    /// The manager's email.
    #[arg(long, env = "USER_SVC_BOOTSTRAP_EMAIL")]
    email: String,
    /// The manager's phone number (E.164).
    #[arg(long, env = "USER_SVC_BOOTSTRAP_PHONE")]
    phone: String,
}

#[derive(Debug, Args)]
struct DevTokenArgs {
    /// The user the token is for (its `sub`).
    #[arg(value_name = "USER_ID")]
    user_id: i64,
    /// How long the token is valid, in seconds.
    #[arg(long, value_name = "SECONDS", env = "USER_SVC_DEV_TOKEN_TTL", default_value_t = 24 * 3600)]
    ttl: i64,
}

#[derive(Debug, Args)]
struct BatchArgs {
    /// Rows locked, changed and committed together (at most 1000).
    #[arg(
        long,
        value_name = "N",
        env = "USER_SVC_BATCH_SIZE",
        default_value_t = DEFAULT_BATCH_SIZE,
        value_parser = number_of("--batch-size")
    )]
    batch_size: usize,
    /// Stop after N batches (work in slices; a later run resumes).
    #[arg(
        long,
        value_name = "N",
        env = "USER_SVC_MAX_BATCHES",
        value_parser = number_of("--max-batches")
    )]
    max_batches: Option<usize>,
}

/// Reads the number an option takes, naming the option when it is not one.
fn number_of(option: &'static str) -> impl Fn(&str) -> Result<usize, String> + Clone {
    move |text| {
        text.parse()
            .map_err(|_| format!("{option} needs a positive number"))
    }
}

impl BatchArgs {
    fn options(&self) -> BatchOptions {
        BatchOptions {
            batch_size: self.batch_size,
            max_batches: self.max_batches,
        }
    }
}

/// mimalloc: the request paths allocate many short-lived buffers, which glibc's allocator serves
/// markedly slower under concurrent load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let command = Cli::parse()
        .command
        .unwrap_or(Command::Run(RunCommand::Serve));
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("user-svc: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    let command = match command {
        Command::Healthcheck => return healthcheck(&settings),
        Command::Run(command) => command,
    };
    vottery_server::telemetry::init(&settings.log);
    match run(command, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("user-svc: {error}");
            tracing::error!(%error, "user-svc stopped");
            ExitCode::FAILURE
        }
    }
}

/// Whether the local service answers `/health/live`.
fn healthcheck(settings: &Settings) -> ExitCode {
    if vottery_server::health::probe_local(settings.application.port, "/health/live") {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn run(command: RunCommand, settings: Settings) -> Result<(), String> {
    match command {
        RunCommand::Serve => serve(settings).await,
        RunCommand::Migrate => {
            vottery_server::db::run_migrations(&settings.database.url, MIGRATIONS)
                .await
                .map(|applied| tracing::info!(?applied, "migrations applied"))
                .map_err(|error| error.to_string())
        }
        RunCommand::BootstrapManager(args) => bootstrap_manager(settings, args).await,
        RunCommand::IssueDevToken(args) => issue_dev_token(&settings, &args),
        RunCommand::EncryptExisting(args) => encrypt_existing(settings, args.options()).await,
        RunCommand::Rewrap(args) => rewrap(settings, args.options()).await,
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    // Test builds only: failure points named in the FAILPOINTS environment variable.
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let host = settings.application.host.clone();
    let application = Application::build(settings)
        .await
        .map_err(|error| error.to_string())?;
    tracing::info!(%host, port = application.port(), "user-svc listening");
    application
        .run_until_stopped()
        .await
        .map_err(|error| error.to_string())
}

async fn bootstrap_manager(settings: Settings, args: BootstrapArgs) -> Result<(), String> {
    let state = user_svc::startup::AppState::from_settings(&settings)
        .await
        .map_err(|error| error.to_string())?;
    let principal = user_svc::auth::Principal::Service("bootstrap".into());
    let meta = user_svc::audit::RequestMeta {
        request_id: uuid::Uuid::new_v4().to_string(),
        ip: None,
        user_agent: Some("user-svc bootstrap-manager".into()),
    };
    let ctx = user_svc::users::service::Ctx {
        state: &state,
        principal: &principal,
        meta: &meta,
    };
    let body = serde_json::json!({"sngine_email": args.email, "sngine_phone": args.phone});
    let user = user_svc::users::service::bootstrap_manager(&ctx, body)
        .await
        .map_err(|error| match error {
            user_svc::error::ApiError::Validation(errors) => errors
                .iter()
                .map(|error| format!("{}: {}", error.field, error.message))
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        })?;
    println!(
        "{}",
        serde_json::to_string_pretty(&user).map_err(|error| error.to_string())?
    );
    Ok(())
}

/// `rewrap`: progress and the rows left as they were on stderr, then the summary line.
async fn rewrap(settings: Settings, options: BatchOptions) -> Result<(), String> {
    let state = user_svc::startup::AppState::from_settings(&settings)
        .await
        .map_err(|error| error.to_string())?;
    let summary =
        user_svc::users::rewrap::rewrap(&state, options, |progress| eprintln!("{progress}"))
            .await
            .map_err(|error| error.to_string())?;
    for left in &summary.left {
        eprintln!("rewrap: {left}");
    }
    eprintln!("{summary}");
    if summary.left.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} rows were left on their old key versions (listed above); inspect them before retiring those versions",
            summary.left.len()
        ))
    }
}

/// `encrypt-existing`: progress and skipped rows on stderr, then the summary line.
async fn encrypt_existing(settings: Settings, options: BatchOptions) -> Result<(), String> {
    use user_svc::users::backfill;
    let state = user_svc::startup::AppState::from_settings(&settings)
        .await
        .map_err(|error| error.to_string())?;
    let summary = backfill::encrypt_existing(&state, options, |progress| eprintln!("{progress}"))
        .await
        .map_err(|error| error.to_string())?;
    for skipped in &summary.skipped {
        eprintln!("encrypt-existing: {skipped}");
    }
    eprintln!("{summary}");
    if summary.skipped.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} rows were left plaintext (listed above); resolve them and rerun",
            summary.skipped.len()
        ))
    }
}

fn issue_dev_token(settings: &Settings, args: &DevTokenArgs) -> Result<(), String> {
    use secrecy::ExposeSecret;
    if settings.environment != vottery_server::settings::Environment::Development
        || settings.auth.algorithm != "HS256"
    {
        return Err("issue-dev-token works only in development with auth.algorithm HS256".into());
    }
    let now = chrono::Utc::now().timestamp();
    let mut claims =
        serde_json::json!({"sub": args.user_id.to_string(), "iat": now, "exp": now + args.ttl});
    if !settings.auth.issuer.is_empty() {
        claims["iss"] = serde_json::json!(settings.auth.issuer);
    }
    if !settings.auth.audience.is_empty() {
        claims["aud"] = serde_json::json!(settings.auth.audience);
    }
    let key =
        jsonwebtoken::EncodingKey::from_secret(settings.auth.jwt_secret.expose_secret().as_bytes());
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)
        .map_err(|error| error.to_string())?;
    println!("{token}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn every_subcommand_parses_as_documented() {
        Cli::command().debug_assert();
        let parsed = Cli::try_parse_from(["user-svc", "rewrap", "--batch-size", "10"]).unwrap();
        assert!(matches!(
            parsed.command,
            Some(Command::Run(RunCommand::Rewrap(BatchArgs {
                batch_size: 10,
                max_batches: None
            })))
        ));
        let refused = Cli::try_parse_from(["user-svc", "encrypt-existing", "--max-batches", "x"])
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("--max-batches needs a positive number"),
            "{refused}"
        );
    }
}
