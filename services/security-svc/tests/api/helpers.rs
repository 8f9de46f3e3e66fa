//! The test harness: every test gets its own PostgreSQL database and its own security-svc on a
//! random port, talks to it over HTTP, and drops the database when the test app goes away.

use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::web;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use security_svc::Settings;
use security_svc::startup::AppState;
use security_svc::startup::Application;
use serde_json::{Value, json};
use tracing_subscriber::fmt::MakeWriter;
use vottery_common::client::{ClientSettings, SecurityClient};
use vottery_test_db::{Template, TestDatabase};

/// The default admin token: every operation on every key.
pub const ADMIN: Option<&str> = Some("dev-security-admin-token");
/// The user-svc token: data operations on `vottery-users-*` keys only.
pub const USER: Option<&str> = Some("dev-user-svc-token");
/// No token at all.
pub const NO_TOKEN: Option<&str> = None;

pub const SHARES: usize = 5;
pub const THRESHOLD: usize = 3;

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    STANDARD
        .decode(text)
        .unwrap_or_else(|error| panic!("{text:?} is not standard base64: {error}"))
}

/// Splits `vault:v<N>:<payload>`, asserting the format.
pub fn split_versioned(value: &str) -> (u32, String) {
    let rest = value
        .strip_prefix("vault:v")
        .unwrap_or_else(|| panic!("{value:?} does not start with vault:v"));
    let (version, payload) = rest
        .split_once(':')
        .unwrap_or_else(|| panic!("{value:?} has no payload"));
    let version: u32 = version
        .parse()
        .unwrap_or_else(|_| panic!("{value:?} has no version number"));
    (version, payload.to_owned())
}

/// Asserts `vault:v<version>:<standard base64>` and returns the decoded payload.
pub fn assert_versioned(value: &str, version: u32) -> Vec<u8> {
    let (found, payload) = split_versioned(value);
    assert_eq!(found, version, "version of {value:?}");
    assert!(!payload.is_empty(), "empty payload in {value:?}");
    unb64(&payload)
}

/// security-svc's tables, migrated once per run and cloned for each test.
static SECURITY_SVC: Template = Template::new("sec", &[|| security_svc::MIGRATIONS]);

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON, `Null` when it is not JSON.
    pub json: Value,
}

impl Reply {
    pub fn status(&self) -> u16 {
        self.status.as_u16()
    }

    /// A response header as text, empty when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    /// Asserts Vault's success envelope (status 2xx) and returns its `data`.
    pub fn envelope(&self) -> &Value {
        let body = self
            .json
            .as_object()
            .unwrap_or_else(|| panic!("not a JSON object: {} {}", self.status, self.text));
        assert!(
            !body.contains_key("errors"),
            "success envelope has errors: {}",
            self.text
        );
        let request_id = body
            .get("request_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert!(!request_id.is_empty(), "request_id missing: {}", self.text);
        assert_eq!(
            self.header("x-request-id"),
            request_id,
            "the envelope carries the request id of the response"
        );
        assert_eq!(self.header("cache-control"), "no-store");
        assert!(self.header("content-type").starts_with("application/json"));
        assert_eq!(body.get("lease_id"), Some(&json!("")), "{}", self.text);
        assert_eq!(body.get("renewable"), Some(&json!(false)), "{}", self.text);
        assert_eq!(body.get("lease_duration"), Some(&json!(0)), "{}", self.text);
        assert_eq!(body.get("wrap_info"), Some(&Value::Null), "{}", self.text);
        assert_eq!(body.get("auth"), Some(&Value::Null), "{}", self.text);
        assert!(
            matches!(body.get("warnings"), Some(Value::Null | Value::Array(_))),
            "warnings must be null or a list: {}",
            self.text
        );
        body.get("data")
            .unwrap_or_else(|| panic!("no data in {}", self.text))
    }

    /// Asserts a 200 with Vault's envelope and returns `data`.
    pub fn ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.text);
        self.envelope()
    }

    pub fn warnings(&self) -> Vec<String> {
        self.json["warnings"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|item| item.as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `errors` list of an error body, asserting that nothing else is in the body.
    pub fn errors(&self) -> Vec<String> {
        let body = self
            .json
            .as_object()
            .unwrap_or_else(|| panic!("not a JSON error body: {} {}", self.status, self.text));
        assert_eq!(
            body.keys().collect::<Vec<_>>(),
            vec!["errors"],
            "error body must hold only errors: {}",
            self.text
        );
        body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("errors is not a list: {}", self.text))
            .iter()
            .map(|item| {
                item.as_str()
                    .unwrap_or_else(|| panic!("error is not a string: {}", self.text))
                    .to_owned()
            })
            .collect()
    }

    /// Asserts `status` with `{"errors":[...]}` where one message contains `needle`.
    pub fn assert_error(&self, status: u16, needle: &str) {
        assert_eq!(self.status(), status, "body: {}", self.text);
        let content_type = self.header("content-type");
        assert!(
            content_type.starts_with("application/json"),
            "content type {content_type:?}"
        );
        assert_eq!(self.header("cache-control"), "no-store", "{}", self.text);
        let errors = self.errors();
        assert!(
            errors.iter().any(|error| error.contains(needle)),
            "expected an error containing {needle:?}, got {errors:?}"
        );
    }

    /// Asserts `status` with an empty error list (`{"errors":[]}`).
    pub fn assert_empty_error(&self, status: u16) {
        assert_eq!(self.status(), status, "body: {}", self.text);
        assert!(self.errors().is_empty(), "errors: {}", self.text);
    }

    pub fn assert_sealed(&self) {
        assert_eq!(self.status(), 503, "body: {}", self.text);
        assert_eq!(self.json, json!({"errors": ["Vault is sealed"]}));
    }

    pub fn assert_denied(&self) {
        self.assert_error(403, "permission denied");
    }
}

