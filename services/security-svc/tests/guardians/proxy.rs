//! A man in the middle for one guardian's instance: it forwards every request and, for the
//! routes told, rewrites the JSON answer (a number of times, or always) or holds the request
//! back for a while. The faults a network or a compromised instance could inject, seen by the
//! mediator exactly as it would see them.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::Value;

type Rewrite = Arc<dyn Fn(&mut Value) + Send + Sync>;

#[derive(Clone)]
enum Action {
    Rewrite(Rewrite),
    Delay(Duration),
}

#[derive(Clone)]
struct Rule {
    method: &'static str,
    suffix: String,
    /// `None`: every time.
    remaining: Option<usize>,
    action: Action,
}

struct Upstream {
    base: String,
    http: reqwest::Client,
    rules: Arc<Mutex<Vec<Rule>>>,
}

/// A running proxy; stopped when dropped.
pub struct Proxy {
    pub url: String,
    rules: Arc<Mutex<Vec<Rule>>>,
    handle: ServerHandle,
}

impl Proxy {
    /// A proxy on a free loopback port forwarding to `upstream`.
    pub async fn start(upstream: &str) -> Proxy {
        let rules: Arc<Mutex<Vec<Rule>>> = Arc::default();
        let state = web::Data::new(Upstream {
            base: upstream.trim_end_matches('/').to_owned(),
            http: crate::instances::http_client(),
            rules: Arc::clone(&rules),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port for the proxy");
        let port = listener.local_addr().expect("its address").port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .default_service(web::to(forward))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("the proxy listens")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Proxy {
            url: format!("http://127.0.0.1:{port}"),
            rules,
            handle,
        }
    }

    fn add(&self, rule: Rule) {
        self.rules.lock().expect("the rules lock").push(rule);
    }

    /// Rewrites the JSON answer of `method` requests whose path ends with `suffix`, the next
    /// `times` times (`None`: always).
    pub fn tamper(
        &self,
        method: &'static str,
        suffix: &str,
        times: Option<usize>,
        rewrite: impl Fn(&mut Value) + Send + Sync + 'static,
    ) {
        self.add(Rule {
            method,
            suffix: suffix.to_owned(),
            remaining: times,
            action: Action::Rewrite(Arc::new(rewrite)),
        });
    }

    /// Holds back every `method` request whose path ends with `suffix` for `delay`.
    pub fn delay(&self, method: &'static str, suffix: &str, delay: Duration) {
        self.add(Rule {
            method,
            suffix: suffix.to_owned(),
            remaining: None,
            action: Action::Delay(delay),
        });
    }

    /// Forwards everything unchanged from now on.
    pub fn clear(&self) {
        self.rules.lock().expect("the rules lock").clear();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}

/// The rule that applies to this request, counting it down.
fn take_rule(rules: &Mutex<Vec<Rule>>, method: &str, path: &str) -> Option<Action> {
    let mut rules = rules.lock().expect("the rules lock");
    let rule = rules.iter_mut().find(|rule| {
        rule.method == method && path.ends_with(&rule.suffix) && rule.remaining != Some(0)
    })?;
    if let Some(remaining) = rule.remaining.as_mut() {
        *remaining -= 1;
    }
    Some(rule.action.clone())
}

async fn forward(
    request: HttpRequest,
    body: web::Bytes,
    upstream: web::Data<Upstream>,
) -> HttpResponse {
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let method = request.method().as_str().to_owned();
    let action = take_rule(&upstream.rules, &method, request.uri().path());
    if let Some(Action::Delay(delay)) = &action {
        tokio::time::sleep(*delay).await;
    }
    let mut outgoing = upstream
        .http
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("a method"),
            format!("{}{path}", upstream.base),
        )
        .body(body.to_vec());
    for name in ["x-vault-token", "content-type", "x-request-id"] {
        if let Some(value) = request.headers().get(name).and_then(|v| v.to_str().ok()) {
            outgoing = outgoing.header(name, value);
        }
    }
    let Ok(response) = outgoing.send().await else {
        return HttpResponse::BadGateway().finish();
    };
    let status = StatusCode::from_u16(response.status().as_u16()).expect("a status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let Ok(mut bytes) = response.bytes().await.map(|b| b.to_vec()) else {
        return HttpResponse::BadGateway().finish();
    };
    if let Some(Action::Rewrite(rewrite)) = action
        && let Ok(mut value) = serde_json::from_slice::<Value>(&bytes)
    {
        rewrite(&mut value);
        bytes = serde_json::to_vec(&value).expect("JSON");
    }
    HttpResponse::build(status)
        .content_type(content_type)
        .body(bytes)
}
