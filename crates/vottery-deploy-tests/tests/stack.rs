//! The container stack and the native one must run the same thing: deploy/docker-compose.yml
//! and the services' Dockerfiles on one side, scripts/dev.sh on the other, both reading their
//! settings from deploy/env/*.env. The Kubernetes manifests in deploy/k8s must give the
//! services only settings they know, NATS with JetStream must be where user-svc relays its
//! events, and both gateways must route the same user API. Each test names the file to fix when
//! they drift.

// Test helpers: a panic with the message is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;
use serde::Deserialize as _;
use serde_yaml_ng::Value;

/// One of the two services, as both stacks run it.
struct Service {
    /// The binary, the compose service and the image name.
    name: &'static str,
    /// The prefix of its settings in the environment.
    prefix: &'static str,
    /// Settings tables whose entries are named by the operator (any name is a known setting).
    open_tables: &'static [&'static str],
}

const SECURITY: Service = Service {
    name: "security-svc",
    prefix: "SECURITY_SVC",
    open_tables: &["auth.tokens"],
};
const USERS: Service = Service {
    name: "user-svc",
    prefix: "USER_SVC",
    open_tables: &["auth.service_tokens"],
};
const SERVICES: [&Service; 2] = [&SECURITY, &USERS];

impl Service {
    fn env_file(&self) -> String {
        format!("deploy/env/{}.env", self.name)
    }

    fn dockerfile(&self) -> String {
        format!("services/{}/Dockerfile", self.name)
    }

    fn defaults(&self) -> String {
        format!("services/{}/config/default.toml", self.name)
    }

    fn image(&self) -> String {
        format!("vottery/{}:dev", self.name)
    }

    /// The shell function scripts/lib/stack.sh runs the binary through.
    fn shell_function(&self) -> String {
        self.name.replace('-', "_")
    }

    fn binary_path(&self) -> String {
        format!("/usr/local/bin/{}", self.name)
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {relative}: {error}"))
}

// --- The files ------------------------------------------------------------------------------

/// An env file as both readers see it: `KEY=value` lines, comments and blank lines.
fn env_file(relative: &str) -> BTreeMap<String, String> {
    let mut entries = BTreeMap::new();
    for (number, line) in read(relative).lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{relative}:{}: not a KEY=value line", number + 1));
        // bash (scripts/lib/stack.sh) and Compose agree on a value only when it is literal.
        assert!(
            !value.contains(['"', '\'', '$', '\\', ' ', '\t', '#']),
            "{relative}:{}: {key} has quotes, `$`, `#`, a backslash or spaces, which bash and \
             Compose read differently",
            number + 1
        );
        assert!(
            entries.insert(key.to_owned(), value.to_owned()).is_none(),
            "{relative}: {key} is set twice"
        );
    }
    entries
}

/// What a Dockerfile declares about the running container.
#[derive(Default, Debug)]
struct Dockerfile {
    env: BTreeMap<String, String>,
    expose: Vec<u16>,
    healthcheck: Vec<String>,
    healthcheck_options: BTreeMap<String, String>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
}

fn exec_form(relative: &str, text: &str) -> Vec<String> {
    serde_json::from_str(text.trim())
        .unwrap_or_else(|error| panic!("{relative}: {text:?} is not an exec-form array: {error}"))
}

/// The runtime stage of a multi-stage Dockerfile (the instructions after the last FROM).
fn dockerfile(relative: &str) -> Dockerfile {
    let text = read(relative);
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    let mut parsed = Dockerfile::default();
    for instruction in instructions {
        let (keyword, rest) = instruction.split_once(' ').unwrap_or((&instruction, ""));
        match keyword.to_ascii_uppercase().as_str() {
            "FROM" => parsed = Dockerfile::default(),
            "ENV" => {
                let (key, value) = rest
                    .trim()
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{relative}: ENV {rest:?} is not KEY=value"));
                parsed.env.insert(key.to_owned(), value.to_owned());
            }
            "EXPOSE" => parsed.expose.extend(rest.split_whitespace().map(|port| {
                port.trim_end_matches("/tcp")
                    .parse::<u16>()
                    .unwrap_or_else(|_| panic!("{relative}: EXPOSE {port:?}"))
            })),
            "HEALTHCHECK" => {
                let mut rest = rest.trim();
                while let Some(option) = rest.strip_prefix("--") {
                    let (option, tail) = option.split_once(' ').unwrap_or((option, ""));
                    let (name, value) = option.split_once('=').unwrap_or((option, ""));
                    parsed
                        .healthcheck_options
                        .insert(name.replace('-', "_"), value.to_owned());
                    rest = tail.trim_start();
                }
                let command = rest
                    .strip_prefix("CMD")
                    .unwrap_or_else(|| panic!("{relative}: HEALTHCHECK without CMD"));
                parsed.healthcheck = exec_form(relative, command);
            }
            "ENTRYPOINT" => parsed.entrypoint = exec_form(relative, rest),
            "CMD" => parsed.cmd = exec_form(relative, rest),
            _ => {}
        }
    }
    parsed
}

