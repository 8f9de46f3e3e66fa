//! The OpenAPI document: the checked-in `openapi.json` is what the code generates, every route
//! the service registers is documented, and every documented operation is served.
//!
//! After changing a route or a documented type, regenerate the file with
//! `UPDATE_OPENAPI=1 cargo test -p user-svc --test api openapi`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};
use vottery_server::openapi::conformance;

use crate::helpers::{SERVICE_TOKEN, spawn_app};

const REGENERATE: &str = "UPDATE_OPENAPI=1 cargo test -p user-svc --test api openapi";

fn generated() -> String {
    user_svc::routes::openapi::to_pretty_json().expect("the document serializes")
}

/// The checked-in document.
const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

#[test]
fn the_openapi_document_matches_the_checked_in_file() {
    conformance::assert_checked_in(Path::new(CHECKED_IN), &generated(), REGENERATE);
}

fn document() -> Value {
    serde_json::from_str(&generated()).expect("the document is JSON")
}

/// Where the route handlers live.
const ROUTES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/routes");

#[test]
fn every_registered_route_is_in_the_openapi_document() {
    let registered = conformance::registered_paths(Path::new(ROUTES));
    assert!(registered.len() > 10, "the route scan found {registered:?}");
    let missing = conformance::undocumented(&registered, &document());
    assert!(
        missing.is_empty(),
        "routes registered but not documented: {missing:?}; add #[utoipa::path] to their handlers, \
         list them in user_svc::routes::openapi::ApiDoc, then run `{REGENERATE}`"
    );
}

#[test]
fn every_schema_the_document_refers_to_is_in_it() {
    let (found, dangling) = conformance::dangling_references(&document());
    assert!(found > 20, "the scan found {found} references");
    assert!(dangling.is_empty(), "references to nothing: {dangling:?}");
}

#[tokio::test]
async fn documented_operations_are_served_and_no_others() {
    let app = spawn_app().await;
    let wrong = conformance::served_as_documented(
        &document(),
        |path| path.replace("{id}", "1"),
        async |method, url| {
            let verb = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            app.call(verb, url).send().await.status
        },
    )
    .await;
    assert!(
        wrong.is_empty(),
        "the document and the routes disagree:\n{}",
        wrong.join("\n")
    );

    let docs = app.call(Method::GET, "/docs").send().await;
    assert_eq!(docs.status, 200, "/docs leads to the page: {}", docs.text);
    assert!(docs.text.contains("swagger"), "{}", docs.text);
}

// ---- request contracts -------------------------------------------------------------------------

/// The JSON request bodies whose schemas state the service's rules, by method and path.
const USER_WRITES: [(&str, &str); 4] = [
    ("post", "/api/users"),
    ("put", "/api/users/{id}/profile"),
    ("put", "/api/users/{id}/status"),
    ("put", "/api/users/{id}/role"),
];

/// A request field as the document describes it: its schema with references followed, whether
/// it may be `null`, and whether it is required.
#[derive(Debug, Clone)]
struct Field {
    schema: Value,
    nullable: bool,
    required: bool,
}

