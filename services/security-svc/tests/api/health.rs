//! `/v1/sys/health`, `/health/live`, `/health/ready`, `/metrics`, `/openapi.json`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

async fn health_status(app: &TestApp, query: &str) -> (u16, Value) {
    let reply = app.get(&format!("/v1/sys/health{query}"), NO_TOKEN).await;
    (reply.status(), reply.json)
}

#[tokio::test]
async fn sys_health_answers_501_503_200_through_the_seal_lifecycle() {
    let mut app = spawn_uninitialized().await;

    let (status, body) = health_status(&app, "").await;
    assert_eq!(status, 501, "{body}");
    assert_eq!(body["initialized"], json!(false));
    assert_eq!(body["sealed"], json!(true));
    for field in [
        "standby",
        "performance_standby",
        "replication_performance_mode",
        "replication_dr_mode",
        "server_time_utc",
        "version",
    ] {
        assert!(body.get(field).is_some(), "health lacks {field}: {body}");
    }
    assert!(body["server_time_utc"].as_i64().unwrap() > 1_600_000_000);
    assert!(body.get("data").is_none(), "sys answers carry no envelope");
    assert_eq!(health_status(&app, "?uninitcode=200").await.0, 200);

    app.initialize().await;
    let (status, body) = health_status(&app, "").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        (body["initialized"].clone(), body["sealed"].clone()),
        (json!(true), json!(true))
    );
    assert!(
        body.get("cluster_name").is_none(),
        "no cluster fields while sealed"
    );
    assert_eq!(health_status(&app, "?sealedcode=200").await.0, 200);
    assert_eq!(health_status(&app, "?uninitcode=200").await.0, 503);

    app.unseal_with_shares(&[0, 1, 2]).await;
    let (status, body) = health_status(&app, "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["initialized"].clone(), body["sealed"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(health_status(&app, "?activecode=202").await.0, 202);
    assert_eq!(
        health_status(&app, "?sealedcode=299&standbyok=true")
            .await
            .0,
        200
    );

    let head = app
        .request(
            Method::HEAD,
            "/v1/sys/health?activecode=203",
            NO_TOKEN,
            None,
        )
        .await;
    assert_eq!(head.status(), 203);
    assert!(head.text.is_empty());

    for code in ["abc", "100", "199", "600"] {
        app.get(&format!("/v1/sys/health?activecode={code}"), NO_TOKEN)
            .await
            .assert_empty_error(400);
    }
}

#[tokio::test]
async fn liveness_is_always_ok_and_readiness_follows_the_seal() {
    let mut app = spawn_uninitialized().await;
    let live = app.get("/health/live", NO_TOKEN).await;
    assert_eq!(live.status(), 200);
    assert_eq!(live.json, json!({"status": "ok"}));

    let ready = app.get("/health/ready", NO_TOKEN).await;
    assert_eq!(ready.status(), 503, "{}", ready.text);
    assert_eq!(ready.json["seal"], json!("uninitialized"));
    assert_eq!(ready.json["database"], json!("ok"));

    app.initialize().await;
    let ready = app.get("/health/ready", NO_TOKEN).await;
    assert_eq!(ready.status(), 503, "{}", ready.text);
    assert_eq!(ready.json["seal"], json!("sealed"));

    app.unseal_with_shares(&[1, 3, 4]).await;
    let ready = app.get("/health/ready", NO_TOKEN).await;
    assert_eq!(ready.status(), 200, "{}", ready.text);
    assert_eq!(
        ready.json,
        json!({"status": "ready", "database": "ok", "seal": "unsealed"})
    );
    assert_eq!(app.get("/health/live", NO_TOKEN).await.status(), 200);

    app.seal().await;
    assert_eq!(app.get("/health/ready", NO_TOKEN).await.status(), 503);
}

fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_count_operations_by_outcome_with_a_latency_histogram() {
    let app = spawn_unsealed().await;
    let ok_series = r#"vottery_security_operations_total{operation="encrypt",outcome="ok"}"#;
    let before = app.get("/metrics", NO_TOKEN).await;
    assert_eq!(before.status(), 200);
    assert_eq!(metric_value(&before.text, ok_series), Some(0.0));
    assert!(before.text.contains("vottery_security_sealed 0"));

    app.create_key("metered", "aes256-gcm96").await;
    app.encrypt("metered", b"count me").await;
    let denied = app
        .transit_as(USER, "encrypt/metered", json!({"plaintext": b64("x")}))
        .await;
    denied.assert_denied();

    let after = app.get("/metrics", NO_TOKEN).await;
    assert_eq!(after.status(), 200);
    let content_type = after.headers["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = &after.text;
    assert_eq!(metric_value(text, ok_series), Some(1.0), "{text}");
    assert_eq!(
        metric_value(
            text,
            r#"vottery_security_operations_total{operation="encrypt",outcome="denied"}"#
        ),
        Some(1.0)
    );
    assert!(text.contains("# TYPE vottery_security_operation_duration_seconds histogram"));
    assert_eq!(
        metric_value(
            text,
            r#"vottery_security_operation_duration_seconds_count{operation="encrypt"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        metric_value(
            text,
            r#"vottery_security_operation_duration_seconds_bucket{operation="encrypt",le="+Inf"}"#
        ),
        Some(2.0)
    );
    assert!(
        metric_value(
            text,
            r#"vottery_security_operation_duration_seconds_sum{operation="encrypt"}"#
        )
        .is_some_and(|sum| sum > 0.0)
    );
    assert!(text.contains("http_requests_total{"), "HTTP metrics too");

    app.seal().await;
    let sealed = app.get("/metrics", NO_TOKEN).await;
    assert!(sealed.text.contains("vottery_security_sealed 1"));
}

#[tokio::test]
async fn openapi_document_is_served_as_json() {
    let app = spawn_uninitialized().await;
    let reply = app.get("/openapi.json", NO_TOKEN).await;
    assert_eq!(reply.status(), 200, "{}", reply.text);
    assert!(
        reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert!(reply.json["openapi"].as_str().is_some(), "{}", reply.text);
    assert_eq!(reply.json["info"]["title"], json!("security-svc"));
}

#[tokio::test]
async fn unknown_paths_answer_404_with_an_empty_error_list() {
    let app = spawn_unsealed().await;
    app.get("/v1/nothing/here", ADMIN)
        .await
        .assert_empty_error(404);
}

#[tokio::test]
async fn a_callers_request_id_is_echoed_in_the_header_and_the_envelope() {
    let app = spawn_unsealed().await;
    app.create_key("traced", "aes256-gcm96").await;
    let encrypt_with_request_id = |token: Option<&str>, request_id: &str| {
        let mut request = app
            .http
            .post(app.url("/v1/transit/encrypt/traced"))
            .header("X-Request-Id", request_id)
            .json(&json!({"plaintext": b64("x")}));
        if let Some(token) = token {
            request = request.header("X-Vault-Token", token);
        }
        async move { request.send().await.unwrap() }
    };
    let response = encrypt_with_request_id(ADMIN, "caller-req-42").await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["x-request-id"], "caller-req-42");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], json!("caller-req-42"));
    // Errors carry it too; unusable ids are replaced.
    let response = encrypt_with_request_id(NO_TOKEN, "bad id with spaces").await;
    assert_eq!(response.status().as_u16(), 403);
    let echoed = response.headers()["x-request-id"].to_str().unwrap();
    assert!(!echoed.is_empty() && echoed != "bad id with spaces");
}

#[tokio::test]
async fn methods_a_route_does_not_take_answer_405_with_an_empty_error_list() {
    let app = spawn_unsealed().await;
    let patch = Method::PATCH;
    for (method, path) in [
        (Method::GET, "/v1/transit/encrypt/k"),
        (Method::GET, "/v1/transit/sign/k"),
        (Method::DELETE, "/v1/sys/seal"),
        (Method::GET, "/v1/sys/unseal"),
        (Method::POST, "/v1/sys/seal-status"),
        (patch, "/v1/transit/keys/k"),
    ] {
        let reply = app.request(method.clone(), path, ADMIN, None).await;
        assert_eq!(reply.status(), 405, "{method} {path}: {}", reply.text);
        assert_eq!(reply.json, json!({"errors": []}), "{method} {path}");
    }
}
