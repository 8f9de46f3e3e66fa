//! The OpenAPI document: the checked-in `openapi.json` is what the code generates, every route
//! the service registers is documented, and every documented operation is served.
//!
//! After changing a route or a documented type, regenerate the file with
//! `UPDATE_OPENAPI=1 cargo test -p security-svc --test api openapi`.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::Value;
use vottery_server::openapi::conformance;

use crate::helpers::{NO_TOKEN, spawn_unsealed};

const REGENERATE: &str = "UPDATE_OPENAPI=1 cargo test -p security-svc --test api openapi";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generated() -> String {
    security_svc::routes::openapi::to_pretty_json().expect("the document serializes")
}

fn document() -> Value {
    serde_json::from_str(&generated()).expect("the document is JSON")
}

#[test]
fn the_openapi_document_matches_the_checked_in_file() {
    conformance::assert_checked_in(
        &manifest_dir().join("openapi.json"),
        &generated(),
        REGENERATE,
    );
}

#[test]
fn every_schema_the_document_refers_to_is_in_it() {
    let (found, dangling) = conformance::dangling_references(&document());
    assert!(found > 50, "the scan found {found} references");
    assert!(dangling.is_empty(), "references to nothing: {dangling:?}");
}

#[test]
fn every_registered_route_is_in_the_openapi_document() {
    let src = manifest_dir().join("src");
    let mut registered = conformance::registered_paths(&src.join("routes"));
    registered.extend(conformance::path_literals_in_configure(
        &std::fs::read_to_string(src.join("guardians/routes.rs")).expect("guardians/routes.rs"),
    ));
    assert!(registered.len() > 20, "the route scan found {registered:?}");
    let missing = conformance::undocumented(&registered, &document());
    assert!(
        missing.is_empty(),
        "routes registered but not documented: {missing:?}; add #[utoipa::path] to their handlers, \
         list them in security_svc::routes::openapi::ApiDoc, then run `{REGENERATE}`"
    );
}

/// A concrete URL for a templated path. Vault's `LIST` is documented as `GET ?list=true`, so
/// every probe carries `list=true`, and `LIST` is checked on its own.
fn concrete(path: &str) -> String {
    let path = path
        .replace("{name}", "probe-key")
        .replace("{algorithm}", "sha2-256")
        .replace("{kind}", "public-key")
        .replace("{version}", "1")
        .replace("{source}", "platform")
        .replace("{bytes}", "16")
        .replace("{guardian}", "probe-guardian");
    format!("{path}?list=true")
}

#[tokio::test]
async fn documented_operations_are_served_and_no_others() {
    let app = spawn_unsealed().await;
    let wrong = conformance::served_as_documented(&document(), concrete, async |method, url| {
        let verb = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        app.request(verb, url, NO_TOKEN, None).await.status()
    })
    .await;
    assert!(
        wrong.is_empty(),
        "the document and the routes disagree:\n{}",
        wrong.join("\n")
    );

    let list = Method::from_bytes(b"LIST").unwrap();
    let listed = app.request(list, "/v1/transit/keys", NO_TOKEN, None).await;
    assert_eq!(listed.status(), 403, "LIST is served: {}", listed.text);

    let docs = app.request(Method::GET, "/docs", NO_TOKEN, None).await;
    assert_eq!(docs.status(), 200, "/docs leads to the page: {}", docs.text);
    assert!(docs.text.contains("swagger"), "{}", docs.text);
}
