//! One security-svc process per guardian, as in production: the built binary, its own
//! PostgreSQL database (dropped afterwards), initialised once with a development root-key file
//! so that it unseals itself at every start, and its own tokens. Instances can be killed and
//! started again on the same port and database.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use vottery_common::guardians::mediator::{Connector, GuardianClient, GuardianEndpoint};
use vottery_server::db::{DatabaseSettings, create_database, drop_database};

/// The binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_security-svc");

/// How long an instance may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A database that is dropped with its owner.
struct Database {
    server: DatabaseSettings,
    name: String,
}

impl Drop for Database {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // The test's runtime may be shutting down: drop on a thread with its own runtime.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the database")
                .block_on(drop_database(&server, &name))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// The last lines an instance printed, for failure messages.
#[derive(Clone, Default)]
struct LogTail(Arc<Mutex<VecDeque<String>>>);

impl LogTail {
    fn push(&self, line: String) {
        let mut lines = self.0.lock().expect("the log tail lock");
        if lines.len() == 40 {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    fn text(&self) -> String {
        let lines = self.0.lock().expect("the log tail lock");
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

/// One guardian's security-svc process.
pub struct Instance {
    /// The guardian it hosts (its name in the ceremony).
    pub name: String,
    /// A token allowed the guardian operations on guardians whose names start with `name`
    /// (so that one instance can take part in several test ceremonies), and nothing else.
    pub token: String,
    pub port: u16,
    database_url: String,
    root_key: PathBuf,
    admin_token: String,
    child: Option<Child>,
    log: LogTail,
    dir: PathBuf,
    _database: Database,
}

impl Instance {
    /// A new instance for guardian `name`: database created, initialised, started, unsealed.
    pub async fn start(name: &str) -> Instance {
        let server = vottery_test_db::server_settings();
        let database = format!("guardian_{}", uuid::Uuid::new_v4().simple());
        create_database(&server, &database)
            .await
            .expect("the guardian's database is created");
        let database_url =
            secrecy::ExposeSecret::expose_secret(&server.with_database(&database)).to_owned();
        let dir = std::env::temp_dir().join(&database);
        std::fs::create_dir_all(&dir).expect("a directory for the root key");
        let mut instance = Instance {
            name: name.to_owned(),
            token: format!("trustee-{}", uuid::Uuid::new_v4().simple()),
            port: 0,
            database_url,
            root_key: dir.join("root.key"),
            admin_token: format!("admin-{}", uuid::Uuid::new_v4().simple()),
            child: None,
            log: LogTail::default(),
            dir,
            _database: Database {
                server,
                name: database,
            },
        };
        instance.initialise().await;
        instance.run().await;
        instance
    }

    fn command(&self) -> Command {
        let mut command = Command::new(BINARY);
        command
            .env_clear()
            .env("SECURITY_SVC__DATABASE__URL", &self.database_url)
            .env("SECURITY_SVC__DATABASE__MAX_CONNECTIONS", "4")
            .env("SECURITY_SVC__LOG__FORMAT", "json")
            .env("SECURITY_SVC__LOG__FILTER", "info")
            .kill_on_drop(true);
        command
    }

    /// `operator init` with one share and the root key written for auto-unseal.
    async fn initialise(&self) {
        let output = self
            .command()
            .args(["operator", "init", "--shares", "1", "--threshold", "1"])
            .arg("--root-key-file")
            .arg(&self.root_key)
            .env("SECURITY_SVC__LOG__FILTER", "warn")
            .output()
            .await
            .expect("operator init runs");
        assert!(
            output.status.success(),
            "operator init for {}: {}",
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Starts the process (on `self.port`, or a free port the first time) and waits until it
    /// is ready: listening, its database reachable, unsealed.
    async fn run(&mut self) {
        let mut command = self.command();
        command
            .arg("serve")
            .env("SECURITY_SVC__APPLICATION__HOST", "127.0.0.1")
            .env("SECURITY_SVC__APPLICATION__PORT", self.port.to_string())
            .env("SECURITY_SVC__APPLICATION__WORKERS", "2")
            .env("SECURITY_SVC__SEAL__DEV_ROOT_KEY_FILE", &self.root_key)
            .env(
                "SECURITY_SVC__AUTH__TOKENS__ADMIN__SECRET",
                &self.admin_token,
            )
            .env(
                "SECURITY_SVC__AUTH__TOKENS__USER_SVC__SECRET",
                format!("user-{}", uuid::Uuid::new_v4().simple()),
            )
            .env("SECURITY_SVC__AUTH__TOKENS__TRUSTEE__SECRET", &self.token)
            .env(
                "SECURITY_SVC__AUTH__TOKENS__TRUSTEE__OPERATIONS",
                "guardian-ceremony,guardian-decrypt",
            )
            .env(
                "SECURITY_SVC__AUTH__TOKENS__TRUSTEE__KEYS",
                format!("{}*", self.name),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("security-svc starts");
        let stdout = child.stdout.take().expect("its stdout");
        let stderr = child.stderr.take().expect("its stderr");
        let (port_tx, mut port_rx) = tokio::sync::mpsc::channel::<u16>(1);
        let log = self.log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(port) = listening_port(&line) {
                    let _ = port_tx.try_send(port);
                }
                log.push(line);
            }
        });
        let log = self.log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                log.push(line);
            }
        });
        self.child = Some(child);
        let port = tokio::time::timeout(START_TIMEOUT, port_rx.recv())
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("{} never listened:\n{}", self.name, self.log.text()));
        self.port = port;
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let http = http_client();
        let started = Instant::now();
        loop {
            let ready = http
                .get(format!("{}/health/ready", self.url()))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("{} exited ({status}):\n{}", self.name, self.log.text());
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "{} not ready:\n{}",
                self.name,
                self.log.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The instance's base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The guardian as a ceremony lists it.
    pub fn endpoint(&self) -> GuardianEndpoint {
        GuardianEndpoint {
            name: self.name.clone(),
            url: self.url(),
        }
    }

    /// A mediator's client of this guardian.
    pub fn client(&self) -> GuardianClient {
        self.client_as(&self.name, &self.url())
    }

    /// A mediator's client of guardian `name` on this instance, reached at `url`.
    pub fn client_as(&self, name: &str, url: &str) -> GuardianClient {
        self.connector_entry(name, Connector::default())
            .client(name, url)
            .expect("a guardian client")
    }

    /// `connector` with this instance's token added for guardian `name`.
    pub fn connector_entry(&self, name: &str, connector: Connector) -> Connector {
        connector.with_token(name, SecretString::from(self.token.clone()))
    }

    /// Kills the process at once (SIGKILL) and waits for it to be gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Sends SIGKILL without waiting: for callbacks that cannot await.
    pub fn start_kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }

    /// Starts the process again on the same port and database; it unseals itself.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.run().await;
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A plain HTTP client for the tests' own calls.
pub fn http_client() -> reqwest::Client {
    // reqwest is built without a default TLS provider; ring is the one this project uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("an HTTP client")
}

/// The port of the `security-svc listening` line, if `line` is it.
fn listening_port(line: &str) -> Option<u16> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = value.get("fields").unwrap_or(&value);
    if fields.get("message")?.as_str()? != "security-svc listening" {
        return None;
    }
    fields.get("port")?.as_u64()?.try_into().ok()
}

/// Instances for guardians `names`, started at once.
pub async fn start_all(names: &[&str]) -> Vec<Instance> {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, name) in names.iter().enumerate() {
        let name = (*name).to_owned();
        tasks.spawn(async move { (index, Instance::start(&name).await) });
    }
    let mut started: Vec<(usize, Instance)> = tasks.join_all().await;
    started.sort_by_key(|(index, _)| *index);
    started.into_iter().map(|(_, instance)| instance).collect()
}

/// A connector holding every instance's token.
pub fn connector(instances: &[Instance]) -> Connector {
    instances
        .iter()
        .fold(Connector::default(), |connector, instance| {
            instance.connector_entry(&instance.name, connector)
        })
}

/// The guardians as a new ceremony lists them, in sequence order.
pub fn endpoints(instances: &[Instance]) -> Vec<GuardianEndpoint> {
    instances.iter().map(Instance::endpoint).collect()
}

/// A fresh directory for a mediator's state files, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("mediator_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