fn compose() -> Value {
    let mut value: Value = serde_yaml_ng::from_str(&read("deploy/docker-compose.yml"))
        .expect("deploy/docker-compose.yml is not YAML");
    value
        .apply_merge()
        .expect("deploy/docker-compose.yml: bad `<<` merge");
    value
}

fn compose_services(compose: &Value) -> BTreeMap<String, Value> {
    compose["services"]
        .as_mapping()
        .expect("deploy/docker-compose.yml has no services")
        .iter()
        .map(|(name, service)| {
            (
                name.as_str().expect("a service name").to_owned(),
                service.clone(),
            )
        })
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Null => Vec::new(),
        Value::String(text) => vec![text.clone()],
        Value::Sequence(items) => items
            .iter()
            .map(|item| scalar(item).unwrap_or_else(|| panic!("not a string: {item:?}")))
            .collect(),
        other => panic!("expected a string or a list, found {other:?}"),
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// A compose `environment:` as a map, whichever of its two forms it is written in.
fn compose_environment(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Null => BTreeMap::new(),
        Value::Mapping(map) => map
            .iter()
            .map(|(key, value)| {
                let key = key.as_str().expect("an environment name").to_owned();
                let value = scalar(value).unwrap_or_else(|| panic!("{key} has no plain value"));
                (key, value)
            })
            .collect(),
        Value::Sequence(_) => strings(&service["environment"])
            .into_iter()
            .map(|entry| {
                let (key, value) = entry.split_once('=').unwrap_or((&entry, ""));
                (key.to_owned(), value.to_owned())
            })
            .collect(),
        other => panic!("environment: {other:?}"),
    }
}

/// `env_file:` entries, as paths from the repository root (compose resolves them from deploy/).
fn compose_env_files(service: &Value) -> Vec<String> {
    strings(&service["env_file"])
        .into_iter()
        .map(|path| normalize(&format!("deploy/{path}")))
        .collect()
}

fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

/// The container port of each `ports:` entry ("[host:]host_port:container_port[/tcp]").
fn published_container_ports(service: &Value) -> Vec<u16> {
    strings(&service["ports"])
        .iter()
        .map(|entry| {
            let container = entry.rsplit(':').next().unwrap_or(entry);
            container
                .trim_end_matches("/tcp")
                .parse()
                .unwrap_or_else(|_| panic!("ports entry {entry:?} has no container port"))
        })
        .collect()
}

/// The compose services that run `service`'s image.
fn services_running<'a>(
    services: &'a BTreeMap<String, Value>,
    service: &Service,
) -> Vec<(&'a String, &'a Value)> {
    let found: Vec<_> = services
        .iter()
        .filter(|(_, definition)| definition["image"].as_str() == Some(service.image().as_str()))
        .collect();
    assert!(
        !found.is_empty(),
        "deploy/docker-compose.yml runs no {} container",
        service.image()
    );
    for (name, definition) in &found {
        if !definition["build"].is_null() {
            assert_eq!(
                definition["build"]["dockerfile"].as_str(),
                Some(service.dockerfile().as_str()),
                "compose service {name} builds {} from another Dockerfile",
                service.image()
            );
            assert_eq!(
                definition["build"]["context"].as_str(),
                Some(".."),
                "compose service {name}: the build context is the repository root"
            );
        }
    }
    found
}

/// scripts/dev.sh together with the stack library it sources.
fn dev_scripts() -> String {
    let dev = read("scripts/dev.sh");
    assert!(
        dev.contains(". scripts/lib/stack.sh"),
        "scripts/dev.sh no longer sources scripts/lib/stack.sh"
    );
    dev + &read("scripts/lib/stack.sh")
}

/// The subcommands scripts/dev.sh runs a binary with (`security_svc migrate`, ...).
fn dev_commands(scripts: &str, service: &Service) -> BTreeSet<String> {
    let function = service.shell_function();
    let mut commands = BTreeSet::new();
    for line in scripts.lines() {
        let line = line.trim_start();
        if line.starts_with('#') {
            continue;
        }
        let mut rest = line;
        while let Some(index) = rest.find(&function) {
            let before = rest[..index].chars().last();
            let after = &rest[index + function.len()..];
            rest = after;
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == '{') {
                continue;
            }
            let Some(after) = after.strip_prefix(' ') else {
                continue;
            };
            let words: Vec<&str> = after
                .split_whitespace()
                .take_while(|word| is_subcommand_word(word))
                .collect();
            if !words.is_empty() {
                commands.insert(words.join(" "));
            }
        }
    }
    commands
}

/// A word of a subcommand (`operator`, `bootstrap-manager`), not a flag or an argument.
fn is_subcommand_word(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_lowercase())
        && word.chars().all(|c| c.is_ascii_lowercase() || c == '-')
}

