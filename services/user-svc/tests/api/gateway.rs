//! The API gateway in front of user-svc: Debian's nginx running `deploy/gateway` exactly as
//! `render.sh` renders it, proxying to a real user-svc. The user API works through it,
//! security-svc is never routed, the request id and the client's address travel through, and
//! nginx's own refusals are problems like the services'.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    Call, Reply, SECURITY_ADMIN_TOKEN, SERVICE_TOKEN, TestApp, closed_port, send, spawn_app,
};

/// Where the gateway configuration lives in the repository.
fn gateway_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/gateway")
}

/// The nginx binary: `NGINX_BIN` (set by `scripts/test.sh`), Debian's path, or `PATH`.
fn nginx_binary() -> PathBuf {
    let from_env = std::env::var_os("NGINX_BIN").map(PathBuf::from);
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("nginx"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    from_env
        .into_iter()
        .chain([PathBuf::from("/usr/sbin/nginx")])
        .chain(on_path)
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nginx is not installed, and the gateway tests need it: scripts/test.sh installs \
                 it (Debian's nginx-light), or run `apt-get install nginx-light` as root"
            )
        })
}

/// An HTTP client; `source` picks the local address it connects from.
fn http_client(source: Option<IpAddr>) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .local_address(source)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// A port free on every interface, as nginx's `listen PORT` binds.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("0.0.0.0:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// A running nginx serving the rendered gateway; stopped and cleaned up on drop.
struct Gateway {
    /// The gateway's base URL.
    address: String,
    prefix: PathBuf,
    nginx: PathBuf,
    process: Child,
}

impl Gateway {
    /// Renders `deploy/gateway` for `upstream` (host:port of user-svc) into a fresh prefix and
    /// starts nginx on a free port, in the foreground; returns once it answers.
    async fn start(upstream: &str) -> Self {
        let nginx = nginx_binary();
        let prefix = std::env::temp_dir().join(format!("vottery-gateway-{}", uuid::Uuid::new_v4()));
        // Another attempt only when the port was taken between choosing and binding it.
        for _ in 0..3 {
            let port = free_port();
            let rendered = Command::new("bash")
                .arg(gateway_dir().join("render.sh"))
                .arg(&prefix)
                .arg(upstream)
                .arg(port.to_string())
                .status()
                .expect("render.sh runs");
            assert!(rendered.success(), "render.sh failed: {rendered}");
            let stderr = File::create(prefix.join("stderr.log")).expect("nginx's log file");
            let process = Command::new(&nginx)
                .arg("-p")
                .arg(&prefix)
                .arg("-c")
                .arg(prefix.join("nginx.conf"))
                .args(["-g", "daemon off;"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .unwrap_or_else(|error| panic!("cannot start {}: {error}", nginx.display()));
            let mut gateway = Self {
                address: format!("http://127.0.0.1:{port}"),
                prefix: prefix.clone(),
                nginx: nginx.clone(),
                process,
            };
            if gateway.wait_until_answering().await {
                return gateway;
            }
            let log = gateway.log();
            assert!(
                log.contains("Address already in use"),
                "nginx did not start:\n{log}"
            );
        }
        panic!("nginx found no free port in three attempts");
    }

    /// Polls `/healthz` for up to ten seconds; false when nginx exits first.
    async fn wait_until_answering(&mut self) -> bool {
        let http = http_client(None);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.process.try_wait() {
                return false;
            }
            let probe = http
                .get(format!("{}/healthz", self.address))
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if probe.is_ok_and(|response| response.status() == 200) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nginx did not answer within ten seconds:\n{}", self.log());
    }

    /// What nginx wrote to stderr (its error log).
    fn log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("stderr.log")).unwrap_or_default()
    }

    /// The gateway's access log.
    fn access_log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("access.log")).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // A graceful stop lets the master take its workers down with it.
        let _ = Command::new(&self.nginx)
            .arg("-p")
            .arg(&self.prefix)
            .arg("-c")
            .arg(self.prefix.join("nginx.conf"))
            .args(["-s", "stop"])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.process.try_wait() {
                let _ = std::fs::remove_dir_all(&self.prefix);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_dir_all(&self.prefix);
    }
}