/// What `PUT /v1/sys/init` handed out.
#[derive(Debug, Clone)]
pub struct InitKeys {
    pub keys: Vec<String>,
    pub keys_base64: Vec<String>,
    pub root_token: String,
}

/// Log output kept in memory, shared by every writer made from it.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A running security-svc and the database it uses.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub http: reqwest::Client,
    pub settings: Settings,
    pub state: web::Data<AppState>,
    pub init: Option<InitKeys>,
    /// The database; `None` for a second instance on another app's database.
    _database: Option<Arc<TestDatabase>>,
}

fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

/// Settings for a test instance on the database at `url`.
fn test_settings(url: &str) -> Settings {
    let mut settings = Settings::defaults().expect("the default settings parse");
    settings.application.host = "127.0.0.1".into();
    settings.application.port = 0;
    settings.application.workers = 1;
    vottery_test_db::use_database(&mut settings.database, url, 4);
    settings.seal.key_refresh_interval_ms = 200;
    settings.log.filter = "error".into();
    settings
}

async fn start(settings: Settings, database: Option<Arc<TestDatabase>>) -> TestApp {
    let application = Application::build(settings.clone())
        .await
        .expect("security-svc builds");
    let port = application.port();
    let state = application.state();
    tokio::spawn(application.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        http: http_client(),
        settings,
        state,
        init: None,
        _database: database,
    }
}

/// A fresh, uninitialized (so sealed) instance on its own database.
pub async fn spawn_uninitialized() -> TestApp {
    spawn_uninitialized_with(|_| {}).await
}

pub async fn spawn_uninitialized_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let database = TestDatabase::migrated("sec", &SECURITY_SVC).await;
    let mut settings = test_settings(&database.url);
    configure(&mut settings);
    start(settings, Some(database)).await
}

/// An instance initialized with 5 shares (threshold 3) and unsealed with the first three.
pub async fn spawn_unsealed() -> TestApp {
    spawn_unsealed_with(|_| {}).await
}

pub async fn spawn_unsealed_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut app = spawn_uninitialized_with(configure).await;
    app.initialize().await;
    app.unseal_with_shares(&[0, 1, 2]).await;
    app
}

/// Another instance on `first`'s database, unsealed with the same shares.
pub async fn spawn_second_instance(first: &TestApp) -> TestApp {
    spawn_second_instance_with(first, |_| {}).await
}

pub async fn spawn_second_instance_with(
    first: &TestApp,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = first.settings.clone();
    configure(&mut settings);
    let mut second = start(settings, None).await;
    second.init = first.init.clone();
    second.unseal_with_shares(&[2, 3, 4]).await;
    second
}