/// The component a `$ref` names.
fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference
                .strip_prefix("#/components/schemas/")
                .expect("a component reference");
            resolve(document, &document["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// One property's schema, following a reference and reading `null` out of `oneOf` and `type`.
fn field_schema(document: &Value, property: &Value) -> (Value, bool) {
    if let Some(choices) = property["oneOf"].as_array() {
        let nullable = choices.iter().any(|choice| choice["type"] == "null");
        let mut schema = choices
            .iter()
            .find(|choice| choice["type"] != "null")
            .map(|choice| resolve(document, choice).clone())
            .expect("a non-null choice");
        for (key, value) in property.as_object().expect("a property") {
            if key != "oneOf" {
                schema[key] = value.clone();
            }
        }
        return (schema, nullable);
    }
    let schema = resolve(document, property).clone();
    let nullable = schema["type"]
        .as_array()
        .is_some_and(|types| types.iter().any(|kind| kind == "null"));
    (schema, nullable)
}

/// The fields of an object schema, `allOf` parts merged.
fn fields_of(document: &Value, schema: &Value, into: &mut BTreeMap<String, Field>) {
    let schema = resolve(document, schema);
    for part in schema["allOf"].as_array().into_iter().flatten() {
        fields_of(document, part, into);
    }
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        let (schema, nullable) = field_schema(document, property);
        into.insert(
            name.clone(),
            Field {
                schema,
                nullable,
                required: false,
            },
        );
    }
    for name in schema["required"].as_array().into_iter().flatten() {
        let name = name.as_str().expect("a required field name");
        into.get_mut(name)
            .expect("a required field is a property")
            .required = true;
    }
}

/// The fields of an operation's JSON request body.
fn request_fields(document: &Value, method: &str, path: &str) -> BTreeMap<String, Field> {
    let body = &document["paths"][path][method]["requestBody"]["content"]["application/json"];
    assert!(body.is_object(), "{method} {path} has a JSON body");
    let mut fields = BTreeMap::new();
    fields_of(document, &body["schema"], &mut fields);
    fields
}

fn string_list(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| item.as_str().expect("a string").to_owned())
        .collect()
}

