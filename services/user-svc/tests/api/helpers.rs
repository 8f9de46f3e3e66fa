//! The test harness: every test gets its own PostgreSQL database, its own security-svc (started
//! in-process, initialised with one share, unsealed, with the three user keys) and its own
//! user-svc on a random port, with a bootstrapped manager. Tests talk HTTP to user-svc, read
//! security-svc's metrics, and read or tamper with the database directly. The database is
//! dropped when the test app goes away.

use std::fmt::Display;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use actix_web::web;
use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use reqwest::header::HeaderMap;
use secrecy::SecretString;
use serde_json::{Value, json};
use user_svc::Settings;
use user_svc::startup::{AppState, Application};
use user_svc::users::batches::BatchOptions;

/// The auth-service's service token (default configuration).
pub const SERVICE_TOKEN: &str = "dev-auth-service-token";
/// security-svc's admin token (default configuration).
pub const SECURITY_ADMIN_TOKEN: &str = "dev-security-admin-token";
/// The manager every test app starts with.
pub const MANAGER_EMAIL: &str = "manager@example.com";
pub const MANAGER_PHONE: &str = "+442079460000";
/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// user-svc's PII key, created with `context_keys`.
pub const PII_KEY: &str = "vottery-users-pii";
/// The transit keys user-svc needs, and their types.
const KEYS: [(&str, &str); 3] = [
    ("vottery-users-pii", "aes256-gcm96"),
    ("vottery-users-index", "hmac"),
    ("vottery-users-records", "ed25519"),
];

// ---- databases -------------------------------------------------------------------------------

use vottery_test_db::Template;
pub use vottery_test_db::TestDatabase;

/// Both services' tables, as a test whose security-svc shares user-svc's database has them.
static BOTH_SERVICES: Template = Template::new(
    "usr_both",
    &[|| security_svc::MIGRATIONS, || user_svc::MIGRATIONS],
);
/// user-svc's tables alone.
static USER_SVC: Template = Template::new("usr_users", &[|| user_svc::MIGRATIONS]);
/// security-svc's tables alone.
static SECURITY_SVC: Template = Template::new("usr_security", &[|| security_svc::MIGRATIONS]);

#[derive(QueryableByName)]
struct JsonText {
    #[diesel(sql_type = Text)]
    json: String,
}

/// Runs `sql` (a SELECT) and returns its rows as JSON objects, column name to value.
pub async fn query_rows(conn: &mut AsyncPgConnection, sql: &str) -> Vec<Value> {
    let wrapped = format!("SELECT coalesce(json_agg(t), '[]')::text AS json FROM ({sql}) t");
    let text = diesel::sql_query(&wrapped)
        .get_result::<JsonText>(conn)
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
        .json;
    match serde_json::from_str(&text) {
        Ok(Value::Array(rows)) => rows,
        other => panic!("{sql}: not a list of rows: {other:?}"),
    }
}

// ---- HTTP ------------------------------------------------------------------------------------

fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON; `Null` when it is not JSON.
    pub json: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    }

    /// Asserts the status and returns the JSON body.
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        &self.json
    }

    /// Asserts that the request did not succeed (no 2xx status).
    pub fn assert_failed(&self) {
        assert!(
            !(200..300).contains(&self.status),
            "{} {}",
            self.status,
            self.text
        );
    }

    /// Asserts `status`: a success, or else an RFC 9457 problem.
    pub fn assert_answer(&self, status: u16) {
        if status < 400 {
            self.expect(status);
        } else {
            self.problem(status);
        }
    }

    /// Asserts an RFC 9457 problem with `status` and returns it.
    pub fn problem(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with(PROBLEM_JSON),
            "a {status} must be {PROBLEM_JSON}, was {content_type:?}: {}",
            self.text
        );
        assert_eq!(self.json["status"], json!(status), "{}", self.text);
        for member in ["type", "title", "detail"] {
            assert!(
                self.json[member]
                    .as_str()
                    .is_some_and(|text| !text.is_empty()),
                "problem lacks {member}: {}",
                self.text
            );
        }
        &self.json
    }

    /// The `type` slug of a problem (`validation`, `conflict`, ...).
    pub fn problem_type(&self) -> String {
        self.json["type"]
            .as_str()
            .and_then(|text| text.rsplit('/').next())
            .unwrap_or_default()
            .to_owned()
    }

    /// The fields a problem's `errors[]` names, in order.
    pub fn error_fields(&self) -> Vec<String> {
        self.json["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|error| error["field"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The message `errors[]` gives for `field`.
    pub fn error_message(&self, field: &str) -> String {
        self.json["errors"]
            .as_array()
            .and_then(|errors| errors.iter().find(|error| error["field"] == json!(field)))
            .and_then(|error| error["message"].as_str())
            .unwrap_or_else(|| panic!("no error for {field}: {}", self.text))
            .to_owned()
    }

    /// Asserts a 422 validation problem naming exactly `fields` (in any order).
    pub fn assert_invalid(&self, fields: &[&str]) {
        self.problem(422);
        let mut named = self.error_fields();
        named.sort();
        let mut expected: Vec<String> = fields.iter().map(|field| (*field).to_owned()).collect();
        expected.sort();
        assert_eq!(named, expected, "{}", self.text);
    }
}

/// Sends a request built on any client and reads the answer whole.
pub async fn send(builder: reqwest::RequestBuilder) -> Reply {
    let response = builder.send().await.expect("the request is answered");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("the body is read");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        json,
    }
}

