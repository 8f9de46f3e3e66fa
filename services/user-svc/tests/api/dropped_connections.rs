//! PostgreSQL ending user-svc's sessions in the middle of a load: every backend terminated
//! (`pg_terminate_backend`, as a failover or an operator does) and a `pg_ctl restart -m fast`.
//! Clients see successes or 503 with `Retry-After`, never another 5xx; every acknowledged user is
//! a row, and every row is whole: encrypted, signed, audited, and reads back valid.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    JwtKey, PII_COLUMNS, SERVICE_TOKEN, SecuritySvc, now_secs, own_state_with_manager, query_rows,
    spawn_app, start_user_svc, user_settings_at,
};

/// Concurrent writers (each creating users) and readers (the manager and a page of users).
const WRITERS: usize = 4;
const READERS: usize = 3;
/// At most this many users per writer, so a run stays bounded whatever the timing.
const WRITES_PER_WRITER: usize = 60;
/// A write answered 503 (or "key in use") is sent again with its key at most this often.
const RETRIES: usize = 8;
const RETRY_PAUSE: Duration = Duration::from_millis(250);

#[tokio::test]
async fn terminated_backends_mid_load_answer_only_503_and_leave_no_half_written_user() {
    let app = spawn_app().await;
    let target = Target::new(&app.address, app.manager.id, app.manager.token.clone());
    let strict = target.replays_keyed_writes().await;
    let admin_url = app.database.url.clone();
    let database = app.database.name.clone();

    let tally = target
        .load_during(async move {
            let mut terminated = 0;
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(700)).await;
                let mut conn = AsyncPgConnection::establish(&admin_url)
                    .await
                    .expect("the test connects");
                terminated += query_rows(
                    &mut conn,
                    &format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = '{database}' AND pid <> pg_backend_pid()"
                    ),
                )
                .await
                .len();
            }
            assert!(terminated > 0, "no user-svc connection was terminated");
        })
        .await;

    tally.assert_clean(strict);
    audit_every_user(&target, &mut app.db().await, &tally).await;
}

#[tokio::test]
async fn a_postgres_restart_mid_load_answers_only_503_and_leaves_no_half_written_user() {
    let cluster = PrivateCluster::start();
    let stack = Stack::start(&cluster.url()).await;
    let target = &stack.target;
    let strict = target.replays_keyed_writes().await;

    let tally = target
        .load_during(async {
            tokio::time::sleep(Duration::from_millis(800)).await;
            let restart = cluster.clone_handle();
            tokio::task::spawn_blocking(move || restart.restart())
                .await
                .expect("the restart ran");
        })
        .await;

    tally.assert_clean(strict);
    assert!(
        tally.answers.get(&201).copied().unwrap_or(0) > 0,
        "no write succeeded: {tally:?}"
    );
    let mut conn = AsyncPgConnection::establish(&cluster.url())
        .await
        .expect("the test connects after the restart");
    audit_every_user(target, &mut conn, &tally).await;
}

// ---- the load --------------------------------------------------------------------------------

/// user-svc as a client sees it.
struct Target {
    base: String,
    manager_id: i32,
    manager_token: String,
    http: reqwest::Client,
    /// Distinguishes this run's users from any other's.
    run: String,
    next_user: AtomicU32,
}

/// What the clients were answered.
#[derive(Debug, Default)]
struct Tally {
    /// Every final answer, by status.
    answers: BTreeMap<u16, u64>,
    /// The users a 201 acknowledged.
    acknowledged: Vec<i32>,
    /// Writes sent again with their key after a 503 or "key in use".
    retried: u64,
    /// Retried writes answered with the stored answer (`Idempotent-Replayed: true`).
    replayed: u64,
    /// Retried writes answered 409 "email taken": the first attempt had committed and the
    /// service does not replay keyed writes.
    taken_on_retry: u64,
    /// Writes still unavailable after every retry.
    gave_up: u64,
    /// Anything a client must never see.
    violations: Vec<String>,
}

impl Tally {
    fn answered(&mut self, status: u16) {
        *self.answers.entry(status).or_default() += 1;
    }

    fn violation(&mut self, what: String) {
        self.violations.push(what);
    }