/// A test app with a gateway in front of it.
async fn app_behind_gateway() -> (TestApp, Gateway) {
    let app = spawn_app().await;
    let upstream = app
        .address
        .strip_prefix("http://")
        .expect("user-svc's address is http://host:port")
        .to_owned();
    let gateway = Gateway::start(&upstream).await;
    (app, gateway)
}

/// A body for `POST /api/users` with fresh contacts.
fn new_user_body(app: &TestApp) -> (Value, String) {
    let (email, phone) = app.next_contacts();
    (json!({"sngine_email": email, "sngine_phone": phone}), email)
}

/// The request id user-svc stored on the audit row of a user's creation.
async fn audited_request_id(app: &TestApp, user_id: i64) -> String {
    let rows = app.audit_rows(user_id as i32).await;
    let created = rows
        .iter()
        .find(|row| row["action"] == json!("user.create"))
        .unwrap_or_else(|| panic!("no user.create audit row: {rows:?}"));
    created["request_id"]
        .as_str()
        .expect("the audit row has a request id")
        .to_owned()
}

/// A request to `path` through the gateway.
fn through(app: &TestApp, gateway: &Gateway, method: Method, path: &str) -> Call {
    app.call_at(&gateway.address, method, path)
}

/// `GET path` through the gateway as `token`.
async fn get_through(app: &TestApp, gateway: &Gateway, path: &str, token: &str) -> Reply {
    through(app, gateway, Method::GET, path)
        .token(token)
        .send()
        .await
}

/// `POST /api/users` of `body` through the gateway with the service token and, when given, the
/// caller's `X-Request-Id`.
async fn create_through(
    app: &TestApp,
    gateway: &Gateway,
    body: &Value,
    request_id: Option<&str>,
) -> Reply {
    let mut call = through(app, gateway, Method::POST, "/api/users").token(SERVICE_TOKEN);
    if let Some(request_id) = request_id {
        call = call.header("X-Request-Id", request_id);
    }
    call.json(body).send().await
}