/// A request being put together.
pub struct Call {
    builder: reqwest::RequestBuilder,
}

impl Call {
    pub fn token(mut self, token: &str) -> Self {
        self.builder = self.builder.bearer_auth(token);
        self
    }

    pub fn json(mut self, body: &Value) -> Self {
        self.builder = self.builder.json(body);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    pub fn body(mut self, content_type: &str, body: impl Into<reqwest::Body>) -> Self {
        self.builder = self.builder.header("Content-Type", content_type).body(body);
        self
    }

    /// The request comes through the gateway (a trusted proxy) for client `address`.
    pub fn via_gateway_for(self, address: &str) -> Self {
        self.header("X-Forwarded-For", address)
    }

    pub fn if_match(self, version: i64) -> Self {
        self.header("If-Match", &format!("\"{version}\""))
    }

    pub async fn send(self) -> Reply {
        send(self.builder).await
    }
}

// ---- tokens ----------------------------------------------------------------------------------

/// How the test app's JWTs are signed, and the verification key user-svc is given.
#[derive(Clone)]
pub struct JwtKey {
    pub algorithm: Algorithm,
    pub encoding: EncodingKey,
    /// The PEM public key (empty for HS256).
    pub public_pem: String,
    /// The HS256 secret (empty otherwise).
    pub secret: String,
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

impl JwtKey {
    pub fn hs256(secret: &str) -> Self {
        Self {
            algorithm: Algorithm::HS256,
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            public_pem: String::new(),
            secret: secret.to_owned(),
        }
    }

    /// The default configuration's shared secret.
    pub fn dev_hs256() -> Self {
        Self::hs256("dev-jwt-secret-change-me-0123456789abcdef")
    }

    /// A fresh RSA-2048 key pair.
    pub fn rs256() -> Self {
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
            .expect("an RSA key is generated");
        let private_pem = private
            .to_pkcs8_pem(LineEnding::LF)
            .expect("the RSA key encodes");
        let public_pem = rsa::RsaPublicKey::from(&private)
            .to_public_key_pem(LineEnding::LF)
            .expect("the RSA public key encodes");
        Self {
            algorithm: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_pem(private_pem.as_bytes())
                .expect("jsonwebtoken reads the RSA key"),
            public_pem,
            secret: String::new(),
        }
    }

    /// A fresh Ed25519 key pair (generated with ring).
    pub fn ed25519() -> Self {
        use ring::rand::SecureRandom;
        use ring::signature::KeyPair;
        let mut seed = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut seed)
            .expect("random bytes");
        let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
            .expect("an Ed25519 key pair");
        // PKCS#8 v1 (RFC 8410) around the seed, and SubjectPublicKeyInfo around the public key.
        let mut pkcs8 = hex::decode("302e020100300506032b657004220420").expect("hex");
        pkcs8.extend_from_slice(&seed);
        let mut spki = hex::decode("302a300506032b6570032100").expect("hex");
        spki.extend_from_slice(pair.public_key().as_ref());
        Self {
            algorithm: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(&pkcs8),
            public_pem: pem("PUBLIC KEY", &spki),
            secret: String::new(),
        }
    }