/// The `<PREFIX>__...` variables scripts/dev.sh exports itself (its addresses).
fn dev_exports(scripts: &str, service: &Service) -> BTreeSet<String> {
    let prefix = format!("{}__", service.prefix);
    scripts
        .lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .filter_map(|assignment| assignment.split_once('=').map(|(key, _)| key.to_owned()))
        .filter(|key| key.starts_with(&prefix))
        .collect()
}

// --- Settings -------------------------------------------------------------------------------

/// Every leaf setting in the defaults file, as a dotted path (`auth.tokens.admin.secret`).
fn known_settings(service: &Service) -> BTreeSet<String> {
    let value: serde_json::Value = config::Config::builder()
        .add_source(config::File::from_str(
            &read(&service.defaults()),
            config::FileFormat::Toml,
        ))
        .build()
        .and_then(config::Config::try_deserialize)
        .unwrap_or_else(|error| panic!("{}: {error}", service.defaults()));
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut BTreeSet<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, value, out);
                }
            }
            _ => {
                out.insert(prefix.to_owned());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk("", &value, &mut out);
    out
}

/// Whether `key` (an environment variable) names a setting `service` has.
fn is_known_setting(service: &Service, known: &BTreeSet<String>, key: &str) -> bool {
    if key == "DATABASE_URL" {
        return true;
    }
    let Some(path) = key.strip_prefix(&format!("{}__", service.prefix)) else {
        return false;
    };
    let path = path.to_ascii_lowercase().replace("__", ".");
    if known.contains(&path) {
        return true;
    }
    // An entry of an open table: its fields are those of the table's other entries.
    service.open_tables.iter().any(|table| {
        path.strip_prefix(&format!("{table}."))
            .and_then(|entry| entry.split_once('.'))
            .is_some_and(|(_, field)| {
                known
                    .iter()
                    .filter_map(|known| known.strip_prefix(&format!("{table}.")))
                    .any(|known| known.split_once('.').map(|(_, f)| f) == Some(field))
            })
    })
}

fn assert_known_settings<'a>(
    service: &Service,
    source: &str,
    keys: impl IntoIterator<Item = &'a String>,
) {
    let known = known_settings(service);
    let unknown: Vec<&String> = keys
        .into_iter()
        .filter(|key| !is_known_setting(service, &known, key))
        .collect();
    assert!(
        unknown.is_empty(),
        "{source} sets {unknown:?}, which {} does not know (settings: {})",
        service.name,
        service.defaults()
    );
}

/// Loads settings as `vottery_server::settings::load` does (the defaults file, then
/// `<PREFIX>__` variables), from the given environment: the services' `Settings::load` reads the
/// process environment, which a test cannot set without `unsafe`.
fn load_settings<T: serde::de::DeserializeOwned>(
    service: &Service,
    environment: &BTreeMap<String, String>,
) -> T {
    let source: config::Map<String, String> = environment
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    config::Config::builder()
        .add_source(config::File::from_str(
            &read(&service.defaults()),
            config::FileFormat::Toml,
        ))
        .add_source(
            config::Environment::with_prefix(service.prefix)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(source)),
        )
        .build()
        .and_then(config::Config::try_deserialize)
        .unwrap_or_else(|error| panic!("{} settings do not load: {error}", service.name))
}

/// The environment of the `serve` container of `service`: image ENV, env_file, environment.
fn container_environment(service: &Service) -> BTreeMap<String, String> {
    let compose = compose();
    let services = compose_services(&compose);
    let definition = &services[service.name];
    let mut environment = dockerfile(&service.dockerfile()).env;
    for file in compose_env_files(definition) {
        environment.extend(env_file(&file));
    }
    environment.extend(compose_environment(definition));
    environment
}

/// The environment scripts/dev.sh gives `service`, less the addresses it computes.
fn native_environment(service: &Service) -> BTreeMap<String, String> {
    env_file(&service.env_file())
}

// --- The tests ------------------------------------------------------------------------------

#[test]
fn compose_reads_the_env_files_dev_sh_loads() {
    let scripts = dev_scripts();
    let compose = compose();
    let services = compose_services(&compose);
    for service in SERVICES {
        let env_file = service.env_file();
        assert!(
            scripts.contains(&format!("load_env_file {env_file}")),
            "scripts/dev.sh does not load {env_file}"
        );
        for (name, definition) in services_running(&services, service) {
            assert_eq!(
                compose_env_files(definition),
                vec![env_file.clone()],
                "compose service {name} must take its settings from {env_file} (env_file:), \
                 the file scripts/dev.sh loads"
            );
        }
    }
}