/// Asserts the gateway's own 404 problem (not one of user-svc's).
fn assert_gateway_not_found(reply: &Reply) {
    reply.problem(404);
    assert_eq!(
        reply.json["detail"],
        json!("no such route"),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn the_user_api_works_through_the_gateway() {
    let (app, gateway) = app_behind_gateway().await;

    let (body, email) = new_user_body(&app);
    let created = create_through(&app, &gateway, &body, None).await;
    let id = created.expect(201)["id"].as_i64().expect("an id");
    assert_eq!(created.header("location"), Some(format!("/api/users/{id}")));

    let token = &app.manager.token;
    let read = get_through(&app, &gateway, &format!("/api/users/{id}"), token).await;
    let view = read.expect(200);
    assert_eq!(view["sngine_email"], json!(email));
    assert_eq!(view["signature"]["valid"], json!(true));
    assert!(read.header("etag").is_some());

    // The query string goes through with the exact-match location.
    let listed = get_through(&app, &gateway, "/api/users?limit=1&page=1", token).await;
    assert_eq!(listed.expect(200)["data"].as_array().map(Vec::len), Some(1));

    get_through(&app, &gateway, "/api/roles", token)
        .await
        .expect(200);

    // Without a token user-svc itself answers, through the gateway.
    through(&app, &gateway, Method::GET, &format!("/api/users/{id}"))
        .send()
        .await
        .problem(401);
}

/// The feed through the gateway, as `token`, after `after` (from the start when empty).
async fn feed_via(app: &TestApp, gateway: &Gateway, token: &str, after: &str) -> Reply {
    let query = if after.is_empty() {
        "/api/events?limit=1000".to_owned()
    } else {
        format!("/api/events?limit=1000&after={after}")
    };
    get_through(app, gateway, &query, token).await
}

#[tokio::test]
async fn the_event_feed_pages_through_the_gateway_with_its_cursor() {
    let (app, gateway) = app_behind_gateway().await;
    let (body, _) = new_user_body(&app);
    let id = create_through(&app, &gateway, &body, None)
        .await
        .expect(201)["id"]
        .as_i64()
        .expect("an id");

    // The feed serves an event once every transaction older than it has ended.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (created, next) = loop {
        let page = feed_via(&app, &gateway, SERVICE_TOKEN, "").await;
        let page = page.expect(200);
        let created = page["events"].as_array().and_then(|events| {
            events
                .iter()
                .find(|event| event["subject"] == json!(id.to_string()))
                .cloned()
        });
        if let Some(created) = created {
            break (created, page["next"].as_str().expect("a cursor").to_owned());
        }
        assert!(
            Instant::now() < deadline,
            "the feed never served the creation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(created["type"], json!("dev.vottery.user.created"));
    assert_eq!(created["data"]["user_id"], json!(id));
    assert_eq!(created["specversion"], json!("1.0"));

    // After the last cursor nothing is new, and the cursor stays.
    let after = feed_via(&app, &gateway, SERVICE_TOKEN, &next).await;
    assert_eq!(after.expect(200)["events"], json!([]));
    assert_eq!(after.json["next"], json!(next));

    // user-svc's own refusals come back through the gateway.
    feed_via(&app, &gateway, "not-a-token", "")
        .await
        .problem(401);
    feed_via(&app, &gateway, SERVICE_TOKEN, "not-a-cursor")
        .await
        .assert_invalid(&["after"]);
}

#[tokio::test]
async fn security_svc_and_internal_routes_are_not_reachable_through_the_gateway() {
    let (app, gateway) = app_behind_gateway().await;
    let encrypts = app.security.operations("encrypt").await;

    let encrypt = through(
        &app,
        &gateway,
        Method::POST,
        "/v1/transit/encrypt/vottery-users-pii",
    )
    .header("X-Vault-Token", SECURITY_ADMIN_TOKEN)
    .json(&json!({"plaintext": "aGVsbG8="}))
    .send()
    .await;
    assert_gateway_not_found(&encrypt);
    let seal_status = through(&app, &gateway, Method::GET, "/v1/sys/seal-status")
        .send()
        .await;
    assert_gateway_not_found(&seal_status);
    // A path that only decodes and normalises to /v1/ is refused the same way.
    let dotted = through(
        &app,
        &gateway,
        Method::GET,
        "/api/users/..%2f..%2fv1/sys/seal-status",
    )
    .send()
    .await;
    assert_gateway_not_found(&dotted);
    for path in ["/health/ready", "/metrics", "/openapi.json", "/api/usersx"] {
        let reply = get_through(&app, &gateway, path, &app.manager.token).await;
        assert_gateway_not_found(&reply);
    }

    // The routes exist on security-svc itself, and nothing reached it through the gateway.
    let direct = app
        .call_at(&app.security.address, Method::GET, "/v1/sys/seal-status")
        .send()
        .await;
    assert_eq!(direct.expect(200)["sealed"], json!(false));
    assert_eq!(app.security.operations("encrypt").await, encrypts);
}

#[tokio::test]
async fn the_request_id_travels_through_the_gateway_or_is_made_there() {
    let (app, gateway) = app_behind_gateway().await;

    // The caller's id: echoed by the gateway, used by user-svc, in the gateway's access log.
    let sent = format!("gw-test-{}", uuid::Uuid::new_v4());
    let (body, _) = new_user_body(&app);
    let created = create_through(&app, &gateway, &body, Some(&sent)).await;
    let id = created.expect(201)["id"].as_i64().expect("an id");
    assert_eq!(created.header("x-request-id"), Some(sent.clone()));
    assert_eq!(audited_request_id(&app, id).await, sent);
    assert!(
        gateway.access_log().contains(&format!("request_id={sent}")),
        "{}",
        gateway.access_log()
    );

    // No id: the gateway makes one, and user-svc uses that one.
    let (body, _) = new_user_body(&app);
    let created = create_through(&app, &gateway, &body, None).await;
    let id = created.expect(201)["id"].as_i64().expect("an id");
    let made = created.header("x-request-id").expect("a request id");
    assert!(
        made.len() == 32 && made.bytes().all(|byte| byte.is_ascii_hexdigit()),
        "{made:?}"
    );
    assert_eq!(audited_request_id(&app, id).await, made);

    // An id user-svc would not accept is replaced at the gateway, so both still agree.
    let (body, _) = new_user_body(&app);
    let unusable = "not a usable id; <script>";
    let created = create_through(&app, &gateway, &body, Some(unusable)).await;
    let id = created.expect(201)["id"].as_i64().expect("an id");
    let replaced = created.header("x-request-id").expect("a request id");
    assert_ne!(replaced, unusable);
    assert_eq!(audited_request_id(&app, id).await, replaced);

    // The gateway's own answers carry an id too.
    let refused = through(&app, &gateway, Method::GET, "/v1/sys/seal-status")
        .header("X-Request-Id", "gw-refused-1")
        .send()
        .await;
    assert_eq!(refused.header("x-request-id"), Some("gw-refused-1".into()));
}

#[tokio::test]
async fn the_client_address_reaches_user_svc_through_the_gateway() {
    let (app, gateway) = app_behind_gateway().await;
    let user = app.active_user().await;
    // A client on 127.0.0.2: nginx (on 127.0.0.1, a trusted proxy) forwards its address.
    let client = http_client(Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))));
    let profile = format!("{}/api/users/{}/profile", gateway.address, user.id);
    // A profile change of the city, with one more header.
    let put_city = |(name, value): (&str, &str), city: &str| {
        send(
            client
                .put(&profile)
                .bearer_auth(&user.token)
                .header(name, value)
                .json(&json!({ "city": city })),
        )
    };

    put_city(("User-Agent", "vottery-gateway-test/1.0"), "Quito")
        .await
        .expect(200);
    let last = app.audit_rows(user.id).await.pop().expect("an audit row");
    assert_eq!(last["ip_address"], json!("127.0.0.2"), "{last}");
    assert_eq!(last["user_agent"], json!("vottery-gateway-test/1.0"));

    // An address the client claims for itself is not taken for its own.
    put_city(("X-Forwarded-For", "198.51.100.23"), "Lima")
        .await
        .expect(200);
    let last = app.audit_rows(user.id).await.pop().expect("an audit row");
    assert_eq!(last["ip_address"], json!("127.0.0.2"), "{last}");
}

