//! `security-svc ceremony …` as an operator runs it: a mediator process killed in the middle of
//! a ceremony resumes from its state file, then encrypts, tallies and decrypts with a quorum.
//! And every command's `--help`.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use vottery_common::guardians::CeremonyRecord;
use vottery_common::guardians::mediator::{CeremonyState, Round};

use crate::instances::{BINARY, Instance, Scratch, start_all};
use crate::proxy::Proxy;

/// The mediator command with the guardians' tokens in its environment, and nothing else.
fn mediator(instances: &[Instance]) -> Command {
    let mut command = Command::new(BINARY);
    command.env_clear().kill_on_drop(true);
    for instance in instances {
        command.env(
            format!("GUARDIAN_TOKEN_{}", instance.name.to_uppercase()),
            &instance.token,
        );
    }
    command
}

fn guardian_args(guardians: &[(&str, String)]) -> Vec<String> {
    guardians
        .iter()
        .flat_map(|(name, url)| ["--guardian".to_owned(), format!("{name}={url}")])
        .collect()
}

async fn succeed(command: &mut Command) -> Output {
    let output = command.output().await.expect("the mediator runs");
    assert!(
        output.status.success(),
        "{:?} failed: {}",
        command.as_std(),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn write(path: &Path, output: &Output) {
    std::fs::write(path, &output.stdout).unwrap();
}

fn plaintexts(output: &Output) -> Vec<u64> {
    let answer: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    answer
        .iter()
        .map(|item| item["m"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mediator_killed_mid_ceremony_resumes_from_its_state_file_then_tallies_and_decrypts() {
    let mut instances = start_all(&["alice", "bob", "carol"]).await;
    let scratch = Scratch::new();
    let state = scratch.path("state.json");
    // carol's verifications are held back, so that the mediator is surely killed in round 3.
    let slow_carol = Proxy::start(&instances[2].url()).await;
    slow_carol.delay("POST", "/verifications", Duration::from_secs(30));

    let guardians = [
        ("alice", instances[0].url()),
        ("bob", instances[1].url()),
        ("carol", slow_carol.url.clone()),
    ];
    let mut first = mediator(&instances)
        .args([
            "ceremony",
            "run",
            "--ceremony-id",
            "election-2027",
            "--quorum",
            "2",
        ])
        .arg("--state")
        .arg(&state)
        .args(guardian_args(&guardians))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(first.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line == "round complete: backups shared";
            seen.push(line);
            if done {
                return;
            }
        }
        panic!("the mediator stopped early: {seen:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("no round completed in time"));
    first.kill().await.unwrap();
    let saved = CeremonyState::load(&state).unwrap().unwrap();
    assert_eq!(saved.round, Round::BackupsShared, "{seen:?}");
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(instances.iter().all(|i| !text.contains(&i.token)));

    // Resumed with carol reached directly: the same guardians, one new URL.
    let guardians = [
        ("alice", instances[0].url()),
        ("bob", instances[1].url()),
        ("carol", instances[2].url()),
    ];
    drop(slow_carol);
    let resumed = succeed(
        mediator(&instances)
            .args(["ceremony", "run", "--state"])
            .arg(&state)
            .args(guardian_args(&guardians)),
    )
    .await;
    let progress = String::from_utf8_lossy(&resumed.stderr);
    assert!(
        progress.starts_with("resuming after round \"backups shared\""),
        "{progress}"
    );
    let record: CeremonyRecord = serde_json::from_slice(&resumed.stdout).unwrap();
    assert_eq!(record.signed_by, "alice");
    let record_file = scratch.path("ceremony.json");
    write(&record_file, &resumed);

    let status = succeed(
        mediator(&[])
            .args(["ceremony", "status", "--state"])
            .arg(&state),
    )
    .await;
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["round"], "finalized");
    assert_eq!(status["guardians"][2]["url"], instances[2].url());
    assert_eq!(
        status["joint_key"]["joint_public_key"],
        serde_json::to_value(&record.joint_key.joint_public_key).unwrap()
    );

    let ballots = scratch.path("ballots.json");
    let encrypted = succeed(
        mediator(&[])
            .args(["ceremony", "encrypt", "--record"])
            .arg(&record_file)
            .args(["--values", "1,0,1,1,0"]),
    )
    .await;
    write(&ballots, &encrypted);
    let tally = scratch.path("tally.json");
    let summed = succeed(
        mediator(&[])
            .args(["ceremony", "tally", "--ciphertexts"])
            .arg(&ballots),
    )
    .await;
    write(&tally, &summed);

    instances[1].kill().await;
    let quorum = [("alice", instances[0].url()), ("carol", instances[2].url())];
    for (ciphertexts, expected) in [(&tally, vec![3]), (&ballots, vec![1, 0, 1, 1, 0])] {
        let decrypted = succeed(
            mediator(&instances)
                .args(["ceremony", "decrypt", "--record"])
                .arg(&record_file)
                .arg("--ciphertexts")
                .arg(ciphertexts)
                .args(guardian_args(&quorum)),
        )
        .await;
        assert_eq!(plaintexts(&decrypted), expected);
    }

    // Below the quorum: a clear refusal, exit status 1.
    let refused = mediator(&instances)
        .args(["ceremony", "decrypt", "--record"])
        .arg(&record_file)
        .arg("--ciphertexts")
        .arg(&tally)
        .args(guardian_args(&quorum[..1]))
        .output()
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("quorum of 2"), "{message}");
}

#[tokio::test]
async fn every_command_has_help_naming_the_environment_it_reads() {
    let commands: [&[&str]; 11] = [
        &[],
        &["serve"],
        &["migrate"],
        &["healthcheck"],
        &["operator", "init"],
        &["ceremony"],
        &["ceremony", "run"],
        &["ceremony", "status"],
        &["ceremony", "encrypt"],
        &["ceremony", "tally"],
        &["ceremony", "decrypt"],
    ];
    for command in commands {
        let output = Command::new(BINARY)
            .args(command)
            .arg("--help")
            .env_clear()
            .output()
            .await
            .unwrap();
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{command:?} --help: {help}");
        assert!(help.contains("Usage: security-svc"), "{command:?}: {help}");
        let names_env = ["[env: ", "SECURITY_SVC_", "GUARDIAN_TOKEN_"]
            .iter()
            .any(|variable| help.contains(variable));
        assert!(names_env, "{command:?} --help names no variable: {help}");
    }
    let run = Command::new(BINARY)
        .args(["ceremony", "run", "--help"])
        .output()
        .await
        .unwrap();
    let help = String::from_utf8_lossy(&run.stdout);
    assert!(help.contains("GUARDIAN_TOKEN_<NAME>"), "{help}");
    let unknown = Command::new(BINARY)
        .arg("unseal-everything")
        .output()
        .await
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
}