#[test]
fn every_variable_given_to_a_service_is_one_of_its_settings() {
    let scripts = dev_scripts();
    let compose = compose();
    let services = compose_services(&compose);
    for service in SERVICES {
        assert_known_settings(
            service,
            &service.env_file(),
            env_file(&service.env_file()).keys(),
        );
        assert_known_settings(
            service,
            &service.dockerfile(),
            dockerfile(&service.dockerfile()).env.keys(),
        );
        assert_known_settings(
            service,
            "scripts/dev.sh (export)",
            dev_exports(&scripts, service).iter(),
        );
        for (name, definition) in services_running(&services, service) {
            assert_known_settings(
                service,
                &format!("deploy/docker-compose.yml service {name} (environment:)"),
                compose_environment(definition).keys(),
            );
        }
    }
}

#[test]
fn the_settings_each_stack_gives_load_and_pass_the_services_checks() {
    for environment in [
        container_environment(&SECURITY),
        native_environment(&SECURITY),
    ] {
        let settings: security_svc::Settings = load_settings(&SECURITY, &environment);
        settings
            .check()
            .unwrap_or_else(|error| panic!("security-svc refuses its settings: {error}"));
    }
    for environment in [container_environment(&USERS), native_environment(&USERS)] {
        let settings: user_svc::Settings = load_settings(&USERS, &environment);
        settings
            .check()
            .unwrap_or_else(|error| panic!("user-svc refuses its settings: {error}"));
    }
    let container: security_svc::Settings =
        load_settings(&SECURITY, &container_environment(&SECURITY));
    assert_eq!(
        container.application.host, "0.0.0.0",
        "security-svc must listen on every interface in its container"
    );
    let container: user_svc::Settings = load_settings(&USERS, &container_environment(&USERS));
    assert_eq!(
        container.application.host, "0.0.0.0",
        "user-svc must listen on every interface in its container"
    );
}

#[test]
fn ports_agree_between_env_files_dockerfiles_and_compose() {
    let compose = compose();
    let services = compose_services(&compose);
    let mut ports = BTreeMap::new();
    for service in SERVICES {
        let key = format!("{}__APPLICATION__PORT", service.prefix);
        let port: u16 = env_file(&service.env_file())
            .get(&key)
            .unwrap_or_else(|| panic!("{} must set {key}", service.env_file()))
            .parse()
            .unwrap_or_else(|_| panic!("{}: {key} is not a port", service.env_file()));
        assert_eq!(
            dockerfile(&service.dockerfile()).expose,
            vec![port],
            "{} must EXPOSE {port}, the port in {}",
            service.dockerfile(),
            service.env_file()
        );
        let published = published_container_ports(&services[service.name]);
        assert!(
            published.iter().all(|published| *published == port),
            "compose service {} publishes container ports {published:?}, but it listens on {port} \
             ({})",
            service.name,
            service.env_file()
        );
        ports.insert(service.name, port);
    }

    let user_svc = compose_environment(&services[USERS.name]);
    assert_eq!(
        user_svc.get("USER_SVC__SECURITY__URL").map(String::as_str),
        Some(format!("http://{}:{}", SECURITY.name, ports[SECURITY.name]).as_str()),
        "compose user-svc must reach security-svc on its port"
    );

    let gateway = &services["gateway"];
    let environment = compose_environment(gateway);
    assert_eq!(
        environment.get("USER_SVC_UPSTREAM").map(String::as_str),
        Some(format!("{}:{}", USERS.name, ports[USERS.name]).as_str()),
        "the compose gateway must proxy to user-svc on its port"
    );
    let gateway_port: u16 = environment
        .get("GATEWAY_PORT")
        .and_then(|port| port.parse().ok())
        .expect("the compose gateway needs GATEWAY_PORT");
    assert_eq!(
        published_container_ports(gateway),
        vec![gateway_port],
        "the compose gateway must publish the port it listens on (GATEWAY_PORT)"
    );
    assert!(
        !gateway["depends_on"]
            .as_mapping()
            .is_some_and(|deps| deps.contains_key(SECURITY.name)),
        "the gateway never routes to security-svc"
    );
}

#[test]
fn the_gateway_runs_deploy_gateway_with_every_template_variable_set() {
    let compose = compose();
    let services = compose_services(&compose);
    let gateway = &services["gateway"];
    let volumes = strings(&gateway["volumes"]);
    for mount in [
        "./gateway/nginx.conf:/etc/nginx/nginx.conf:ro",
        "./gateway/templates:/etc/nginx/templates:ro",
    ] {
        assert!(
            volumes.iter().any(|volume| volume == mount),
            "the compose gateway must mount {mount}"
        );
    }
    let template = read("deploy/gateway/templates/default.conf.template");
    let environment = compose_environment(gateway);
    let mut rest = template.as_str();
    while let Some(start) = rest.find("${") {
        let tail = &rest[start + 2..];
        let end = tail.find('}').expect("an unterminated ${ in the template");
        let name = &tail[..end];
        assert!(
            environment.contains_key(name),
            "deploy/gateway/templates/default.conf.template uses ${{{name}}}, which the compose \
             gateway does not set"
        );
        rest = &tail[end..];
    }
    let address = gateway["networks"]["vottery"]["ipv4_address"]
        .as_str()
        .expect("the compose gateway needs a fixed address for user-svc to trust");
    let users = compose_environment(&services[USERS.name]);
    let trusted = users
        .get("USER_SVC__APPLICATION__TRUSTED_PROXIES")
        .map(String::as_str)
        .unwrap_or_default();
    assert_eq!(
        trusted,
        format!("{address}/32"),
        "compose user-svc must trust the gateway's X-Forwarded-For, and nothing else's"
    );
    assert!(
        read("scripts/dev.sh").contains("deploy/gateway/render.sh"),
        "scripts/dev.sh --gateway must render deploy/gateway like compose"
    );
}

