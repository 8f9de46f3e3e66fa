//! A real security-svc for each test: started in-process on a random port with a fresh
//! database of its own, initialised with one share, unsealed, with user-svc's three keys; and
//! user-svc's client of it, configured as user-svc configures it.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use user_svc::configuration::SecuritySettings;
use user_svc::vault::Vault;
use vottery_common::client::{ClientSettings, SecurityClient};
use vottery_test_db::{Template, TestDatabase};

/// security-svc's admin token (default configuration).
pub const ADMIN_TOKEN: &str = "dev-security-admin-token";
/// A token whose policy allows only signing and verifying, on user-svc's keys.
pub const SIGN_ONLY_TOKEN: &str = "contract-sign-only-token";
/// A key outside user-svc's `vottery-users-*` policy.
pub const FOREIGN_KEY: &str = "payments-pii";

/// The keys user-svc needs, and one it may not use.
const KEYS: [(&str, &str); 4] = [
    ("vottery-users-pii", "aes256-gcm96"),
    ("vottery-users-index", "hmac"),
    ("vottery-users-records", "ed25519"),
    (FOREIGN_KEY, "aes256-gcm96"),
];

/// security-svc's tables, migrated once per run and cloned for each test.
static SECURITY_SVC: Template = Template::new("ctr", &[|| security_svc::MIGRATIONS]);

/// An HTTP answer from security-svc, read whole.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub json: Value,
}

/// A running security-svc.
pub struct SecuritySvc {
    pub address: String,
    pub state: web::Data<security_svc::startup::AppState>,
    share: Vec<u8>,
    http: reqwest::Client,
    _database: Arc<TestDatabase>,
}

impl SecuritySvc {
    pub async fn start() -> Self {
        let database = TestDatabase::migrated("ctr", &SECURITY_SVC).await;
        let mut settings =
            security_svc::Settings::defaults().expect("security-svc's defaults parse");
        settings.application.host = "127.0.0.1".into();
        settings.application.port = 0;
        settings.application.workers = 1;
        settings.database.url = SecretString::from(database.url.clone());
        settings.database.max_connections = 4;
        settings.log.filter = "error".into();
        settings.auth.tokens.insert(
            "sign_only".into(),
            security_svc::configuration::TokenSettings {
                secret: SecretString::from(SIGN_ONLY_TOKEN),
                operations: vec!["sign".into(), "verify".into()],
                keys: vec!["vottery-users-*".into()],
            },
        );
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
        let _ = rustls::crypto::ring::default_provider().install_default();
        let security = Self {
            address,
            state,
            share: initialized.shares[0].to_vec(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
            _database: database,
        };
        security.unseal().await;
        for (name, key_type) in KEYS {
            let reply = security
                .raw(
                    Method::POST,
                    &format!("/v1/transit/keys/{name}"),
                    ADMIN_TOKEN,
                    Some(json!({ "type": key_type })),
                )
                .await;
            assert_eq!(reply.status, 200, "creating key {name}: {reply:?}");
        }
        security
    }

    /// user-svc's security settings (its defaults: token, keys, timeouts), pointed here.
    pub fn user_svc_settings(&self) -> SecuritySettings {
        let mut settings = user_svc::Settings::defaults()
            .expect("user-svc's defaults parse")
            .security;
        settings.url = self.address.clone();
        settings
    }

    /// user-svc's client of security-svc, exactly as user-svc builds it.
    pub fn vault(&self) -> Vault {
        self.vault_with(|_| {})
    }

    /// user-svc's client, with its settings changed first.
    pub fn vault_with(&self, configure: impl FnOnce(&mut SecuritySettings)) -> Vault {
        let mut settings = self.user_svc_settings();
        configure(&mut settings);
        Vault::new(&settings).expect("the client builds")
    }

    /// The typed client with another token.
    pub fn client_with_token(&self, token: &str) -> SecurityClient {
        let settings = ClientSettings {
            token: SecretString::from(token.to_owned()),
            ..self.user_svc_settings().client_settings()
        };
        SecurityClient::new(&settings).expect("the client builds")
    }

    /// A request as any Vault client would send it.
    pub async fn raw(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Raw {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.address))
            .header("X-Vault-Token", token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("security-svc answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("the body is read");
        Raw {
            status,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    /// `POST` with user-svc's token.
    pub async fn post_as_user_svc(&self, path: &str, body: Value) -> Raw {
        let token = self.user_svc_settings().token;
        self.raw(Method::POST, path, token.expose_secret(), Some(body))
            .await
    }

    pub async fn seal(&self) {
        let reply = self
            .raw(Method::PUT, "/v1/sys/seal", ADMIN_TOKEN, None)
            .await;
        assert_eq!(reply.status, 204, "sealing: {reply:?}");
        assert!(self.state.seal.is_sealed());
    }

    pub async fn unseal(&self) {
        let status = self
            .state
            .seal
            .submit_share(&self.share)
            .await
            .expect("the share unseals");
        assert!(!status.sealed, "still sealed after the only share");
    }
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}