    /// Configures user-svc to verify this key's tokens.
    pub fn configure(&self, settings: &mut Settings) {
        settings.auth.algorithm = match self.algorithm {
            Algorithm::HS256 => "HS256",
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
            _ => "EdDSA",
        }
        .to_owned();
        if !self.secret.is_empty() {
            settings.auth.jwt_secret = SecretString::from(self.secret.clone());
        }
        settings.auth.public_key_pem = self.public_pem.clone();
    }

    /// Signs `claims` as they are.
    pub fn sign(&self, claims: &Value) -> String {
        jsonwebtoken::encode(&Header::new(self.algorithm), claims, &self.encoding)
            .expect("the token is signed")
    }
}

pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

// ---- security-svc ----------------------------------------------------------------------------

/// The in-process security-svc of a test.
pub struct SecuritySvc {
    pub address: String,
    pub state: web::Data<security_svc::startup::AppState>,
    share: Vec<u8>,
    http: reqwest::Client,
}

impl SecuritySvc {
    /// Starts security-svc on `database`, initialises it with one share, unseals it and
    /// creates the user keys.
    async fn start(database: &TestDatabase) -> Self {
        Self::start_at(&database.url).await
    }

    /// As [`SecuritySvc::start`], on the database at `url`.
    pub async fn start_at(url: &str) -> Self {
        let mut settings =
            security_svc::Settings::defaults().expect("security-svc's defaults parse");
        settings.application.host = "127.0.0.1".into();
        settings.application.port = 0;
        settings.application.workers = 1;
        vottery_test_db::use_database(&mut settings.database, url, 4);
        settings.log.filter = "error".into();
        let application = security_svc::Application::build(settings)
            .await
            .expect("security-svc builds");
        let address = format!("http://127.0.0.1:{}", application.port());
        let state = application.state();
        tokio::spawn(application.run_until_stopped());

        let initialized = state
            .seal
            .init(1, 1)
            .await
            .expect("security-svc initialises");
        let share = initialized.shares[0].to_vec();
        let security = Self {
            address,
            state,
            share,
            http: http_client(),
        };
        security.unseal().await;
        for (name, key_type) in KEYS {
            let reply = send(
                security
                    .http
                    .post(format!("{}/v1/transit/keys/{name}", security.address))
                    .header("X-Vault-Token", SECURITY_ADMIN_TOKEN)
                    // The PII key gives each user a data key of their own (crypto-shredding).
                    .json(&json!({ "type": key_type, "context_keys": name == PII_KEY })),
            )
            .await;
            assert_eq!(reply.status, 200, "creating key {name}: {}", reply.text);
        }
        security
    }

    /// `PUT /v1/sys/seal` with the admin token.
    pub async fn seal(&self) {
        let reply = send(
            self.http
                .put(format!("{}/v1/sys/seal", self.address))
                .header("X-Vault-Token", SECURITY_ADMIN_TOKEN),
        )
        .await;
        assert_eq!(reply.status, 204, "sealing: {}", reply.text);
        assert!(self.state.seal.is_sealed());
    }

    /// Unseals with the one share made at init.
    pub async fn unseal(&self) {
        let status = self
            .state
            .seal
            .submit_share(&self.share)
            .await
            .expect("the share unseals");
        assert!(!status.sealed, "still sealed after the only share");
    }

    /// `vottery_security_operations_total` for `operation`, over all outcomes.
    pub async fn operations(&self, operation: &str) -> u64 {
        self.metric("vottery_security_operations_total", operation)
            .await
    }

    /// `vottery_security_batch_items_total` for `operation`.
    pub async fn batch_items(&self, operation: &str) -> u64 {
        self.metric("vottery_security_batch_items_total", operation)
            .await
    }

    async fn metric(&self, name: &str, operation: &str) -> u64 {
        let reply = send(self.http.get(format!("{}/metrics", self.address))).await;
        assert_eq!(reply.status, 200, "security-svc metrics: {}", reply.text);
        let label = format!("operation=\"{operation}\"");
        reply
            .text
            .lines()
            .filter(|line| line.starts_with(&format!("{name}{{")) && line.contains(&label))
            .map(|line| {
                line.rsplit(' ')
                    .next()
                    .and_then(|value| value.parse::<f64>().ok())
                    .unwrap_or_else(|| panic!("unreadable metric line {line:?}"))
                    as u64
            })
            .sum()
    }