    /// Counts an answer to the request `what`; a request left unanswered is a violation.
    fn received(&mut self, what: &str, answer: Result<Answer, String>) -> Option<Answer> {
        match answer {
            Ok(answer) => {
                self.answered(answer.status);
                Some(answer)
            }
            Err(error) => {
                self.violation(format!("{what}: no answer: {error}"));
                None
            }
        }
    }

    fn assert_clean(&self, strict: bool) {
        assert!(self.violations.is_empty(), "{self:#?}");
        if strict {
            assert_eq!(
                self.taken_on_retry, 0,
                "a keyed retry was not replayed: {self:#?}"
            );
        }
        let errors: u64 = self
            .answers
            .iter()
            .filter(|(status, _)| **status >= 500 && **status != 503)
            .map(|(_, count)| count)
            .sum();
        assert_eq!(errors, 0, "{self:#?}");
        eprintln!(
            "answers {:?}; acknowledged {}; retried {}; replayed {}; taken on retry {}; gave up {}",
            self.answers,
            self.acknowledged.len(),
            self.retried,
            self.replayed,
            self.taken_on_retry,
            self.gave_up
        );
    }
}

/// One answer, read whole.
struct Answer {
    status: u16,
    retry_after: bool,
    replayed: bool,
    json: Value,
}

