//! The docker-compose demo cannot be run here (no Docker engine), so these
//! tests hold `docker/docker-compose.yml`, `docker/Dockerfile` and
//! `examples/` to each other and to what the code accepts: the settings are
//! flags the worker knows, the ports line up, the examples validate against
//! the real connectors and name the compose servers, and the topics the
//! sink and the viewer read are the ones the sources write.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;
use sluice_tests::env::TestEnv;
use sluice_tests::process::sluice_bin;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn compose() -> Yaml {
    serde_yaml::from_str(&read("docker/docker-compose.yml")).expect("the compose file is YAML")
}

fn service<'a>(compose: &'a Yaml, name: &str) -> &'a Yaml {
    let service = &compose["services"][name];
    assert!(
        !service.is_null(),
        "docker-compose.yml has no service {name}"
    );
    service
}

/// A service's `environment` entry.
fn env_of<'a>(service: &'a Yaml, key: &str) -> &'a str {
    service["environment"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no environment {key} in {service:?}"))
}

/// A service's `command` as words.
fn command_of(service: &Yaml) -> Vec<String> {
    service["command"]
        .as_sequence()
        .map(|words| {
            words
                .iter()
                .filter_map(Yaml::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The container ports a service publishes (`"host:container"`).
fn container_ports(service: &Yaml) -> BTreeSet<u16> {
    service["ports"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(Yaml::as_str)
        .filter_map(|p| p.rsplit(':').next()?.parse().ok())
        .collect()
}

/// The host files mounted into a service, relative to the repository root.
fn mounted_files(service: &Yaml) -> Vec<String> {
    service["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(Yaml::as_str)
        .filter_map(|v| v.split(':').next())
        .filter_map(|source| {
            source
                .strip_prefix("../")
                .map(str::to_owned)
                .or_else(|| source.strip_prefix("./").map(|s| format!("docker/{s}")))
        })
        .collect()
}

/// The example connector JSON files under `examples/`.
fn examples() -> Vec<(String, Json)> {
    let mut files: Vec<_> = std::fs::read_dir(root().join("examples"))
        .expect("examples/ exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path).expect("reading an example");
            let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, json)
        })
        .collect()
}

fn example(name: &str) -> Json {
    examples()
        .into_iter()
        .find(|(file, _)| file == name)
        .map(|(_, json)| json)
        .unwrap_or_else(|| panic!("examples/{name} missing"))
}

/// The tables the demo's inventory SQL creates.
fn inventory_tables(file: &str) -> BTreeSet<String> {
    let create = regex_lite::Regex::new(r"CREATE TABLE inventory\.(\w+)").expect("regex");
    create
        .captures_iter(&read(file))
        .map(|c| c[1].to_owned())
        .collect()
}

/// `sluice <subcommand> --help`.
fn help(subcommand: &str) -> String {
    let out = Command::new(sluice_bin())
        .args([subcommand, "--help"])
        .output()
        .expect("running sluice");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn compose_runs_the_servers_the_connectors_need_with_the_demo_data() {
    let compose = compose();
    let postgres = service(&compose, "postgres");
    assert!(
        command_of(postgres).contains(&"wal_level=logical".to_owned()),
        "the source PostgreSQL needs wal_level=logical"
    );
    let mysql = service(&compose, "mysql");
    assert!(mysql["image"]
        .as_str()
        .is_some_and(|i| i.starts_with("mysql:8")));
    let flags = command_of(mysql);
    for flag in [
        "--binlog-format=ROW",
        "--binlog-row-image=FULL",
        "--gtid-mode=ON",
        "--enforce-gtid-consistency=ON",
    ] {
        assert!(flags.contains(&flag.to_owned()), "mysql lacks {flag}");
    }
    assert!(flags.iter().any(|f| f.starts_with("--log-bin")));
    let kafka = service(&compose, "kafka");
    assert!(
        env_of(kafka, "KAFKA_PROCESS_ROLES").contains("controller"),
        "Kafka runs in KRaft mode"
    );
    assert!(compose["services"]["zookeeper"].is_null());
    service(&compose, "target");

    // The same demo data as scripts/demo, from the same files.
    let postgres_files = mounted_files(postgres);
    assert!(postgres_files.contains(&"examples/inventory/postgres.sql".to_owned()));
    let mysql_files = mounted_files(mysql);
    assert!(mysql_files.contains(&"examples/inventory/mysql.sql".to_owned()));
    let demo = read("scripts/demo");
    for file in [
        "examples/inventory/postgres.sql",
        "examples/inventory/mysql.sql",
        "examples/inventory/changes.sh",
    ] {
        assert!(demo.contains(file), "scripts/demo does not use {file}");
    }
    for name in ["postgres", "mysql", "postgres-changes", "mysql-changes"] {
        for file in mounted_files(service(&compose, name)) {
            assert!(
                root().join(&file).is_file(),
                "{name} mounts {file}, which does not exist"
            );
        }
    }
    assert_eq!(
        inventory_tables("examples/inventory/postgres.sql"),
        inventory_tables("examples/inventory/mysql.sql"),
        "both databases hold the same demo tables"
    );
}

#[test]
fn sluice_service_and_dockerfile_use_settings_and_ports_the_worker_accepts() {
    let compose = compose();
    let sluice = service(&compose, "sluice");
    assert_eq!(
        sluice["build"]["dockerfile"].as_str(),
        Some("docker/Dockerfile")
    );

    // Every SLUICE_* setting is an environment variable of a worker flag,
    // or of `sluice status`, which the image's health check runs.
    let worker_help = help("worker") + &help("status");
    let environment = sluice["environment"]
        .as_mapping()
        .expect("sluice has an environment");
    for key in environment
        .keys()
        .filter_map(Yaml::as_str)
        .filter(|k| k.starts_with("SLUICE_"))
    {
        assert!(
            worker_help.contains(&format!("[env: {key}=")),
            "docker-compose.yml sets {key}, which neither `sluice worker` nor `sluice status` reads"
        );
    }

    // The REST API and the registry listen where the ports are published and exposed.
    let dockerfile = read("docker/Dockerfile");
    let exposed: BTreeSet<u16> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("EXPOSE "))
        .flat_map(|ports| ports.split_whitespace().filter_map(|p| p.parse().ok()))
        .collect();
    for key in ["SLUICE_REST_LISTEN", "SLUICE_REGISTRY_LISTEN"] {
        let port: u16 = env_of(sluice, key)
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("{key} has no port"));
        assert!(
            container_ports(sluice).contains(&port),
            "{key} port {port} is not published"
        );
        assert!(
            exposed.contains(&port),
            "{key} port {port} is not EXPOSEd by the Dockerfile"
        );
    }
    let rest_port = env_of(sluice, "SLUICE_REST_LISTEN")
        .rsplit(':')
        .next()
        .unwrap_or_default();
    assert!(
        dockerfile.contains(&format!("SLUICE_REST_LISTEN=0.0.0.0:{rest_port}"))
            && dockerfile.contains(&format!("http://127.0.0.1:{rest_port}")),
        "the Dockerfile's default REST address and health check use another port"
    );

    // The worker reaches Kafka on a listener Kafka advertises to containers.
    let bootstrap = env_of(sluice, "SLUICE_BOOTSTRAP_SERVERS");
    let kafka = service(&compose, "kafka");
    assert!(
        env_of(kafka, "KAFKA_ADVERTISED_LISTENERS").contains(&format!("://{bootstrap}")),
        "sluice uses {bootstrap}, which Kafka does not advertise"
    );

    // Multi-stage, the binary only, not root.
    let stages = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert!(
        stages >= 2,
        "the Dockerfile should build in one stage and run in another"
    );
    assert!(dockerfile.contains("--bin sluice"));
    let user = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .expect("the final stage sets USER");
    assert!(
        !["root", "0"].contains(&user.trim()),
        "the image runs as root"
    );
    assert!(
        read(".dockerignore").lines().any(|l| l.trim() == "target"),
        ".dockerignore should keep target/ out of the build context"
    );

    // The change viewer's flags are `sluice tail` flags, on the broker and
    // registry above.
    let changes = service(&compose, "changes");
    let words = command_of(changes);
    assert_eq!(words.first().map(String::as_str), Some("tail"));
    let tail_help = help("tail");
    for flag in words.iter().skip(1) {
        let name = flag.split('=').next().unwrap_or_default();
        assert!(tail_help.contains(name), "`sluice tail` has no {name}");
    }
    assert!(words.contains(&format!("--bootstrap-servers={bootstrap}")));
    let registry_port = env_of(sluice, "SLUICE_REGISTRY_LISTEN")
        .rsplit(':')
        .next()
        .unwrap_or_default();
    assert!(words.contains(&format!(
        "--schema-registry-url=http://sluice:{registry_port}"
    )));
}

#[test]
fn examples_validate_and_name_the_compose_servers_and_topics() {
    let compose = compose();
    let env = TestEnv::load();

    // Every example validates against the connectors the binary ships.
    let worker = sluice_tests::worker::Worker::start_with(
        &env,
        &["--schema-registry-url", "http://127.0.0.1:9"],
    );
    for (file, example) in examples() {
        let mut config = example["config"].clone();
        config["name"] = example["name"].clone();
        let class = config["connector.class"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let reply = worker.api().put(
            &format!("/connector-plugins/{class}/config/validate"),
            &config,
        );
        assert_eq!(reply.status, 200, "{file}: {}", reply.text);
        let errors: Vec<String> = reply.body["configs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| {
                c["value"]["errors"]
                    .as_array()
                    .is_some_and(|e| !e.is_empty())
            })
            .map(|c| format!("{}: {}", c["value"]["name"], c["value"]["errors"]))
            .collect();
        assert_eq!(
            reply.body["error_count"], 0,
            "examples/{file} does not validate: {errors:?}"
        );
    }

    // The register service posts these examples, unchanged.
    let register = command_of(service(&compose, "register")).join(" ");
    assert!(
        register.contains("for example in postgres mysql jdbc-sink"),
        "{register}"
    );
    assert!(register.contains("--data @/examples/$$example.json http://sluice:8083/connectors"));
    // The REST API runs with auth on: its users file is mounted, and the
    // register service and the health check log in as its user.
    let sluice = service(&compose, "sluice");
    let users_file = env_of(sluice, "SLUICE_REST_BASIC_AUTH_FILE");
    let mounted = sluice["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(Yaml::as_str)
        .any(|v| v.starts_with("./rest-users.properties:") && v.contains(users_file));
    assert!(
        mounted,
        "{users_file} is mounted from docker/rest-users.properties"
    );
    let user_password = env_of(sluice, "SLUICE_REST_AUTH");
    let (user, password) = user_password.split_once(':').expect("user:password");
    assert!(
        read("docker/rest-users.properties")
            .lines()
            .any(|l| l.trim() == format!("{user}: {password}")),
        "SLUICE_REST_AUTH is a user of docker/rest-users.properties"
    );
    assert!(
        register.contains(&format!("-u {user_password}")),
        "{register}"
    );
    let sluice = service(&compose, "sluice");

    // Each example logs into the compose server it names, with its user,
    // database and a password the sluice service provides.
    let check_login =
        |file: &str, service_name: &str, host: &str, port: &str, user: &str, password: &str| {
            let server = service(&compose, service_name);
            assert_eq!(host, service_name, "{file}: host");
            let port: u16 = port
                .parse()
                .unwrap_or_else(|_| panic!("{file}: port {port}"));
            let default_port = if service_name == "mysql" { 3306 } else { 5432 };
            assert_eq!(
                port, default_port,
                "{file}: {service_name} listens on {default_port} inside the network"
            );
            let (user_key, password_key) = if service_name == "mysql" {
                ("MYSQL_USER", "MYSQL_PASSWORD")
            } else {
                ("POSTGRES_USER", "POSTGRES_PASSWORD")
            };
            assert_eq!(user, env_of(server, user_key), "{file}: user");
            let variable = password
                .strip_prefix("${env:")
                .and_then(|p| p.strip_suffix('}'))
                .unwrap_or_else(|| panic!("{file}: the password should come from ${{env:...}}"));
            assert_eq!(
            env_of(sluice, variable),
            env_of(server, password_key),
            "{file}: ${{env:{variable}}} in the sluice service is not {service_name}'s password"
        );
        };
    let source_login = |file: &str, service_name: &str| {
        let config = example(file)["config"].clone();
        let key = |k: &str| config[k].as_str().unwrap_or_default().to_owned();
        check_login(
            file,
            service_name,
            &key("database.hostname"),
            &key("database.port"),
            &key("database.user"),
            &key("database.password"),
        );
        config
    };
    let pg = source_login("postgres.json", "postgres");
    assert_eq!(
        pg["database.dbname"].as_str(),
        Some(env_of(service(&compose, "postgres"), "POSTGRES_DB"))
    );
    let my = source_login("mysql.json", "mysql");
    let sink = example("jdbc-sink.json")["config"].clone();
    let url = sink["connection.url"].as_str().unwrap_or_default();
    let (host_port, database) = url
        .strip_prefix("jdbc:postgresql://")
        .and_then(|rest| rest.split_once('/'))
        .unwrap_or_else(|| panic!("jdbc-sink.json: connection.url {url}"));
    let (host, port) = host_port.split_once(':').unwrap_or((host_port, "5432"));
    check_login(
        "jdbc-sink.json",
        "target",
        host,
        port,
        sink["connection.username"].as_str().unwrap_or_default(),
        sink["connection.password"].as_str().unwrap_or_default(),
    );
    assert_eq!(database, env_of(service(&compose, "target"), "POSTGRES_DB"));

    // Topics: the sources write <prefix>.inventory.<table>; the sink reads
    // every PostgreSQL one, the viewer shows every one of both.
    let tables = inventory_tables("examples/inventory/postgres.sql");
    let topics_of = |source: &Json| -> BTreeSet<String> {
        let prefix = source["topic.prefix"].as_str().unwrap_or_default();
        tables
            .iter()
            .map(|t| format!("{prefix}.inventory.{t}"))
            .collect()
    };
    assert_eq!(pg["schema.include.list"].as_str(), Some("inventory"));
    assert_eq!(my["database.include.list"].as_str(), Some("inventory"));
    let sink_topics = regex_lite::Regex::new(&format!(
        "^(?:{})$",
        sink["topics.regex"]
            .as_str()
            .expect("the sink reads topics.regex")
    ))
    .expect("topics.regex is a regex");
    for topic in topics_of(&pg) {
        assert!(
            sink_topics.is_match(&topic),
            "the sink does not read {topic}"
        );
    }
    for topic in topics_of(&my) {
        assert!(
            !sink_topics.is_match(&topic),
            "the sink would mix in {topic}"
        );
    }
    let viewed: BTreeSet<String> = command_of(service(&compose, "changes"))
        .iter()
        .filter_map(|w| w.strip_prefix("--topic="))
        .map(str::to_owned)
        .collect();
    let written: BTreeSet<String> = topics_of(&pg).union(&topics_of(&my)).cloned().collect();
    assert_eq!(
        viewed, written,
        "the changes service shows other topics than the sources write"
    );
}