#[test]
fn compose_health_checks_are_the_dockerfiles() {
    let compose = compose();
    let services = compose_services(&compose);
    for service in SERVICES {
        let image = dockerfile(&service.dockerfile());
        assert_eq!(
            image.healthcheck,
            vec![service.binary_path(), "healthcheck".to_owned()],
            "{}: HEALTHCHECK must run `{} healthcheck`",
            service.dockerfile(),
            service.name
        );
        let definition = &services[service.name];
        let mut expected = vec!["CMD".to_owned()];
        expected.extend(image.healthcheck.iter().cloned());
        assert_eq!(
            strings(&definition["healthcheck"]["test"]),
            expected,
            "compose service {}: the health check must be the Dockerfile's",
            service.name
        );
        for (option, value) in &image.healthcheck_options {
            assert_eq!(
                scalar(&definition["healthcheck"][option.as_str()]).as_deref(),
                Some(value.as_str()),
                "compose service {}: healthcheck {option} differs from {}",
                service.name,
                service.dockerfile()
            );
        }
    }
}

#[test]
fn compose_runs_the_commands_dev_sh_runs() {
    let scripts = dev_scripts();
    let compose = compose();
    let services = compose_services(&compose);
    for service in SERVICES {
        let image = dockerfile(&service.dockerfile());
        assert_eq!(
            image.entrypoint,
            vec![service.binary_path()],
            "{}: ENTRYPOINT must be the binary",
            service.dockerfile()
        );
        assert_eq!(
            image.cmd,
            vec!["serve".to_owned()],
            "{}: CMD must be [\"serve\"]",
            service.dockerfile()
        );
        let native = dev_commands(&scripts, service);
        for expected in ["migrate", "serve"] {
            assert!(
                native.contains(expected),
                "scripts/dev.sh no longer runs `{} {expected}` (it runs {native:?})",
                service.name
            );
        }
        let mut in_compose = BTreeSet::new();
        for (name, definition) in services_running(&services, service) {
            if definition["entrypoint"].is_null() {
                let command = strings(&definition["command"]);
                assert!(
                    !command.is_empty(),
                    "compose service {name}: give the command explicitly"
                );
                let subcommand = command
                    .iter()
                    .take_while(|word| is_subcommand_word(word))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ");
                assert!(
                    native.contains(&subcommand),
                    "compose service {name} runs `{} {}`, which scripts/dev.sh does not run \
                     (it runs {native:?})",
                    service.name,
                    command.join(" ")
                );
                in_compose.insert(subcommand);
            } else {
                // A one-shot shell step: the binary commands in it must be dev.sh's too.
                let script = strings(&definition["command"]).join(" ");
                let binary = service.binary_path();
                let mut found = false;
                for (index, _) in script.match_indices(&binary) {
                    let words: Vec<&str> = script[index + binary.len()..]
                        .split_whitespace()
                        .take_while(|word| is_subcommand_word(word))
                        .collect();
                    let subcommand = words.join(" ");
                    assert!(
                        native.contains(&subcommand),
                        "compose service {name} runs `{} {subcommand}`, which scripts/dev.sh \
                         does not run",
                        service.name
                    );
                    in_compose.insert(subcommand);
                    found = true;
                }
                assert!(found, "compose service {name} does not run {binary}");
            }
        }
        for expected in ["migrate", "serve"] {
            assert!(
                in_compose.contains(expected),
                "deploy/docker-compose.yml never runs `{} {expected}`, as scripts/dev.sh does",
                service.name
            );
        }
    }
    assert!(
        dev_commands(&scripts, &SECURITY).contains("operator init"),
        "scripts/dev.sh must initialise security-svc with `operator init`"
    );
    let compose_text = read("deploy/docker-compose.yml");
    for command in ["bootstrap-manager", "issue-dev-token"] {
        assert!(
            dev_commands(&scripts, &USERS).contains(command),
            "scripts/dev.sh no longer runs `user-svc {command}`"
        );
        assert!(
            compose_text.contains(&format!("run --rm user-svc {command}")),
            "deploy/docker-compose.yml must show how to run `user-svc {command}`"
        );
    }
}