impl Target {
    fn new(base: &str, manager_id: i32, manager_token: String) -> Arc<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Arc::new(Self {
            base: base.to_owned(),
            manager_id,
            manager_token,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
            run: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
            next_user: AtomicU32::new(1),
        })
    }

    /// `GET path` as the manager.
    async fn read_as_manager(&self, path: &str) -> Result<Answer, String> {
        self.send(Method::GET, path, &self.manager_token, None, None)
            .await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<Answer, String> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.map_err(|error| error.to_string())?;
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).is_some();
        let (retry_after, replayed) = (header("retry-after"), header("idempotent-replayed"));
        let text = response.text().await.map_err(|error| error.to_string())?;
        Ok(Answer {
            status,
            retry_after,
            replayed,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
        })
    }

    fn new_user(&self) -> (String, Value) {
        let n = self.next_user.fetch_add(1, Ordering::SeqCst);
        let key = format!("drop-{}-{n}", self.run);
        let body = json!({
            "sngine_email": format!("drop-{}-{n}@example.com", self.run),
            "sngine_phone": format!("+1415555{:04}", n % 10_000),
            "first_name": "Ada",
        });
        (key, body)
    }

    /// Whether a keyed write sent twice is answered once and replayed the second time; until
    /// the service does, a retried write may be answered 409 and is only counted.
    async fn replays_keyed_writes(&self) -> bool {
        let (key, body) = self.new_user();
        let post = || {
            self.send(
                Method::POST,
                "/api/users",
                SERVICE_TOKEN,
                Some(&body),
                Some(&key),
            )
        };
        let first = post().await.expect("the probe is answered");
        assert_eq!(first.status, 201, "the probe write: {}", first.json);
        let second = post().await.expect("the probe is answered");
        second.status == 201 && second.replayed
    }

    /// Runs writers and readers until `fault` has happened and a second has passed after it.
    async fn load_during(self: &Arc<Self>, fault: impl Future<Output = ()>) -> Tally {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for _ in 0..WRITERS {
            let (target, tally, stop) = (self.clone(), tally.clone(), stop.clone());
            clients.push(tokio::spawn(async move {
                for _ in 0..WRITES_PER_WRITER {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    target.write_one(&tally).await;
                }
            }));
        }
        for reader in 0..READERS {
            let (target, tally, stop) = (self.clone(), tally.clone(), stop.clone());
            clients.push(tokio::spawn(async move {
                let mut round = reader;
                while !stop.load(Ordering::SeqCst) && round < 2_000 {
                    target.read_one(round, &tally).await;
                    round += READERS;
                }
            }));
        }
        fault.await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::SeqCst);
        for client in clients {
            client.await.expect("a client ran to its end");
        }
        Arc::try_unwrap(tally)
            .expect("the clients are done")
            .into_inner()
            .expect("the tally is intact")
    }

    /// Creates one user, sending the write again with its key on 503 or "key in use".
    async fn write_one(&self, tally: &Mutex<Tally>) {
        let (key, body) = self.new_user();
        for attempt in 0..=RETRIES {
            let answer = self
                .send(
                    Method::POST,
                    "/api/users",
                    SERVICE_TOKEN,
                    Some(&body),
                    Some(&key),
                )
                .await;
            let again = tally
                .lock()
                .expect("the tally is intact")
                .write_answered(&key, attempt, answer);
            if !again {
                return;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        tally.lock().expect("the tally is intact").gave_up += 1;
    }

    /// Reads the manager (whose signature must check) or a page of users.
    async fn read_one(&self, round: usize, tally: &Mutex<Tally>) {
        let path = if round.is_multiple_of(2) {
            format!("/api/users/{}", self.manager_id)
        } else {
            "/api/users?limit=5".to_owned()
        };
        let answer = self.read_as_manager(&path).await;
        let unavailable = tally.lock().expect("the tally is intact").read_answered(
            &path,
            round.is_multiple_of(2),
            answer,
        );
        if unavailable {
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
}

impl Tally {
    /// Records a write's answer; whether to send it again with its key.
    fn write_answered(
        &mut self,
        key: &str,
        attempt: usize,
        answer: Result<Answer, String>,
    ) -> bool {
        if attempt > 0 {
            self.retried += 1;
        }
        let Some(answer) = self.received(&format!("write {key}"), answer) else {
            return false;
        };
        let in_use = answer.json["type"]
            .as_str()
            .is_some_and(|kind| kind.ends_with("idempotency-key-in-use"));
        let retry_later = answer.status == 503 || in_use;
        match answer.status {
            201 => {
                self.replayed += u64::from(answer.replayed);
                match answer.json["id"].as_i64() {
                    Some(id) => self.acknowledged.push(id as i32),
                    None => self.violation(format!("201 without an id: {}", answer.json)),
                }
                false
            }
            status if retry_later && !answer.retry_after => {
                self.violation(format!("{status} without Retry-After"));
                false
            }
            _ if retry_later => true,
            409 if attempt > 0 => {
                self.taken_on_retry += 1;
                false
            }
            status => {
                self.violation(format!("write {key}: {status} {}", answer.json));
                false
            }
        }
    }

    /// Records a read's answer; whether it was 503.
    fn read_answered(&mut self, path: &str, signed: bool, answer: Result<Answer, String>) -> bool {
        let Some(answer) = self.received(&format!("GET {path}"), answer) else {
            return false;
        };
        let fine = match answer.status {
            200 => !signed || answer.json["signature"]["valid"] == json!(true),
            503 => answer.retry_after,
            _ => false,
        };
        if !fine {
            let status = answer.status;
            self.violation(format!("GET {path}: {status} {}", answer.json));
        }
        answer.status == 503
    }
}

/// Every acknowledged user is a row; every row holds ciphertext in its PII columns, reads back
/// with a valid signature, and has an intact audit trail recording its creation.
async fn audit_every_user(target: &Target, conn: &mut AsyncPgConnection, tally: &Tally) {
    let rows = query_rows(conn, "SELECT * FROM vottery_users ORDER BY id").await;
    let stored: Vec<i64> = rows.iter().filter_map(|row| row["id"].as_i64()).collect();
    for id in &tally.acknowledged {
        assert!(
            stored.contains(&i64::from(*id)),
            "acknowledged user {id} has no row"
        );
    }
    for row in &rows {
        let id = row["id"].as_i64().expect("a user id");
        for column in PII_COLUMNS {
            if let Some(value) = row[column].as_str() {
                assert!(
                    value.starts_with("vault:v"),
                    "user {id}: {column} is not ciphertext"
                );
            }
        }
        let view = target
            .read_as_manager(&format!("/api/users/{id}"))
            .await
            .expect("the read is answered");
        assert_eq!(view.status, 200, "user {id}: {}", view.json);
        assert_eq!(view.json["signature"]["valid"], json!(true), "user {id}");
        let trail = target
            .read_as_manager(&format!("/api/users/{id}/audit"))
            .await
            .expect("the audit read is answered");
        assert_eq!(trail.status, 200, "user {id}'s audit: {}", trail.json);
        assert_eq!(
            trail.json["chain"]["valid"],
            json!(true),
            "user {id}'s audit chain"
        );
        let created = query_rows(
            conn,
            &format!(
                "SELECT id FROM vottery_audit_logs WHERE user_id = {id} \
                 AND action = 'user.create' AND success"
            ),
        )
        .await;
        assert_eq!(created.len(), 1, "user {id} has no single audited creation");
    }
}

// ---- a PostgreSQL of the test's own, to restart ----------------------------------------------

/// A throwaway PostgreSQL cluster on a free loopback port, stopped and removed on drop.
struct PrivateCluster {
    dir: PathBuf,
    port: u16,
}

/// Where the cluster lives, for a blocking restart on another thread.
struct ClusterHandle {
    dir: PathBuf,
    log: PathBuf,
}

impl PrivateCluster {
    fn start() -> Self {
        let dir =
            std::env::temp_dir().join(format!("vottery-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("the cluster directory is made");
        if is_root() {
            run(Command::new("chown").arg("postgres:").arg(&dir));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let cluster = Self { dir, port };
        let data = cluster.data_dir();
        run(pg_command("initdb")
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "-D",
            ])
            .arg(&data));
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
            cluster.dir.display()
        );
        run(pg_command("pg_ctl")
            .args(["-w", "-t", "60", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(cluster.dir.join("server.log"))
            .args(["-o", &options, "start"]));
        cluster
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn clone_handle(&self) -> ClusterHandle {
        ClusterHandle {
            dir: self.data_dir(),
            log: self.dir.join("server.log"),
        }
    }
}

impl ClusterHandle {
    /// `pg_ctl restart -m fast`: every session is ended, then the server starts again with the
    /// options it ran with, logging to its file (not to pg_ctl's output, which would stay open).
    fn restart(&self) {
        run(pg_command("pg_ctl")
            .args(["-w", "-t", "60", "-m", "fast", "-D"])
            .arg(&self.dir)
            .arg("-l")
            .arg(&self.log)
            .arg("restart"));
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = pg_command("pg_ctl")
            .args(["-m", "immediate", "-D"])
            .arg(self.data_dir())
            .arg("stop")
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// A PostgreSQL program of the newest installed version; as the postgres user when running as
/// root (the server refuses to run as root).
fn pg_command(program: &str) -> Command {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's binaries are installed under /usr/lib/postgresql")
        .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .max_by_key(|bin| {
            bin.parent()
                .and_then(Path::file_name)
                .and_then(|version| version.to_str()?.parse::<u32>().ok())
        })
        .expect("a PostgreSQL version with initdb");
    let program = bin.join(program);
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command) {
    let output = command.output().expect("the command starts");
    assert!(
        output.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// security-svc and user-svc, in-process, on one database of the private cluster.
struct Stack {
    target: Arc<Target>,
    _security: SecuritySvc,
}

impl Stack {
    async fn start(url: &str) -> Self {
        let security = SecuritySvc::start_at(url).await;
        let mut settings = user_settings_at(url, &security.address);
        let jwt = JwtKey::dev_hs256();
        jwt.configure(&mut settings);
        let base = start_user_svc(settings.clone()).await;
        let (_state, manager_id) = own_state_with_manager(&settings, 1).await;
        let now = now_secs();
        let token = jwt.sign(&json!({"sub": manager_id.to_string(), "iat": now, "exp": now + 600}));
        Self {
            target: Target::new(&base, manager_id, token),
            _security: security,
        }
    }
}

#[tokio::test]
async fn a_write_whose_commit_fails_is_never_acknowledged() {
    let app = spawn_app().await;
    let user = app.create_user().await;
    // PostgreSQL commits a statement sent outside a transaction after it has sent the statement's
    // rows; a deferred constraint fails only then, as a connection ended in between would.
    app.exec(
        "CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         RAISE EXCEPTION 'refused at commit'; END $$; \
         CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT OR UPDATE ON vottery_users \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.city = 'Refused at commit') \
         EXECUTE FUNCTION refuse_at_commit()",
    )
    .await;
    let users = || app.user_count();
    let before = (users().await, app.audit_count().await);
    let (email, phone) = app.next_contacts();
    let created = app
        .post_user(
            json!({"sngine_email": email, "sngine_phone": phone, "city": "Refused at commit"}),
        )
        .await;
    created.assert_failed();

    let path = format!("/api/users/{}/profile", user.id);
    let changed = app
        .put(&path, &user.token, json!({"city": "Refused at commit"}))
        .await;
    changed.assert_failed();
    assert_eq!((users().await, app.audit_count().await), before);
    let stored = app.read_user(user.id).await;
    assert_eq!(
        (stored["city"].clone(), stored["version"].clone()),
        (Value::Null, json!(1))
    );
}