    /// Counts of the operations user-svc uses.
    pub async fn snapshot(&self) -> Operations {
        Operations {
            encrypt: self.operations("encrypt").await,
            decrypt: self.operations("decrypt").await,
            hmac: self.operations("hmac").await,
            sign: self.operations("sign").await,
            verify: self.operations("verify").await,
        }
    }
}

/// How many calls of each kind security-svc has served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Operations {
    pub encrypt: u64,
    pub decrypt: u64,
    pub hmac: u64,
    pub sign: u64,
    pub verify: u64,
}

impl std::ops::Sub for Operations {
    type Output = Operations;

    fn sub(self, before: Operations) -> Operations {
        Operations {
            encrypt: self.encrypt - before.encrypt,
            decrypt: self.decrypt - before.decrypt,
            hmac: self.hmac - before.hmac,
            sign: self.sign - before.sign,
            verify: self.verify - before.verify,
        }
    }
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

// ---- user-svc --------------------------------------------------------------------------------

/// A user of the test app, with a token of their own.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: i32,
    pub token: String,
    pub email: String,
    pub phone: String,
}

/// How to start a test app.
pub struct Options {
    pub configure: Box<dyn FnOnce(&mut Settings)>,
    pub jwt: JwtKey,
    /// SQL run on the (empty) database before user-svc starts and migrates it.
    pub before_start: Option<String>,
    /// Whether security-svc gets a database of its own (otherwise it shares the test's).
    pub separate_security_database: bool,
    /// Start on an empty database that the services migrate as they start (otherwise the
    /// test's database is a copy of one migrated once per run).
    pub empty_database: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            configure: Box::new(|_| {}),
            jwt: JwtKey::dev_hs256(),
            before_start: None,
            separate_security_database: false,
            empty_database: false,
        }
    }
}

/// A running user-svc, its security-svc, its database and its first manager.
pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub settings: Settings,
    /// A state of its own over the same database and security-svc (for direct use-case calls).
    pub state: AppState,
    pub security: SecuritySvc,
    pub manager: TestUser,
    pub jwt: JwtKey,
    pub database: Arc<TestDatabase>,
    /// Keeps a separate security-svc database alive.
    _security_database: Option<Arc<TestDatabase>>,
    next_user: AtomicU32,
}

/// user-svc settings for a test on `database`, using `security`.
fn user_settings(database: &TestDatabase, security: &str) -> Settings {
    user_settings_at(&database.url, security)
}

/// user-svc settings for a test on the database at `url`, using `security`.
pub fn user_settings_at(url: &str, security: &str) -> Settings {
    let mut settings = Settings::defaults().expect("user-svc's defaults parse");
    settings.application.host = "127.0.0.1".into();
    settings.application.port = 0;
    settings.application.workers = 2;
    vottery_test_db::use_database(&mut settings.database, url, 6);
    settings.security.url = security.to_owned();
    settings.security.timeout_ms = 10_000;
    // Context keys are made ahead only where a test asks for it: the tests that count
    // security-svc's context keys expect exactly the ones their requests made.
    settings.security.contexts_ahead = 0;
    settings.rate_limit.enabled = false;
    settings.log.filter = "error".into();
    settings
}

/// Starts one user-svc; returns its base URL.
pub async fn start_user_svc(settings: Settings) -> String {
    let application = Application::build(settings).await.expect("user-svc builds");
    let address = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());
    address
}

pub async fn spawn_app() -> TestApp {
    spawn(Options::default()).await
}

/// A test app and one active user of it without an admin role.
pub async fn spawn_app_with_user() -> (TestApp, TestUser) {
    let app = spawn_app().await;
    let user = app.active_user().await;
    (app, user)
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings) + 'static) -> TestApp {
    spawn(Options {
        configure: Box::new(configure),
        ..Options::default()
    })
    .await
}