#[test]
fn security_svc_bootstraps_the_keys_user_svc_uses_with_a_token_that_covers_them() {
    for (security_env, users_env, stack) in [
        (
            container_environment(&SECURITY),
            container_environment(&USERS),
            "compose",
        ),
        (
            native_environment(&SECURITY),
            native_environment(&USERS),
            "scripts/dev.sh",
        ),
    ] {
        let security: security_svc::Settings = load_settings(&SECURITY, &security_env);
        let users: user_svc::Settings = load_settings(&USERS, &users_env);
        let bootstrapped: BTreeMap<String, String> = security
            .transit
            .bootstrap_keys()
            .unwrap_or_else(|error| panic!("{stack}: {error}"))
            .into_iter()
            .map(|(name, key)| (name, key.key_type.as_str().to_owned()))
            .collect();
        let shreddable = security
            .transit
            .bootstrap_keys()
            .unwrap_or_default()
            .into_iter()
            .any(|(name, key)| name == users.security.pii_key && key.context_keys);
        assert!(
            shreddable,
            "{stack}: user-svc's PII key {} must be bootstrapped with context_keys (erasure destroys a user's data key)",
            users.security.pii_key
        );
        let needed = [
            (
                &users.security.pii_key,
                &["aes256-gcm96", "chacha20-poly1305"][..],
            ),
            (&users.security.index_key, &["hmac"][..]),
            (
                &users.security.signing_key,
                &["ed25519", "ecdsa-p256", "rsa-2048", "rsa-3072", "rsa-4096"][..],
            ),
        ];
        for (name, kinds) in needed {
            let kind = bootstrapped.get(name).unwrap_or_else(|| {
                panic!(
                    "{stack}: user-svc uses transit key {name}, which \
                     SECURITY_SVC__TRANSIT__BOOTSTRAP_KEYS does not create ({bootstrapped:?})"
                )
            });
            assert!(
                kinds.contains(&kind.as_str()),
                "{stack}: transit key {name} is bootstrapped as {kind}, user-svc needs one of {kinds:?}"
            );
        }
        assert_eq!(
            bootstrapped.len(),
            needed.len(),
            "{stack}: security-svc bootstraps keys user-svc does not use: {bootstrapped:?}"
        );

        let token = users.security.token.expose_secret();
        let policy = security
            .auth
            .tokens
            .values()
            .find(|policy| policy.secret.expose_secret() == token)
            .unwrap_or_else(|| {
                panic!("{stack}: user-svc's security.token is none of security-svc's tokens")
            });
        for (name, _) in needed {
            assert!(
                policy.keys.iter().any(|pattern| glob(pattern, name)),
                "{stack}: user-svc's token may not use key {name} (policy keys {:?})",
                policy.keys
            );
        }
        assert!(
            policy
                .operations
                .iter()
                .any(|operation| operation == "destroy-context" || operation == "*"),
            "{stack}: user-svc's token may not destroy a user's PII key (destroy-context), which erasure needs"
        );
    }
}

/// `*` matches any run of characters, as in security-svc's policies.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len()).any(|start| rest.is_char_boundary(start) && glob(tail, &rest[start..]))
        }
    }
}

// --- NATS -----------------------------------------------------------------------------------

/// The NATS server's default client port.
const NATS_CLIENT_PORT: u16 = 4222;

/// `nats://host:port` as (host, port); the port defaults to NATS's own.
fn nats_address(source: &str, url: &str) -> (String, u16) {
    let address = url
        .strip_prefix("nats://")
        .unwrap_or_else(|| panic!("{source}: {url:?} is not a nats:// URL"));
    match address.rsplit_once(':') {
        Some((host, port)) => (
            host.to_owned(),
            port.parse()
                .unwrap_or_else(|_| panic!("{source}: {url:?} has no port number")),
        ),
        None => (address.to_owned(), NATS_CLIENT_PORT),
    }
}

/// Checks that `arguments` start nats-server with JetStream and returns its store directory
/// (`-sd`/`--store_dir`) and client port (`-p`/`--port`, else the default).
fn nats_server_arguments(source: &str, arguments: &[String]) -> (String, u16) {
    assert!(
        arguments
            .iter()
            .any(|argument| argument == "-js" || argument == "--jetstream"),
        "{source} runs NATS without JetStream (-js): {arguments:?}"
    );
    let value_of = |flags: [&str; 2]| {
        arguments
            .iter()
            .position(|argument| flags.contains(&argument.as_str()))
            .map(|index| {
                arguments
                    .get(index + 1)
                    .unwrap_or_else(|| panic!("{source}: {} has no value", arguments[index]))
                    .clone()
            })
    };
    let store = value_of(["-sd", "--store_dir"]).unwrap_or_else(|| {
        panic!(
            "{source}: NATS needs a store directory (-sd) on a volume, else JetStream keeps its \
             streams in /tmp"
        )
    });
    let port = value_of(["-p", "--port"]).map_or(NATS_CLIENT_PORT, |port| {
        port.parse()
            .unwrap_or_else(|_| panic!("{source}: NATS port {port:?}"))
    });
    (store, port)
}

