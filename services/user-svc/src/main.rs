//! The `user-svc` binary: `serve` (default), `migrate`, `healthcheck` and operator commands.

use std::process::ExitCode;

use user_svc::{Application, MIGRATIONS, Settings};

const USAGE: &str =
    "usage: user-svc [serve | migrate | healthcheck | bootstrap-manager --email EMAIL --phone PHONE | issue-dev-token USER_ID | encrypt-existing | rewrap]

  serve               run the HTTP service (default)
  migrate             apply pending database migrations and exit
  healthcheck         exit 0 if the local service answers /health/live (container health checks)
  bootstrap-manager   create the first manager (active, encrypted, signed, audited) through
                      security-svc; refused once a manager exists. Prints the user as JSON.
  issue-dev-token USER_ID [--ttl SECONDS]
                      development only: print an HS256 JWT for USER_ID signed with the
                      configured secret, as the auth-service would issue it
  encrypt-existing [--batch-size N] [--max-batches N]
                      encrypt, blind-index and sign the rows still holding plaintext PII (rows
                      written before user-svc), N rows per committed batch (default 200, at most
                      1000), in id order; refuses while security-svc is sealed or down; a rerun
                      resumes. Rows whose email or phone collides with another user's are left
                      plaintext, listed, and make the exit status 1.
  rewrap [--batch-size N] [--max-batches N]
                      move every record whose PII ciphertexts or signature use an older version
                      of their key onto the latest versions (rewrapped inside security-svc,
                      signed again, audited), in committed batches as above; afterwards the old
                      versions can be retired. Rows whose signature does not verify are left
                      as they are, as are rows with a value security-svc cannot rewrap;
                      they are listed and make the exit status 1.

Settings come from USER_SVC__* environment variables (see README).";

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
            eprintln!("user-svc: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    if args.first().map(String::as_str) == Some("healthcheck") {
        let live = vottery_server::health::probe_local(settings.application.port, "/health/live");
        return if live {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    vottery_server::telemetry::init(&settings.log);
    let result = match args.first().map(String::as_str) {
        None | Some("serve") => serve(settings).await,
        Some("migrate") => vottery_server::db::run_migrations(&settings.database.url, MIGRATIONS)
            .await
            .map(|applied| tracing::info!(?applied, "migrations applied"))
            .map_err(|error| error.to_string()),
        Some("bootstrap-manager") => bootstrap_manager(settings, &args).await,
        Some("issue-dev-token") => issue_dev_token(&settings, &args),
        Some("encrypt-existing") => encrypt_existing(settings, &args).await,
        Some("rewrap") => rewrap(settings, &args).await,
        Some(_) => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("user-svc: {error}");
            tracing::error!(%error, "user-svc stopped");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
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

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|arg| arg == name)
        .and_then(|index| args.get(index + 1).cloned())
}

async fn bootstrap_manager(settings: Settings, args: &[String]) -> Result<(), String> {
    let email = flag(args, "--email").ok_or("--email is required")?;
    let phone = flag(args, "--phone").ok_or("--phone is required")?;
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
    let body = serde_json::json!({"sngine_email": email, "sngine_phone": phone});
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

/// `--batch-size` and `--max-batches` of the batch commands.
fn batch_options(args: &[String]) -> Result<user_svc::users::backfill::BackfillOptions, String> {
    let number = |name: &str| {
        flag(args, name)
            .map(|text| {
                text.parse::<usize>()
                    .map_err(|_| format!("{name} needs a positive number"))
            })
            .transpose()
    };
    Ok(user_svc::users::backfill::BackfillOptions {
        batch_size: number("--batch-size")?
            .unwrap_or(user_svc::users::backfill::DEFAULT_BATCH_SIZE),
        max_batches: number("--max-batches")?,
    })
}

/// `rewrap`: progress and the rows left as they were on stderr, then the summary line.
async fn rewrap(settings: Settings, args: &[String]) -> Result<(), String> {
    let options = batch_options(args)?;
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
async fn encrypt_existing(settings: Settings, args: &[String]) -> Result<(), String> {
    use user_svc::users::backfill;
    let options = batch_options(args)?;
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

fn issue_dev_token(settings: &Settings, args: &[String]) -> Result<(), String> {
    use secrecy::ExposeSecret;
    if settings.environment != vottery_server::settings::Environment::Development
        || settings.auth.algorithm != "HS256"
    {
        return Err("issue-dev-token works only in development with auth.algorithm HS256".into());
    }
    let user_id: i64 = args
        .get(1)
        .and_then(|id| id.parse().ok())
        .ok_or("issue-dev-token needs a numeric USER_ID")?;
    let ttl: i64 = flag(args, "--ttl")
        .and_then(|ttl| ttl.parse().ok())
        .unwrap_or(24 * 3600);
    let now = chrono::Utc::now().timestamp();
    let mut claims = serde_json::json!({"sub": user_id.to_string(), "iat": now, "exp": now + ttl});
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
