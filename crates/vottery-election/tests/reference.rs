//! Interoperability with the ElectionGuard 1.4.0 reference: proofs, keys and decryptions made
//! here are checked by `scripts/guardians/eg_reference.py`, and its encryptions decrypt here.
//!
//! Needs `ELECTIONGUARD_PYTHON` naming a Python with `electionguard==1.4.0` (scripts/test.sh
//! provisions one). Without it the tests fail under CI (`CI` set) and are skipped otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;
use vottery_election::{DiscreteLog, ElGamalCiphertext, ElectionJointKey, elgamal_encrypt, rand_q};

/// The reference's Python, or `None` (after saying so) when the test may be skipped.
fn reference_python() -> Option<String> {
    match std::env::var("ELECTIONGUARD_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ if std::env::var_os("CI").is_some() => panic!(
            "ELECTIONGUARD_PYTHON is not set: the ElectionGuard reference checks cannot run \
             (scripts/test.sh provisions it with ensure_electionguard)"
        ),
        _ => {
            println!(
                "skipped: ELECTIONGUARD_PYTHON is not set (a Python with electionguard==1.4.0)"
            );
            None
        }
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/guardians/eg_reference.py")
}

/// Runs the script; returns its standard output, failing the test with its output otherwise.
fn run(python: &str, args: &[&str]) -> String {
    let output = Command::new(python)
        .arg(script())
        .args(args)
        .output()
        .expect("the reference script runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "eg_reference.py {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn temp_file(name: &str, value: &serde_json::Value) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "vottery-election-{}-{name}.json",
        std::process::id()
    ));
    std::fs::write(&path, serde_json::to_vec(value).expect("JSON")).expect("temp file");
    path
}

#[test]
fn the_reference_verifies_a_ceremony_and_a_threshold_decryption_made_here() {
    let Some(python) = reference_python() else {
        return;
    };
    let ceremony = common::run_ceremony(5, 3);
    let key = &ceremony.joint_key.joint_public_key;
    let ebh = rand_q();
    let votes = [1u64, 0, 3];
    let cts: Vec<ElGamalCiphertext> = votes
        .iter()
        .map(|m| elgamal_encrypt(*m, &rand_q(), key).expect("non-zero nonce"))
        .collect();
    let present = ["guardian-1", "guardian-3", "guardian-4"];
    let shares = ceremony.decrypt_shares(&present, &cts, &ebh);
    let decryptions: Vec<_> = shares
        .iter()
        .filter(|s| s.missing_guardian_id.is_none())
        .map(|s| json!({"guardian_id": s.guardian_id, "public_key": s.key, "shares": s.shares}))
        .collect();
    let compensated: Vec<_> = shares
        .iter()
        .filter_map(|s| {
            let missing = s.missing_guardian_id.as_ref()?;
            Some(
                json!({"guardian_id": s.guardian_id, "missing_guardian_id": missing,
                        "recovery_public_key": s.key, "shares": s.shares}),
            )
        })
        .collect();
    let input = json!({
        "quorum": 3,
        "public_records": ceremony.records(),
        "joint_key": ceremony.joint_key,
        "extended_base_hash": ebh,
        "ciphertexts": cts,
        "decryptions": decryptions,
        "compensated": compensated,
        "expected_plaintexts": votes,
    });
    let path = temp_file("verify", &input);
    let output = run(&python, &["verify", path.to_str().expect("utf-8 path")]);
    let _ = std::fs::remove_file(&path);
    // 5 records × (quorum, key, 3 proofs) + joint key + hash + 3 guardian keys + 9 share sets
    // × 3 ciphertexts + 6 recovery keys + 3 plaintexts.
    let ok_lines = output.lines().filter(|l| l.starts_with("ok ")).count();
    assert_eq!(ok_lines, 5 * 5 + 2 + 3 + 9 * 3 + 6 + 3, "{output}");
    assert!(output.contains("0 failed"), "{output}");
}

#[test]
fn the_reference_refuses_a_forged_share_made_here() {
    let Some(python) = reference_python() else {
        return;
    };
    let ceremony = common::run_ceremony(3, 2);
    let ebh = rand_q();
    let ct = elgamal_encrypt(1, &rand_q(), &ceremony.joint_key.joint_public_key).expect("ct");
    let mut shares = ceremony.decrypt_shares(
        &["guardian-1", "guardian-2", "guardian-3"],
        std::slice::from_ref(&ct),
        &ebh,
    );
    let forged = &mut shares[1].shares[0];
    forged.proof.response = forged
        .proof
        .response
        .add(&vottery_election::ElementModQ::one());
    let decryptions: Vec<_> = shares
        .iter()
        .map(|s| json!({"guardian_id": s.guardian_id, "shares": s.shares}))
        .collect();
    let input = json!({
        "public_records": ceremony.records(),
        "extended_base_hash": ebh,
        "ciphertexts": [ct],
        "decryptions": decryptions,
    });
    let path = temp_file("forged", &input);
    let output = Command::new(&python)
        .arg(script())
        .args(["verify", path.to_str().expect("utf-8 path")])
        .output()
        .expect("the reference script runs");
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL guardian guardian-2 share 0"),
        "{stdout}"
    );
}

#[test]
fn the_references_encryptions_decrypt_here_and_its_joint_key_is_ours() {
    let Some(python) = reference_python() else {
        return;
    };
    let ceremony = common::run_ceremony(3, 2);
    let path = temp_file("records", &json!(ceremony.records()));
    let joint: ElectionJointKey = serde_json::from_str(&run(
        &python,
        &["joint-key", path.to_str().expect("utf-8 path")],
    ))
    .expect("a joint key");
    let _ = std::fs::remove_file(&path);
    assert_eq!(joint, ceremony.joint_key);

    let key_hex = ceremony.joint_key.joint_public_key.to_hex();
    let cts: Vec<ElGamalCiphertext> = serde_json::from_str(&run(
        &python,
        &["encrypt", "--joint-key", &key_hex, "0", "1", "5"],
    ))
    .expect("ciphertexts");
    let ebh = rand_q();
    let present = ["guardian-1", "guardian-3"];
    let shares = ceremony.decrypt_shares(&present, &cts, &ebh);
    let table = DiscreteLog::new(100);
    let found: Vec<Option<u64>> = ceremony
        .combine(&present, &cts, &shares)
        .iter()
        .map(|g_m| table.find(g_m))
        .collect();
    assert_eq!(found, vec![Some(0), Some(1), Some(5)]);
}