pub async fn spawn(options: Options) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        let mut log = Settings::defaults().expect("user-svc's defaults parse").log;
        log.filter = std::env::var("TEST_LOG").unwrap_or_default();
        vottery_server::telemetry::init(&log);
    }
    let (database, security_database) = databases(&options).await;
    let security = SecuritySvc::start(security_database.as_deref().unwrap_or(&database)).await;
    if let Some(sql) = &options.before_start {
        database
            .connect()
            .await
            .batch_execute(sql)
            .await
            .unwrap_or_else(|error| panic!("preparing the database: {error}"));
    }
    let mut settings = user_settings(&database, &security.address);
    options.jwt.configure(&mut settings);
    (options.configure)(&mut settings);
    let address = start_user_svc(settings.clone()).await;

    let (state, manager_id) = own_state_with_manager(&settings, 2).await;

    let mut app = TestApp {
        address,
        http: http_client(),
        settings,
        state,
        security,
        manager: TestUser {
            id: manager_id,
            token: String::new(),
            email: MANAGER_EMAIL.into(),
            phone: MANAGER_PHONE.into(),
        },
        jwt: options.jwt,
        database,
        _security_database: security_database,
        next_user: AtomicU32::new(1),
    };
    app.manager.token = app.jwt_for(manager_id);
    app
}

/// The test's database and, when it has one of its own, security-svc's: cloned from the
/// migrated templates, or empty when SQL must run before the services migrate it.
async fn databases(options: &Options) -> (Arc<TestDatabase>, Option<Arc<TestDatabase>>) {
    if options.before_start.is_some() || options.empty_database {
        let security = if options.separate_security_database {
            Some(TestDatabase::migrated("usr", &SECURITY_SVC).await)
        } else {
            None
        };
        return (TestDatabase::empty("usr").await, security);
    }
    if options.separate_security_database {
        (
            TestDatabase::migrated("usr", &USER_SVC).await,
            Some(TestDatabase::migrated("usr", &SECURITY_SVC).await),
        )
    } else {
        (TestDatabase::migrated("usr", &BOTH_SERVICES).await, None)
    }
}

/// `user_svc::users::service::bootstrap_manager`, as the `bootstrap-manager` command calls it.
pub async fn bootstrap(
    state: &AppState,
    email: &str,
    phone: &str,
) -> Result<Value, user_svc::error::ApiError> {
    let principal = user_svc::auth::Principal::Service("bootstrap".into());
    let meta = user_svc::audit::RequestMeta {
        request_id: uuid::Uuid::new_v4().to_string(),
        ip: None,
        user_agent: Some("user-svc tests".into()),
    };
    let ctx = user_svc::users::service::Ctx {
        state,
        principal: &principal,
        meta: &meta,
    };
    let view = user_svc::users::service::bootstrap_manager(
        &ctx,
        json!({"sngine_email": email, "sngine_phone": phone}),
    )
    .await?;
    Ok(serde_json::to_value(view).expect("a user view serialises"))
}

impl TestApp {
    // ---- requests ----------------------------------------------------------------------------

    /// A request to this app.
    pub fn call(&self, method: Method, path: &str) -> Call {
        self.call_at(&self.address, method, path)
    }

    /// A request to another instance (`base` is its URL).
    pub fn call_at(&self, base: &str, method: Method, path: &str) -> Call {
        Call {
            builder: self.http.request(method, format!("{base}{path}")),
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path).token(token).send().await
    }

    /// A request with `token` and a JSON `body`.
    async fn send_json(&self, method: Method, path: &str, token: &str, body: Value) -> Reply {
        self.call(method, path)
            .token(token)
            .json(&body)
            .send()
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send_json(Method::POST, path, token, body).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send_json(Method::PUT, path, token, body).await
    }

    /// `POST /api/users` with the service token, as the auth-service creates users.
    pub async fn post_user(&self, body: Value) -> Reply {
        self.post("/api/users", SERVICE_TOKEN, body).await
    }

    /// `PUT /api/users/:id/profile`.
    pub async fn put_profile(&self, id: impl Display, token: &str, body: Value) -> Reply {
        self.put(&format!("/api/users/{id}/profile"), token, body)
            .await
    }

    /// `PUT /api/users/:id/status`.
    pub async fn put_status(&self, id: impl Display, token: &str, body: Value) -> Reply {
        self.put(&format!("/api/users/{id}/status"), token, body)
            .await
    }

    /// `POST /api/users/:id/erase` as the manager.
    pub async fn erase(&self, id: i32) -> Reply {
        self.call(Method::POST, &format!("/api/users/{id}/erase"))
            .token(&self.manager.token)
            .send()
            .await
    }