#[tokio::test]
async fn the_gateway_refuses_large_bodies_and_reports_user_svc_down_as_problems() {
    let gateway = Gateway::start(&format!("127.0.0.1:{}", closed_port())).await;
    let http = http_client(None);

    let large = send(
        http.post(format!("{}/api/users", gateway.address))
            .header("Content-Type", "application/json")
            .header("X-Request-Id", "gw-large-1")
            .body(format!("{{\"pad\":\"{}\"}}", "x".repeat(70_000))),
    )
    .await;
    large.problem(413);
    assert_eq!(large.problem_type(), "payload-too-large");
    assert_eq!(large.header("x-request-id"), Some("gw-large-1".into()));

    let down = send(http.get(format!("{}/api/roles", gateway.address))).await;
    down.problem(503);
    assert_eq!(down.problem_type(), "dependency-unavailable");
    assert_eq!(down.header("retry-after"), Some("5".into()));
    assert!(down.header("x-request-id").is_some_and(|id| !id.is_empty()));
}

#[test]
fn the_kubernetes_gateway_serves_the_tested_configuration() {
    // deploy/k8s carries the template in a ConfigMap (kustomize reads no file outside its
    // directory): it must stay the configuration these tests run.
    let template = std::fs::read_to_string(gateway_dir().join("templates/default.conf.template"))
        .expect("the gateway template");
    let config_map = std::fs::read_to_string(gateway_dir().join("../k8s/gateway/configmap.yaml"))
        .expect("the gateway ConfigMap");
    let mut embedded = String::from("  default.conf.template: |\n");
    for line in template.lines() {
        if !line.trim().is_empty() {
            embedded.push_str("    ");
            embedded.push_str(line);
        }
        embedded.push('\n');
    }
    assert!(
        config_map.contains(&embedded),
        "deploy/k8s/gateway/configmap.yaml's default.conf.template differs from \
         deploy/gateway/templates/default.conf.template; copy the template into it"
    );
}