fn is_nats_image(image: &str) -> bool {
    image.starts_with("nats:") && image != "nats:latest"
}

#[test]
fn compose_user_svc_relays_to_a_jetstream_nats_in_the_stack() {
    let compose = compose();
    let services = compose_services(&compose);
    let key = format!("{}__EVENTS__NATS_URL", USERS.prefix);
    assert!(
        !env_file(&USERS.env_file()).contains_key(&key),
        "{} must not set {key}: each runner sets the address itself",
        USERS.env_file()
    );
    assert!(
        dev_exports(&dev_scripts(), &USERS).contains(&key),
        "scripts/dev.sh must export {key}, as compose sets it"
    );
    for (name, definition) in services_running(&services, &USERS) {
        if strings(&definition["command"]) != ["serve"] {
            continue;
        }
        let environment = compose_environment(definition);
        let url = environment.get(&key).unwrap_or_else(|| {
            panic!("compose service {name} must relay its events to NATS ({key})")
        });
        let source = format!("compose service {name} ({key})");
        let (host, port) = nats_address(&source, url);
        let nats = services
            .get(&host)
            .unwrap_or_else(|| panic!("{source}: {url} names {host}, which is no compose service"));
        let image = nats["image"].as_str().unwrap_or_default();
        assert!(
            is_nats_image(image),
            "compose service {host} must run a pinned official NATS image, not {image:?}"
        );
        let (store, listens) = nats_server_arguments(
            &format!("compose service {host}"),
            &strings(&nats["command"]),
        );
        assert_eq!(
            port, listens,
            "{source}: {url} is not the port compose service {host} listens on"
        );
        let named_volumes = compose["volumes"].as_mapping();
        assert!(
            strings(&nats["volumes"]).iter().any(|volume| {
                let mut parts = volume.split(':');
                let (volume_name, target) = (parts.next().unwrap_or_default(), parts.next());
                target == Some(store.as_str())
                    && named_volumes.is_some_and(|volumes| volumes.contains_key(volume_name))
            }),
            "compose service {host} must keep its JetStream store ({store}) on a named volume"
        );
        assert!(
            !nats["healthcheck"]["test"].is_null(),
            "compose service {host} needs a health check for {name} to wait on"
        );
        assert_eq!(
            nats["healthcheck"]["test"][0].as_str(),
            Some("CMD"),
            "compose service {host}: the health check runs a command without a shell, as the \
             others do"
        );
        assert_eq!(
            definition["depends_on"][host.as_str()]["condition"].as_str(),
            Some("service_healthy"),
            "compose service {name} must wait for {host} to be healthy"
        );
    }
}

/// Every document of the resources deploy/k8s/kustomization.yaml lists.
fn kustomization() -> Vec<(String, Value)> {
    let kustomization: Value = serde_yaml_ng::from_str(&read("deploy/k8s/kustomization.yaml"))
        .expect("deploy/k8s/kustomization.yaml is not YAML");
    let mut documents = Vec::new();
    for resource in strings(&kustomization["resources"]) {
        let path = format!("deploy/k8s/{resource}");
        let text = read(&path);
        for document in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = Value::deserialize(document)
                .unwrap_or_else(|error| panic!("{path} is not YAML: {error}"));
            if !value.is_null() {
                documents.push((path.clone(), value));
            }
        }
    }
    documents
}

fn k8s_object<'a>(documents: &'a [(String, Value)], kind: &str, name: &str) -> &'a Value {
    documents
        .iter()
        .map(|(_, value)| value)
        .find(|value| {
            value["kind"].as_str() == Some(kind) && value["metadata"]["name"].as_str() == Some(name)
        })
        .unwrap_or_else(|| panic!("deploy/k8s/kustomization.yaml has no {kind} {name}"))
}

#[test]
fn every_setting_in_a_k8s_configmap_is_one_of_the_services_settings() {
    let documents = kustomization();
    for service in SERVICES {
        let config_map = k8s_object(&documents, "ConfigMap", &format!("{}-config", service.name));
        let keys: Vec<String> = config_map["data"]
            .as_mapping()
            .expect("a ConfigMap with data")
            .keys()
            .map(|key| key.as_str().expect("a ConfigMap key").to_owned())
            .collect();
        assert_known_settings(
            service,
            &format!("deploy/k8s ConfigMap {}-config", service.name),
            keys.iter(),
        );
    }
}

