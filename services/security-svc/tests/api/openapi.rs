//! The OpenAPI document: the checked-in `openapi.json` is what the code generates, every route
//! the service registers is documented, and every documented operation is served.
//!
//! After changing a route or a documented type, regenerate the file with
//! `UPDATE_OPENAPI=1 cargo test -p security-svc --test api openapi`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{NO_TOKEN, spawn_unsealed};

const REGENERATE: &str = "UPDATE_OPENAPI=1 cargo test -p security-svc --test api openapi";

/// The methods probed on every documented path. Vault's `LIST` is documented as
/// `GET ?list=true` and checked on its own.
const METHODS: [&str; 6] = ["get", "head", "post", "put", "delete", "patch"];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generated() -> String {
    security_svc::routes::openapi::to_pretty_json().expect("the document serializes")
}

fn document() -> Value {
    serde_json::from_str(&generated()).expect("the document is JSON")
}

/// The documented methods of each path.
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let document = document();
    document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .expect("a path item")
                .keys()
                .filter(|key| METHODS.contains(&key.as_str()))
                .cloned()
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

#[test]
fn the_openapi_document_matches_the_checked_in_file() {
    let path = manifest_dir().join("openapi.json");
    let generated = generated();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("openapi.json is writable");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != generated {
        let line = checked_in
            .lines()
            .zip(generated.lines())
            .position(|(old, new)| old != new)
            .unwrap_or_else(|| checked_in.lines().count().min(generated.lines().count()));
        panic!(
            "{} is out of date with the code (first difference at line {}).\n\
             Regenerate it with `{REGENERATE}` and review the diff.",
            path.display(),
            line + 1
        );
    }
}

/// Every `$ref` in `value`, with where it was found.
fn references(value: &Value, at: &str, found: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => found.push((target.clone(), at.to_owned())),
                    _ => references(value, &format!("{at}/{key}"), found),
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                references(item, &format!("{at}/{index}"), found);
            }
        }
        _ => {}
    }
}

#[test]
fn every_schema_the_document_refers_to_is_in_it() {
    let document = document();
    let mut found = Vec::new();
    references(&document, "", &mut found);
    let missing: Vec<_> = found
        .iter()
        .filter(|(target, _)| {
            let pointer = target.trim_start_matches('#');
            document.pointer(pointer).is_none()
        })
        .collect();
    assert!(found.len() > 50, "the scan found {found:?}");
    assert!(missing.is_empty(), "references to nothing: {missing:?}");
}

/// The path literals inside each `configure` function of the route modules.
fn registered_paths(dir: &Path) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("the routes directory") {
        let file = entry.expect("a directory entry").path();
        if file.extension().is_some_and(|ext| ext == "rs") {
            let source = std::fs::read_to_string(&file).expect("a route module");
            paths.extend(path_literals_in_configure(&source));
        }
    }
    paths
}

fn path_literals_in_configure(source: &str) -> Vec<String> {
    let Some(start) = source.find("fn configure(") else {
        return Vec::new();
    };
    source[start..]
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|literal| literal.starts_with('/'))
        .map(|literal| {
            let trimmed = literal.trim_end_matches('/');
            if trimmed.is_empty() { "/" } else { trimmed }.to_owned()
        })
        .collect()
}

#[test]
fn every_registered_route_is_in_the_openapi_document() {
    let src = manifest_dir().join("src");
    let mut registered = registered_paths(&src.join("routes"));
    registered.extend(path_literals_in_configure(
        &std::fs::read_to_string(src.join("guardians/routes.rs")).expect("guardians/routes.rs"),
    ));
    assert!(registered.len() > 20, "the route scan found {registered:?}");
    let documented = documented();
    let missing: Vec<_> = registered
        .iter()
        .filter(|path| !path.starts_with("/docs") && !documented.contains_key(*path))
        .collect();
    assert!(
        missing.is_empty(),
        "routes registered but not documented: {missing:?}; add #[utoipa::path] to their handlers, \
         list them in security_svc::routes::openapi::ApiDoc, then run `{REGENERATE}`"
    );
}

/// A concrete URL for a templated path.
fn concrete(path: &str) -> String {
    path.replace("{name}", "probe-key")
        .replace("{algorithm}", "sha2-256")
        .replace("{kind}", "public-key")
        .replace("{version}", "1")
        .replace("{source}", "platform")
        .replace("{bytes}", "16")
        .replace("{guardian}", "probe-guardian")
}

#[tokio::test]
async fn documented_operations_are_served_and_no_others() {
    let app = spawn_unsealed().await;
    let mut wrong = Vec::new();
    for (path, methods) in documented() {
        assert!(!path.contains('{') || concrete(&path) != path, "{path}");
        let url = format!("{}?list=true", concrete(&path));
        for method in METHODS {
            let verb = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let status = app.request(verb, &url, NO_TOKEN, None).await.status();
            let served = status != 404 && status != 405;
            if served != methods.contains(method) {
                wrong.push(format!(
                    "{} {path}: {status}, documented: {}",
                    method.to_uppercase(),
                    methods.contains(method)
                ));
            }
        }
    }
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