    /// `PUT /api/users/:id/role`.
    pub async fn put_role(&self, id: impl Display, token: &str, body: Value) -> Reply {
        self.put(&format!("/api/users/{id}/role"), token, body)
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path).token(token).send().await
    }

    /// `GET path` as the manager.
    pub async fn get_as_manager(&self, path: &str) -> Reply {
        self.get(path, &self.manager.token).await
    }

    /// `GET /api/users?{query}` as the manager.
    pub async fn list_users(&self, query: &str) -> Reply {
        self.get_as_manager(&format!("/api/users?{query}")).await
    }

    /// `GET /api/users/:id` as the manager.
    pub async fn read_user(&self, id: i32) -> Value {
        self.get_as_manager(&format!("/api/users/{id}"))
            .await
            .expect(200)
            .clone()
    }

    // ---- tokens ------------------------------------------------------------------------------

    /// The claims a valid token for `user_id` carries (issuer and audience when configured).
    pub fn claims_for(&self, user_id: i32) -> Value {
        let now = now_secs();
        let mut claims = json!({"sub": user_id.to_string(), "iat": now, "exp": now + 600});
        if !self.settings.auth.issuer.is_empty() {
            claims["iss"] = json!(self.settings.auth.issuer);
        }
        if !self.settings.auth.audience.is_empty() {
            claims["aud"] = json!(self.settings.auth.audience);
        }
        claims
    }

    /// A valid token for `user_id`, as the auth-service would issue it.
    pub fn jwt_for(&self, user_id: i32) -> String {
        self.jwt.sign(&self.claims_for(user_id))
    }

    // ---- users -------------------------------------------------------------------------------

    /// A fresh unique email and phone.
    pub fn next_contacts(&self) -> (String, String) {
        let n = self.next_user.fetch_add(1, Ordering::SeqCst);
        (
            format!("user{n}@example.com"),
            format!("+1415555{:04}", n % 10_000),
        )
    }

    /// `POST /api/users` with the service token; asserts 201. The user is pending.
    pub async fn create_user(&self) -> TestUser {
        self.create_user_with(json!({})).await
    }

    /// Creates a user with extra fields in the body; asserts 201.
    pub async fn create_user_with(&self, extra: Value) -> TestUser {
        let (email, phone) = self.next_contacts();
        let mut body = json!({"sngine_email": email, "sngine_phone": phone});
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        let reply = self.post_user(body).await;
        let view = reply.expect(201);
        let id = view["id"].as_i64().expect("the new user has an id") as i32;
        TestUser {
            id,
            token: self.jwt_for(id),
            email,
            phone,
        }
    }

    /// A new active user without an admin role.
    pub async fn active_user(&self) -> TestUser {
        let user = self.create_user().await;
        self.set_status(user.id, "active").await;
        user
    }

    /// A new active user holding `role` (granted by the manager).
    pub async fn user_with_role(&self, role: &str) -> TestUser {
        let user = self.active_user().await;
        self.set_role(user.id, Some(role)).await;
        user
    }

    /// A user created, then given a city by themself and activated by the manager: three
    /// changes (and three events). Every write must succeed.
    pub async fn created_edited_and_activated(&self) -> TestUser {
        let user = self.create_user().await;
        self.put_profile(user.id, &user.token, json!({"city": "Leeds"}))
            .await
            .expect(200);
        self.set_status(user.id, "active").await;
        user
    }

    /// The manager sets a status; asserts 200.
    pub async fn set_status(&self, id: i32, status: &str) {
        self.put_status(id, &self.manager.token, json!({ "status": status }))
            .await
            .expect(200);
    }

    /// The manager sets (or, with `None`, revokes) an admin role; asserts 200.
    pub async fn set_role(&self, id: i32, role: Option<&str>) {
        self.put_role(id, &self.manager.token, json!({ "admin_role": role }))
            .await
            .expect(200);
    }

    /// Another user-svc on this app's database, configured by `configure`; returns its URL.
    pub async fn start_instance(&self, configure: impl FnOnce(&mut Settings)) -> String {
        let mut settings = self.settings.clone();
        configure(&mut settings);
        start_user_svc(settings).await
    }

    // ---- the database ------------------------------------------------------------------------

    pub async fn db(&self) -> AsyncPgConnection {
        self.database.connect().await
    }

    /// Runs SQL statements on the test database.
    pub async fn exec(&self, sql: &str) {
        self.db()
            .await
            .batch_execute(sql)
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
    }

    /// The rows of a SELECT, as JSON objects.
    pub async fn rows(&self, sql: &str) -> Vec<Value> {
        query_rows(&mut self.db().await, sql).await
    }

    /// A single number from a SELECT (the first column of the first row).
    pub async fn count(&self, sql: &str) -> i64 {
        let rows = self.rows(sql).await;
        let row = <[Value]>::first(&rows)
            .and_then(Value::as_object)
            .unwrap_or_else(|| panic!("{sql}: no row"));
        row.values()
            .next()
            .and_then(Value::as_i64)
            .unwrap_or_else(|| panic!("{sql}: not a number: {row:?}"))
    }

    /// How many users are stored.
    pub async fn user_count(&self) -> i64 {
        self.count("SELECT count(*) FROM vottery_users").await
    }

    /// The stored row of a user, every column.
    pub async fn user_row(&self, id: i32) -> Value {
        self.rows(&format!("SELECT * FROM vottery_users WHERE id = {id}"))
            .await
            .pop()
            .unwrap_or_else(|| panic!("no stored row for user {id}"))
    }

    /// The audit rows concerning a user, oldest first.
    pub async fn audit_rows(&self, user_id: i32) -> Vec<Value> {
        self.rows(&format!(
            "SELECT * FROM vottery_audit_logs WHERE user_id = {user_id} ORDER BY id"
        ))
        .await
    }

    /// The audit rows concerning a user that record `action` with outcome `success`, oldest
    /// first.
    pub async fn audit_rows_of(&self, user_id: i32, action: &str, success: bool) -> Vec<Value> {
        self.audit_rows(user_id)
            .await
            .into_iter()
            .filter(|row| row["action"] == json!(action) && row["success"] == json!(success))
            .collect()
    }

    /// How many audit rows exist in all.
    pub async fn audit_count(&self) -> i64 {
        self.count("SELECT count(*) FROM vottery_audit_logs").await
    }

    /// An operator's call to security-svc's `/v1/transit/keys/{path}` (rotate, config), with
    /// the admin token; it must succeed.
    pub async fn configure_key(&self, path: &str, body: Value) {
        let reply = send(
            self.http
                .post(format!("{}/v1/transit/keys/{path}", self.security.address))
                .header("X-Vault-Token", SECURITY_ADMIN_TOKEN)
                .json(&body),
        )
        .await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    }

    /// The built `user-svc` binary running `args`, configured for this app's database and the
    /// security-svc at `security_url`.
    pub fn command(&self, args: &[&str], security_url: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_user-svc"));
        command
            .args(args)
            .env("USER_SVC__DATABASE__URL", &self.database.url)
            .env("USER_SVC__DATABASE__MIGRATE_ON_START", "false")
            .env("USER_SVC__SECURITY__URL", security_url)
            .env("USER_SVC__RATE_LIMIT__ENABLED", "false")
            .env("USER_SVC__LOG__FILTER", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        command
    }
}

