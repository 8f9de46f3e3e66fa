//! The ElectionGuard 1.4.0 reference package checks a real ceremony between three instances
//! (quorum 2): every Schnorr proof, the joint key recomputed from the public records, every
//! Chaum–Pedersen proof of direct and compensated shares with the plaintexts it combines them
//! to, and values it encrypts to the joint key are decrypted by the guardians.
//!
//! `ELECTIONGUARD_PYTHON` names the interpreter (`scripts/test.sh` provisions it). Without it
//! the test fails in CI (`CI` set) and is skipped, with a line saying so, elsewhere.

use std::path::PathBuf;

use serde_json::{Value, json};
use tokio::process::Command;
use vottery_common::guardians::mediator::{CollectedShares, collect_shares, encrypt};
use vottery_election::ElGamalCiphertext;

use crate::instances::{Scratch, start_all};
use crate::{decrypt_with, extended_base_hash, run_to_end};

/// The interpreter, or `None` (after the skip line) when this run does without it.
fn reference_python() -> Option<String> {
    match std::env::var("ELECTIONGUARD_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ if std::env::var_os("CI").is_some() => {
            panic!("ELECTIONGUARD_PYTHON is not set: CI must check against the reference")
        }
        _ => {
            println!(
                "skipped: ELECTIONGUARD_PYTHON is not set (a Python 3.10 with electionguard 1.4.0)"
            );
            None
        }
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/guardians/eg_reference.py")
}

/// Runs the reference script; asserts success and answers its standard output.
async fn reference(python: &str, args: &[&str]) -> String {
    let output = Command::new(python)
        .arg(script())
        .args(args)
        .output()
        .await
        .expect("the reference script runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "eg_reference.py {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The `decryptions` and `compensated` members of a `verify` file.
fn shares_json(shares: &CollectedShares) -> (Value, Value) {
    let direct = shares
        .direct
        .iter()
        .map(|answer| {
            json!({
                "guardian_id": answer.guardian_id,
                "public_key": answer.public_key,
                "shares": answer.shares,
            })
        })
        .collect();
    let compensated = shares
        .compensated
        .iter()
        .map(|answer| {
            json!({
                "guardian_id": answer.guardian_id,
                "missing_guardian_id": answer.missing_guardian_id,
                "recovery_public_key": answer.recovery_public_key,
                "shares": answer.shares,
            })
        })
        .collect();
    (Value::Array(direct), Value::Array(compensated))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_electionguard_reference_verifies_a_ceremony_and_its_decryptions() {
    let Some(python) = reference_python() else {
        return;
    };
    let mut instances = start_all(&["alice", "bob", "carol"]).await;
    let scratch = Scratch::new();
    let (record, _) = run_to_end(&instances, 2, &scratch).await;
    let hash = extended_base_hash(&record);

    // The joint key, recomputed by the reference from the public records.
    let records_file = scratch.path("public_records.json");
    std::fs::write(
        &records_file,
        serde_json::to_vec(&record.public_records).unwrap(),
    )
    .unwrap();
    let joint: Value = serde_json::from_str(
        &reference(&python, &["joint-key", records_file.to_str().unwrap()]).await,
    )
    .unwrap();
    assert_eq!(joint, serde_json::to_value(&record.joint_key).unwrap());

    // Values the reference encrypts are decrypted by the guardians.
    let key_hex = record.joint_key.joint_public_key.to_hex();
    let values = ["0", "1", "5", "12"];
    let mut args = vec!["encrypt", "--joint-key", key_hex.as_str()];
    args.extend(values);
    let from_reference: Vec<ElGamalCiphertext> =
        serde_json::from_str(&reference(&python, &args).await).unwrap();
    let everyone: Vec<_> = instances.iter().map(|i| i.client()).collect();
    let decrypted = decrypt_with(&record, &everyone, &from_reference)
        .await
        .unwrap();
    assert_eq!(
        decrypted.iter().map(|d| d.m).collect::<Vec<_>>(),
        vec![0, 1, 5, 12]
    );

    // Every proof the services made, direct and compensated, and the plaintexts they give.
    let plaintexts = [3u64, 0, 1];
    let ciphertexts = encrypt(&plaintexts, &record.joint_key.joint_public_key).unwrap();
    let all_shares = collect_shares(&record, &everyone, &ciphertexts, &hash)
        .await
        .unwrap();
    instances[1].kill().await;
    let quorum = [instances[0].client(), instances[2].client()];
    let compensated = collect_shares(&record, &quorum, &ciphertexts, &hash)
        .await
        .unwrap();
    for (name, shares) in [("all", &all_shares), ("quorum", &compensated)] {
        let (decryptions, compensated) = shares_json(shares);
        let file = scratch.path(&format!("verify-{name}.json"));
        let body = json!({
            "quorum": record.quorum,
            "public_records": record.public_records,
            "joint_key": record.joint_key,
            "extended_base_hash": hash,
            "ciphertexts": ciphertexts,
            "decryptions": decryptions,
            "compensated": compensated,
            "expected_plaintexts": plaintexts,
        });
        std::fs::write(&file, serde_json::to_vec_pretty(&body).unwrap()).unwrap();
        let report = reference(&python, &["verify", file.to_str().unwrap()]).await;
        assert!(!report.contains("FAIL"), "{name}: {report}");
        let checked = report.lines().filter(|line| line.starts_with("ok")).count();
        assert!(checked > 0, "{name}: nothing checked: {report}");
    }
}
