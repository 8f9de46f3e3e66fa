//! The operational endpoints: health, metrics, OpenAPI, the roles reference.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn liveness_and_readiness_report_the_dependencies() {
    let app = spawn_app().await;
    let live = app.call(reqwest::Method::GET, "/health/live").send().await;
    assert_eq!(live.expect(200)["status"], json!("ok"));

    let ready = app.call(reqwest::Method::GET, "/health/ready").send().await;
    assert_eq!(
        ready.expect(200),
        &json!({"status": "ready", "database": "ok", "security_svc": "ok"})
    );

    app.security.seal().await;
    let sealed = app.call(reqwest::Method::GET, "/health/ready").send().await;
    assert_eq!(sealed.expect(503)["security_svc"], json!("sealed"));
    assert!(sealed.header("retry-after").is_some());
}

#[tokio::test]
async fn metrics_are_exposed_for_prometheus() {
    let app = spawn_app().await;
    app.get_as_manager("/api/users/me").await.expect(200);
    let reply = app.call(reqwest::Method::GET, "/metrics").send().await;
    reply.expect(200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/plain"),
        "{:?}",
        reply.headers
    );
    assert!(reply.text.contains("# TYPE "), "{}", reply.text);
    assert!(
        reply
            .text
            .lines()
            .any(|line| line.contains("status=\"200\"")),
        "{}",
        reply.text
    );
    assert!(!reply.text.contains(&app.manager.email));
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let app = spawn_app().await;
    let reply = app.call(reqwest::Method::GET, "/openapi.json").send().await;
    let spec = reply.expect(200);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(spec["info"]["title"], json!("user-svc"));
    let paths = spec["paths"].as_object().expect("paths");
    for path in [
        "/api/users",
        "/api/users/me",
        "/api/users/{id}",
        "/api/users/{id}/profile",
        "/api/users/{id}/status",
        "/api/users/{id}/role",
        "/api/users/{id}/audit",
        "/api/roles",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    let docs = app.call(reqwest::Method::GET, "/docs/").send().await;
    assert_eq!(docs.status, 200);
}
