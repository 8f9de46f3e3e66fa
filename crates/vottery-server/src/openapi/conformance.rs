//! What both services' tests check of their OpenAPI documents: the checked-in file is what the
//! code generates, every route a `configure` function registers is documented, every `$ref`
//! resolves, and every documented operation is served (and no other method on its path). A
//! failed check panics, as an assertion in the test calling it would.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

/// The methods probed on every documented path.
pub const METHODS: [&str; 6] = ["get", "head", "post", "put", "delete", "patch"];

/// Compares `generated` with the checked-in file at `path`, or rewrites the file when
/// `UPDATE_OPENAPI` is set; panics at the first difference, naming `regenerate`.
pub fn assert_checked_in(path: &Path, generated: &str, regenerate: &str) {
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, generated)
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
        return;
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    if checked_in != generated {
        let line = checked_in
            .lines()
            .zip(generated.lines())
            .position(|(old, new)| old != new)
            .unwrap_or_else(|| checked_in.lines().count().min(generated.lines().count()));
        panic!(
            "{} is out of date with the code (first difference at line {}).\n\
             Regenerate it with `{regenerate}` and review the diff.",
            path.display(),
            line + 1
        );
    }
}

/// The documented methods of each path.
pub fn documented(document: &Value) -> BTreeMap<String, BTreeSet<String>> {
    document["paths"]
        .as_object()
        .unwrap_or_else(|| panic!("the document has no paths"))
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .unwrap_or_else(|| panic!("{path} is not a path item"))
                .keys()
                .filter(|key| METHODS.contains(&key.as_str()))
                .cloned()
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

/// The path literals inside each `configure` function of the route modules in `dir`.
pub fn registered_paths(dir: &Path) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for entry in std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
    {
        let file = entry
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
            .path();
        if file.extension().is_some_and(|ext| ext == "rs") {
            let source = std::fs::read_to_string(&file)
                .unwrap_or_else(|error| panic!("cannot read {}: {error}", file.display()));
            paths.extend(path_literals_in_configure(&source));
        }
    }
    paths
}

/// The path literals inside a module's `configure` function.
pub fn path_literals_in_configure(source: &str) -> Vec<String> {
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

/// The registered paths the document lacks (the documentation page aside).
pub fn undocumented(registered: &BTreeSet<String>, document: &Value) -> Vec<String> {
    let documented = documented(document);
    registered
        .iter()
        .filter(|path| !path.starts_with("/docs") && !documented.contains_key(*path))
        .cloned()
        .collect()
}

/// Every `$ref` in `document` that points at nothing, with where it was found; and how many
/// there are in all.
pub fn dangling_references(document: &Value) -> (usize, Vec<(String, String)>) {
    let mut found = Vec::new();
    references(document, "", &mut found);
    let dangling = found
        .iter()
        .filter(|(target, _)| document.pointer(target.trim_start_matches('#')).is_none())
        .cloned()
        .collect();
    (found.len(), dangling)
}

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

/// Each documented path's methods, probed with `status_of(method, concrete(path))`: the
/// disagreements, one line each (a documented method answered 404 or 405, or another method
/// served).
pub async fn served_as_documented(
    document: &Value,
    concrete: impl Fn(&str) -> String,
    status_of: impl AsyncFn(&str, &str) -> u16,
) -> Vec<String> {
    let mut wrong = Vec::new();
    for (path, methods) in documented(document) {
        let url = concrete(&path);
        assert!(
            !path.contains('{') || url != path,
            "no concrete URL for {path}"
        );
        for method in METHODS {
            let status = status_of(method, &url).await;
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
    wrong
}