#[test]
fn every_request_field_of_the_user_writes_states_its_rule() {
    let document = document();
    // What each field must carry: an enum, a format, a pattern, or bounds.
    let expected: BTreeMap<&str, &[&str]> = BTreeMap::from([
        (
            "sngine_email",
            &["format:email", "pattern", "maxLength"][..],
        ),
        ("sngine_phone", &["pattern", "minLength"][..]),
        ("user_type", &["enum"][..]),
        ("subscription_status", &["enum"][..]),
        ("admin_role", &["enum"][..]),
        ("status", &["enum"][..]),
        ("gender", &["enum"][..]),
        ("first_name", &["pattern", "minLength", "maxLength"][..]),
        ("last_name", &["pattern", "minLength", "maxLength"][..]),
        ("city", &["pattern", "minLength", "maxLength"][..]),
        ("date_of_birth", &["format:date", "pattern"][..]),
        ("country", &["enum"][..]),
        ("timezone", &["enum"][..]),
        ("language", &["pattern", "maxLength"][..]),
        ("bio", &["pattern", "maxLength"][..]),
        ("avatar_url", &["format:uri", "pattern", "maxLength"][..]),
        ("subscription_plan", &["pattern", "maxLength"][..]),
        ("subscription_expires_at", &["format:date-time"][..]),
        ("notifications_enabled", &["type:boolean"][..]),
    ]);
    let mut missing = Vec::new();
    for (method, path) in USER_WRITES {
        for (name, field) in request_fields(&document, method, path) {
            let Some(rules) = expected.get(name.as_str()) else {
                missing.push(format!(
                    "{method} {path} {name}: a field this test does not know"
                ));
                continue;
            };
            for rule in *rules {
                let stated = match rule.split_once(':') {
                    Some((key, value)) => field.schema[key]
                        .as_str()
                        .map(|given| given == value)
                        .unwrap_or_else(|| {
                            field.schema[key]
                                .as_array()
                                .is_some_and(|types| types.iter().any(|given| given == value))
                        }),
                    None => !field.schema[*rule].is_null(),
                };
                if !stated {
                    missing.push(format!(
                        "{method} {path} {name}: no {rule} in {}",
                        field.schema
                    ));
                }
            }
            let is_string = field.schema["type"] == "string"
                || field.schema["type"]
                    .as_array()
                    .is_some_and(|types| types.iter().any(|kind| kind == "string"));
            let constrained = ["enum", "format", "pattern"]
                .iter()
                .any(|key| !field.schema[*key].is_null());
            if is_string && !constrained {
                missing.push(format!("{method} {path} {name}: a bare string"));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));

    for (method, path) in USER_WRITES {
        let body = &document["paths"][path][method]["requestBody"]["content"]["application/json"];
        let schema = resolve(&document, &body["schema"]);
        assert_eq!(
            schema["additionalProperties"],
            json!(false),
            "{method} {path} refuses fields it does not name: {schema}"
        );
    }
    let create = request_fields(&document, "post", "/api/users");
    let required: BTreeSet<&str> = create
        .iter()
        .filter(|(_, field)| field.required)
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(required, BTreeSet::from(["sngine_email", "sngine_phone"]));
    for name in ["timezone", "language", "notifications_enabled", "user_type"] {
        assert!(!create[name].nullable, "{name} cannot be null");
    }
    let role = request_fields(&document, "put", "/api/users/{id}/role");
    assert!(role["admin_role"].nullable, "a null admin_role revokes");
    let status = request_fields(&document, "put", "/api/users/{id}/status");
    assert!(status["status"].required);
    for name in ["ProfileUpdate", "RoleUpdate"] {
        let schema = &document["components"]["schemas"][name];
        assert_eq!(
            schema["minProperties"],
            json!(1),
            "an empty {name} is refused"
        );
        assert!(schema["maxProperties"].is_null(), "{name}: {schema}");
    }
}

/// Each value's text, in order.
fn names(values: impl IntoIterator<Item = impl ToString>) -> Vec<String> {
    values.into_iter().map(|value| value.to_string()).collect()
}

#[test]
fn the_documented_enums_are_the_services_values() {
    use user_svc::domain::profile::GENDERS;
    use user_svc::domain::roles::{AdminRole, SubscriptionStatus, UserType};
    use user_svc::domain::status::Status;
    use vottery_common::reference::{COUNTRIES, TIME_ZONES};
    let document = document();
    let enum_of = |method: &str, path: &str, field: &str| -> Vec<String> {
        string_list(&request_fields(&document, method, path)[field].schema["enum"])
    };
    let create = |field: &str| enum_of("post", "/api/users", field);
    assert_eq!(create("user_type"), names(UserType::ALL));
    assert_eq!(
        create("subscription_status"),
        names(SubscriptionStatus::ALL)
    );
    let roles = enum_of("put", "/api/users/{id}/role", "admin_role");
    assert_eq!(roles, names(AdminRole::ALL));
    let statuses = enum_of("put", "/api/users/{id}/status", "status");
    assert_eq!(statuses, names(Status::ALL));
    let profile = |field: &str| enum_of("put", "/api/users/{id}/profile", field);
    assert_eq!(profile("country"), COUNTRIES);
    assert_eq!(profile("timezone"), TIME_ZONES);
    assert_eq!(profile("gender"), names(GENDERS));
}

/// Request bodies made from the document alone: each field from its `enum` or its declared
/// `examples`, optional fields sometimes left out and nullable ones sometimes `null`.
struct BodyGenerator {
    rng: rand::rngs::StdRng,
    /// Makes each generated email and phone number unique, as the service requires (and apart
    /// from the contacts the helpers hand out, which count from 0).
    serial: u32,
}

impl BodyGenerator {
    fn new(seed: u64) -> Self {
        use rand::SeedableRng;
        Self {
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            serial: 7_000,
        }
    }

    fn pick(&mut self, choices: &[Value]) -> Value {
        use rand::Rng;
        assert!(!choices.is_empty(), "nothing to choose from");
        choices[self.rng.gen_range(0..choices.len())].clone()
    }

    fn chance(&mut self, one_in: u32) -> bool {
        use rand::Rng;
        self.rng.gen_range(0..one_in) == 0
    }

    /// A value the field's schema admits.
    fn value(&mut self, name: &str, field: &Field) -> Value {
        if field.nullable && self.chance(6) {
            return Value::Null;
        }
        let schema = &field.schema;
        if let Some(choices) = schema["enum"].as_array() {
            return self.pick(choices);
        }
        if schema["type"] == "boolean" {
            return Value::Bool(self.chance(2));
        }
        let examples = schema["examples"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} has neither an enum nor examples: {schema}"));
        let example = self.pick(examples);
        let text = example.as_str().expect("a string example");
        match name {
            "sngine_email" => Value::String(format!("g{}.{text}", self.serial)),
            "sngine_phone" => Value::String(with_last_digits(text, self.serial)),
            _ => example,
        }
    }

    /// A body for an operation: the required fields, some of the others, at least one field.
    fn body(&mut self, fields: &BTreeMap<String, Field>) -> Value {
        self.serial += 1;
        let mut body = serde_json::Map::new();
        for (name, field) in fields {
            if field.required || self.chance(2) {
                body.insert(name.clone(), self.value(name, field));
            }
        }
        if body.is_empty() {
            let names: Vec<Value> = fields.keys().cloned().map(Value::String).collect();
            let name = self.pick(&names);
            let name = name.as_str().expect("a field name");
            let value = self.value(name, &fields[name]);
            body.insert(name.to_owned(), value);
        }
        Value::Object(body)
    }
}

/// `phone` with its last four digits replaced by `serial`'s, separators kept.
fn with_last_digits(phone: &str, serial: u32) -> String {
    let mut digits: Vec<char> = format!("{:04}", serial % 10_000).chars().collect();
    let mut chars: Vec<char> = phone.chars().collect();
    for c in chars.iter_mut().rev() {
        if c.is_ascii_digit() {
            match digits.pop() {
                Some(digit) => *c = digit,
                None => break,
            }
        }
    }
    chars.into_iter().collect()
}

#[test]
fn bodies_made_from_the_document_pass_the_services_reader() {
    use user_svc::users::input;
    let document = document();
    let today = chrono::Utc::now().date_naive();
    let mut generator = BodyGenerator::new(7);
    let create = request_fields(&document, "post", "/api/users");
    let profile = request_fields(&document, "put", "/api/users/{id}/profile");
    let status = request_fields(&document, "put", "/api/users/{id}/status");
    let role = request_fields(&document, "put", "/api/users/{id}/role");
    for _ in 0..300 {
        let body = generator.body(&create);
        if let Err(error) = input::new_user(body.clone(), today) {
            panic!("POST /api/users refuses {body}: {error:?}");
        }
        let body = generator.body(&profile);
        if let Err(error) = input::profile_update(body.clone(), today) {
            panic!("PUT profile refuses {body}: {error:?}");
        }
        let body = generator.body(&status);
        if let Err(error) = input::status_update(body.clone()) {
            panic!("PUT status refuses {body}: {error:?}");
        }
        let body = generator.body(&role);
        if let Err(error) = input::role_update(body.clone()) {
            panic!("PUT role refuses {body}: {error:?}");
        }
    }
}

#[tokio::test]
async fn a_client_following_the_document_is_answered_with_success() {
    let app = spawn_app().await;
    let document = document();
    let mut generator = BodyGenerator::new(12);
    let create = request_fields(&document, "post", "/api/users");
    let profile = request_fields(&document, "put", "/api/users/{id}/profile");
    let role = request_fields(&document, "put", "/api/users/{id}/role");
    let status = request_fields(&document, "put", "/api/users/{id}/status");
    let manager = app.manager.token.clone();
    for _ in 0..12 {
        let body = generator.body(&create);
        let created = app.post_user(body.clone()).await;
        assert_eq!(
            created.status, 201,
            "POST /api/users {body}: {}",
            created.text
        );
        let id = created.json["id"].as_i64().expect("an id");

        let body = generator.body(&profile);
        let path = format!("/api/users/{id}/profile");
        let edited = app.put(&path, &manager, body.clone()).await;
        assert_eq!(edited.status, 200, "PUT {path} {body}: {}", edited.text);

        let body = generator.body(&role);
        let path = format!("/api/users/{id}/role");
        let changed = app.put(&path, &manager, body.clone()).await;
        assert_eq!(changed.status, 200, "PUT {path} {body}: {}", changed.text);
    }
    // Which status moves are allowed is state, not shape: each documented status other than
    // `pending` (a user never returns to it) is reached from a new, pending user by the caller
    // allowed to make that move.
    let documented = string_list(&status["status"].schema["enum"]);
    assert!(documented.contains(&"pending".to_owned()));
    for target in documented.iter().filter(|step| *step != "pending") {
        let user = app.create_user().await;
        let caller = if target == "verified" {
            SERVICE_TOKEN
        } else {
            &manager
        };
        let path = format!("/api/users/{}/status", user.id);
        let moved = app.put(&path, caller, json!({ "status": target })).await;
        assert_eq!(moved.status, 200, "PUT {path} {target}: {}", moved.text);
    }
}