/// Runs `command` to its end; asserts that it failed, and returns what it wrote to stderr.
pub async fn failed_output(mut command: tokio::process::Command) -> String {
    let output = command.output().await.expect("the command runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{stderr}");
    stderr
}

/// Batches of `batch_size` rows, at most `max_batches` of them (all when `None`).
pub fn batch_options(batch_size: usize, max_batches: Option<usize>) -> BatchOptions {
    BatchOptions {
        batch_size,
        max_batches,
    }
}

/// The `id` of each object in a JSON array.
pub fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|item| {
            item["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("no id: {item}"))
        })
        .collect()
}

/// The columns that hold encrypted PII.
pub const PII_COLUMNS: [&str; 5] = [
    "sngine_email",
    "sngine_phone",
    "first_name",
    "last_name",
    "date_of_birth",
];

/// A state of the test's own on `settings`' database, with `connections` connections and no
/// rate limit, and the first manager bootstrapped through it as the CLI does; with their id.
pub async fn own_state_with_manager(settings: &Settings, connections: usize) -> (AppState, i32) {
    let mut direct = settings.clone();
    direct.database.migrate_on_start = false;
    direct.database.max_connections = connections;
    direct.rate_limit.enabled = false;
    let state = AppState::from_settings(&direct)
        .await
        .expect("the test's own state builds");
    let manager = bootstrap(&state, MANAGER_EMAIL, MANAGER_PHONE)
        .await
        .expect("the first manager is bootstrapped");
    let manager_id = manager["id"].as_i64().expect("the manager has an id") as i32;
    (state, manager_id)
}