#[test]
fn k8s_user_svc_relays_to_a_jetstream_nats_service_in_the_kustomization() {
    let documents = kustomization();
    let key = format!("{}__EVENTS__NATS_URL", USERS.prefix);
    let config_map = k8s_object(&documents, "ConfigMap", &format!("{}-config", USERS.name));
    let url = config_map["data"][key.as_str()]
        .as_str()
        .unwrap_or_else(|| panic!("deploy/k8s ConfigMap {}-config must set {key}", USERS.name));
    let source = format!("deploy/k8s ConfigMap {}-config ({key})", USERS.name);
    let (host, port) = nats_address(&source, url);
    // The Service's name, or its name qualified with the namespace.
    let name = ["", ".vottery", ".vottery.svc", ".vottery.svc.cluster.local"]
        .iter()
        .find_map(|suffix| host.strip_suffix(suffix).filter(|name| !name.contains('.')))
        .unwrap_or_else(|| panic!("{source}: {url} names no Service of the vottery namespace"));
    let service = k8s_object(&documents, "Service", name);
    let service_port = service["spec"]["ports"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|entry| entry["port"].as_u64() == Some(u64::from(port)))
        .unwrap_or_else(|| panic!("{source}: Service {host} has no port {port}"));
    let selector = service["spec"]["selector"]
        .as_mapping()
        .unwrap_or_else(|| panic!("Service {host} has no selector"));

    let workload = documents
        .iter()
        .map(|(_, value)| value)
        .find(|value| {
            matches!(value["kind"].as_str(), Some("StatefulSet" | "Deployment"))
                && selector.iter().all(|(label, wanted)| {
                    &value["spec"]["template"]["metadata"]["labels"][label] == wanted
                })
        })
        .unwrap_or_else(|| panic!("Service {host} selects no StatefulSet or Deployment"));
    let workload_name = workload["metadata"]["name"].as_str().unwrap_or_default();
    let pod = &workload["spec"]["template"]["spec"];
    let container = pod["containers"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|container| is_nats_image(container["image"].as_str().unwrap_or_default()))
        .unwrap_or_else(|| {
            panic!("{workload_name}, behind Service {host}, runs no pinned official NATS image")
        });
    let (store, listens) = nats_server_arguments(
        &format!("deploy/k8s {workload_name}"),
        &strings(&container["args"]),
    );
    let target = &service_port["targetPort"];
    let target_port = container["ports"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|entry| &entry["name"] == target || &entry["containerPort"] == target)
        .and_then(|entry| entry["containerPort"].as_u64());
    assert_eq!(
        target_port,
        Some(u64::from(listens)),
        "Service {host} port {port} must reach the port NATS listens on in {workload_name}"
    );

    let mount = container["volumeMounts"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|mount| mount["mountPath"].as_str() == Some(store.as_str()))
        .unwrap_or_else(|| {
            panic!("{workload_name}: the JetStream store {store} must be on a volume")
        });
    let volume = mount["name"].as_str().unwrap_or_default();
    let claimed = workload["spec"]["volumeClaimTemplates"]
        .as_sequence()
        .into_iter()
        .flatten()
        .any(|claim| claim["metadata"]["name"].as_str() == Some(volume));
    let declared = pod["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .any(|declared| declared["name"].as_str() == Some(volume));
    assert!(
        claimed || declared,
        "{workload_name} mounts volume {volume}, which it neither claims nor declares"
    );
}

/// The paths a gateway configuration proxies to user-svc (`location [=] PATH { proxy_pass
/// http://user_svc; }`), with their match operator.
fn routes_to_user_svc(source: &str, configuration: &str) -> BTreeSet<String> {
    let mut routes = BTreeSet::new();
    let mut location: Option<String> = None;
    for line in configuration.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("location ") {
            location = Some(rest.trim_end_matches('{').trim().to_owned());
        } else if line == "}" {
            location = None;
        } else if line.starts_with("proxy_pass ") {
            let where_ = location
                .clone()
                .unwrap_or_else(|| panic!("{source}: proxy_pass outside a location"));
            if line == "proxy_pass http://user_svc;" {
                routes.insert(where_);
            }
        }
    }
    routes
}

#[test]
fn the_gateways_route_the_event_feed_like_the_rest_of_the_user_api() {
    let documents = kustomization();
    let config_map = k8s_object(&documents, "ConfigMap", "gateway-config");
    let k8s_template = config_map["data"]["default.conf.template"]
        .as_str()
        .expect("deploy/k8s ConfigMap gateway-config has no default.conf.template")
        .to_owned();
    for (source, configuration) in [
        (
            "deploy/gateway/templates/default.conf.template",
            read("deploy/gateway/templates/default.conf.template"),
        ),
        ("deploy/k8s/gateway/configmap.yaml", k8s_template),
    ] {
        let routes = routes_to_user_svc(source, &configuration);
        for route in [
            "= /api/users",
            "/api/users/",
            "= /api/roles",
            "= /api/events",
        ] {
            assert!(
                routes.contains(route),
                "{source} must route `location {route}` to user-svc (it routes {routes:?})"
            );
        }
    }
}