/// Polls `check` until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn init_keys(&self) -> &InitKeys {
        self.init.as_ref().expect("the test app was initialized")
    }

    /// The name of this test's database.
    pub fn database_url(&self) -> String {
        self.settings.database.url.expose_secret().to_owned()
    }

    /// Sends a request with an optional token (as `X-Vault-Token`) and JSON body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut builder = self.http.request(method, self.url(path));
        if let Some(token) = token {
            builder = builder.header("X-Vault-Token", token);
        }
        if let Some(body) = body {
            builder = builder.json(body);
        }
        send(builder).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.request(Method::POST, path, token, Some(&body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.request(Method::PUT, path, token, Some(&body)).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.request(Method::DELETE, path, token, None).await
    }

    /// Vault's `LIST` method.
    pub async fn list(&self, path: &str, token: Option<&str>) -> Reply {
        let method = Method::from_bytes(b"LIST").expect("LIST is a valid method");
        self.request(method, path, token, None).await
    }

    /// Sends raw bytes as the body (bad JSON, oversized bodies).
    pub async fn post_raw(&self, path: &str, token: Option<&str>, body: Vec<u8>) -> Reply {
        let mut builder = self
            .http
            .post(self.url(path))
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(token) = token {
            builder = builder.header("X-Vault-Token", token);
        }
        send(builder).await
    }

    /// A typed client holding `token`.
    pub fn client(&self, token: &str) -> SecurityClient {
        SecurityClient::new(&ClientSettings {
            base_url: self.address.clone(),
            token: SecretString::from(token.to_owned()),
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            pool_max_idle_per_host: 2,
        })
        .expect("a security-svc client")
    }

    // ---- seal --------------------------------------------------------------------------------

    pub async fn seal_status(&self) -> Value {
        let reply = self.get("/v1/sys/seal-status", NO_TOKEN).await;
        assert_eq!(reply.status(), 200, "{}", reply.text);
        reply.json
    }

    /// `PUT /v1/sys/init` asking for `shares` shares of which `threshold` unseal; the raw answer.
    pub async fn init_request(&self, shares: usize, threshold: usize) -> Reply {
        let body = json!({"secret_shares": shares, "secret_threshold": threshold});
        self.put("/v1/sys/init", NO_TOKEN, body).await
    }

    /// `PUT /v1/sys/init` with 5 shares, threshold 3; remembers the shares.
    pub async fn initialize(&mut self) -> InitKeys {
        let reply = self.init_request(SHARES, THRESHOLD).await;
        assert_eq!(reply.status(), 200, "init: {}", reply.text);
        let strings = |field: &str| -> Vec<String> {
            reply.json[field]
                .as_array()
                .unwrap_or_else(|| panic!("init answer lacks {field}: {}", reply.text))
                .iter()
                .map(|item| item.as_str().expect("a share string").to_owned())
                .collect()
        };
        let keys = InitKeys {
            keys: strings("keys"),
            keys_base64: strings("keys_base64"),
            root_token: reply.json["root_token"]
                .as_str()
                .expect("a root token")
                .to_owned(),
        };
        self.init = Some(keys.clone());
        keys
    }

    pub async fn unseal(&self, key: &str) -> Reply {
        self.put("/v1/sys/unseal", NO_TOKEN, json!({ "key": key }))
            .await
    }

    /// Submits the hex shares at `indexes` and asserts the instance is unsealed after them.
    pub async fn unseal_with_shares(&self, indexes: &[usize]) {
        let keys = self.init_keys().keys.clone();
        let mut last = Value::Null;
        for index in indexes {
            let reply = self.unseal(&keys[*index]).await;
            assert_eq!(reply.status(), 200, "unseal: {}", reply.text);
            last = reply.json;
        }
        assert_eq!(last["sealed"], json!(false), "still sealed: {last}");
    }

    /// `PUT /v1/sys/seal` with the admin token.
    pub async fn seal(&self) {
        let reply = self.request(Method::PUT, "/v1/sys/seal", ADMIN, None).await;
        assert_eq!(reply.status(), 204, "seal: {}", reply.text);
    }

    // ---- keys --------------------------------------------------------------------------------

    pub async fn create_key(&self, name: &str, key_type: &str) -> Value {
        self.create_key_with(name, json!({ "type": key_type }))
            .await
    }

    pub async fn create_key_with(&self, name: &str, body: Value) -> Value {
        self.transit_ok(&format!("keys/{name}"), body).await
    }

    /// The key's `data` as a key read returns it.
    pub async fn read_key(&self, name: &str) -> Value {
        let reply = self.get(&format!("/v1/transit/keys/{name}"), ADMIN).await;
        reply.ok().clone()
    }

    pub async fn rotate(&self, name: &str) -> Value {
        self.transit_ok(&format!("keys/{name}/rotate"), json!({}))
            .await
    }

    pub async fn configure_key(&self, name: &str, body: Value) -> Reply {
        self.transit(&format!("keys/{name}/config"), body).await
    }

    // ---- transit operations ------------------------------------------------------------------

    /// Posts `body` to the transit endpoint `/v1/transit/{path}` with `token`.
    pub async fn transit_as(&self, token: Option<&str>, path: &str, body: Value) -> Reply {
        self.post(&format!("/v1/transit/{path}"), token, body).await
    }

    /// Posts `body` to the transit endpoint `/v1/transit/{path}` with the admin token.
    pub async fn transit(&self, path: &str, body: Value) -> Reply {
        self.transit_as(ADMIN, path, body).await
    }

    /// Posts to a transit endpoint with the admin token, asserts success and returns `data`.
    pub async fn transit_ok(&self, path: &str, body: Value) -> Value {
        self.transit(path, body).await.ok().clone()
    }

    /// Configures key `name` so that it may be deleted; asserts success.
    pub async fn allow_deletion(&self, name: &str) {
        self.configure_key(name, json!({"deletion_allowed": true}))
            .await
            .ok();
    }

    /// Encrypts with the admin token and a full request body; returns the ciphertext.
    pub async fn encrypt_with(&self, name: &str, body: Value) -> String {
        let data = self.transit_ok(&format!("encrypt/{name}"), body).await;
        text_field(&data, "ciphertext")
    }

    /// Encrypts `plaintext` with the admin token; returns the ciphertext.
    pub async fn encrypt(&self, name: &str, plaintext: &[u8]) -> String {
        self.encrypt_with(name, json!({ "plaintext": b64(plaintext) }))
            .await
    }

    /// Decrypts with the admin token; asserts success and returns the plaintext bytes.
    pub async fn decrypt(&self, name: &str, ciphertext: &str) -> Vec<u8> {
        let data = self
            .transit_ok(
                &format!("decrypt/{name}"),
                json!({ "ciphertext": ciphertext }),
            )
            .await;
        unb64(data["plaintext"].as_str().expect("a plaintext"))
    }

    pub async fn try_decrypt(&self, name: &str, body: Value) -> Reply {
        self.transit(&format!("decrypt/{name}"), body).await
    }

    /// Posts each body to its transit endpoint with the admin token and asserts a 400 whose
    /// errors mention the message paired with it.
    pub async fn assert_refusals<'a, P: AsRef<str>>(
        &self,
        cases: impl IntoIterator<Item = (P, Value, &'a str)>,
    ) {
        for (path, body, needle) in cases {
            self.transit(path.as_ref(), body)
                .await
                .assert_error(400, needle);
        }
    }

    /// Signs with the admin token at `sign/{path}`; asserts success and returns `data`.
    pub async fn sign(&self, path: &str, body: Value) -> Value {
        self.transit_ok(&format!("sign/{path}"), body).await
    }

    /// Computes an HMAC with the admin token at `hmac/{path}`; asserts success and returns it.
    pub async fn hmac(&self, path: &str, body: Value) -> String {
        let data = self.transit_ok(&format!("hmac/{path}"), body).await;
        text_field(&data, "hmac")
    }

    /// Checks a signature or HMAC with the admin token at `verify/{path}`; asserts success and
    /// returns whether it is valid.
    pub async fn verify(&self, path: &str, body: Value) -> bool {
        let data = self.transit_ok(&format!("verify/{path}"), body).await;
        data["valid"]
            .as_bool()
            .unwrap_or_else(|| panic!("no valid flag in {data}"))
    }

    /// Asserts that no key `name` exists: reading it answers 404 with an empty error list.
    pub async fn assert_no_key(&self, name: &str) {
        self.get(&format!("/v1/transit/keys/{name}"), ADMIN)
            .await
            .assert_empty_error(404);
    }

    /// Asserts that there are no keys at all: listing them answers 404 with an empty error list.
    pub async fn assert_no_keys(&self) {
        self.list("/v1/transit/keys", ADMIN)
            .await
            .assert_empty_error(404);
    }

    // ---- the database ------------------------------------------------------------------------

    pub async fn db(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.database_url())
            .await
            .expect("a connection to the test database")
    }

    /// Runs SQL statements on the test database.
    pub async fn db_execute(&self, sql: &str) {
        self.db()
            .await
            .batch_execute(sql)
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
    }

    /// `latest_version` and the number of stored versions of a key, read from the database.
    pub async fn db_versions(&self, name: &str) -> (i32, i64) {
        use security_svc::schema::vottery_security_key_versions as versions;
        use security_svc::schema::vottery_security_keys as keys;
        let mut conn = self.db().await;
        let latest: i32 = keys::table
            .find(name)
            .select(keys::latest_version)
            .first(&mut conn)
            .await
            .expect("the key row");
        let stored: i64 = versions::table
            .filter(versions::key_name.eq(name))
            .count()
            .get_result(&mut conn)
            .await
            .expect("a version count");
        (latest, stored)
    }
}

/// A string field of an answer's `data`, asserting that it is there.
fn text_field(data: &Value, field: &str) -> String {
    data[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {data}"))
        .to_owned()
}

async fn send(builder: reqwest::RequestBuilder) -> Reply {
    let response = builder.send().await.expect("the request is answered");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a readable body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        json,
    }
}
