//! Faults, each detected and named: a tampered public record, a wrong backup (sent again once,
//! then refused), forged partial and compensated decryptions, and a guardian killed in the
//! middle of a ceremony, after whose restart the mediator resumes from its state file.

use vottery_common::guardians::mediator::{
    CallError, CeremonyState, Connector, DecryptOptions, GuardianEndpoint, MediatorError, Progress,
    Round, decrypt, encrypt, run_ceremony,
};

use crate::instances::{Scratch, connector, endpoints, start_all};
use crate::proxy::Proxy;
use crate::{decrypt_with, extended_base_hash, run_to_end};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_public_record_is_refused_naming_its_guardian() {
    let instances = start_all(&["alice", "bob", "carol"]).await;
    let proxy = Proxy::start(&instances[1].url()).await;
    proxy.tamper("POST", "/v1/guardians/bob", Some(1), |status| {
        let proofs = &mut status["public_record"]["coefficient_proofs"];
        proofs[1]["response"] = proofs[0]["response"].clone();
    });
    let mut guardians = endpoints(&instances);
    guardians[1].url = proxy.url.clone();
    let scratch = Scratch::new();
    let file = scratch.path("state.json");
    let mut state = CeremonyState::new("election-2027", 2, guardians).unwrap();

    let error = run_ceremony(&mut state, &file, &connector(&instances), &mut |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&error, MediatorError::InvalidPublicRecord { guardian, reason }
            if guardian == "bob" && reason.contains("coefficient 1")),
        "{error}"
    );
    assert!(error.to_string().starts_with("guardian bob:"), "{error}");
    assert_eq!(
        state.round,
        Round::Planned,
        "nothing is taken from a refused round"
    );

    // The record as the guardian made it passes: the same ceremony goes on to the end.
    run_ceremony(&mut state, &file, &connector(&instances), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(state.round, Round::Finalized);
}

/// Flips one hex digit of the backup addressed to `recipient` in a backups answer.
fn spoil_backup_for(recipient: &'static str) -> impl Fn(&mut serde_json::Value) + Send + Sync {
    move |answer| {
        for backup in answer["backups"].as_array_mut().unwrap() {
            if backup["designated_id"] == recipient {
                let data = backup["encrypted_coordinate"]["data"].as_str().unwrap();
                let flipped = if data.ends_with('0') { "1" } else { "0" };
                let spoiled = format!("{}{flipped}", &data[..data.len() - 1]);
                backup["encrypted_coordinate"]["data"] = spoiled.into();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_backup_is_named_and_sent_again_once_and_refused_when_it_stays_wrong() {
    let instances = start_all(&["alice", "bob", "carol"]).await;
    let proxy = Proxy::start(&instances[0].url()).await;
    let scratch = Scratch::new();

    // Spoiled once in transit: carol rejects it, the mediator fetches it again from alice.
    proxy.tamper("POST", "/backups", Some(1), spoil_backup_for("carol"));
    let mut guardians = endpoints(&instances);
    guardians[0].url = proxy.url.clone();
    let mut state = CeremonyState::new("election-2027", 2, guardians).unwrap();
    let mut steps = Vec::new();
    run_ceremony(
        &mut state,
        &scratch.path("first.json"),
        &connector(&instances),
        &mut |step| steps.push(step.clone()),
    )
    .await
    .unwrap();
    let resending = Progress::BackupResending {
        sender: "alice".into(),
        recipient: "carol".into(),
    };
    let resent = Progress::BackupResent {
        sender: "alice".into(),
        recipient: "carol".into(),
    };
    assert!(steps.contains(&resending), "{steps:?}");
    assert!(steps.contains(&resent), "{steps:?}");
    assert_eq!(state.round, Round::Finalized);

    // Spoiled every time: refused, naming sender and recipient. Another ceremony on the same
    // instances, with guardians of other names.
    proxy.tamper("POST", "/backups", None, spoil_backup_for("carol-2"));
    let names = ["alice-2", "bob-2", "carol-2"];
    let guardians: Vec<GuardianEndpoint> = names
        .iter()
        .zip(&instances)
        .map(|(name, instance)| GuardianEndpoint {
            name: (*name).to_owned(),
            url: if *name == "alice-2" {
                proxy.url.clone()
            } else {
                instance.url()
            },
        })
        .collect();
    let connector = names
        .iter()
        .zip(&instances)
        .fold(Connector::default(), |connector, (name, instance)| {
            instance.connector_entry(name, connector)
        });
    let mut state = CeremonyState::new("election-2028", 2, guardians).unwrap();
    let error = run_ceremony(
        &mut state,
        &scratch.path("second.json"),
        &connector,
        &mut |_| {},
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, MediatorError::BackupRejected { sender, recipient }
            if sender == "alice-2" && recipient == "carol-2"),
        "{error}"
    );
    assert_eq!(state.round, Round::BackupsShared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_partial_and_compensated_decryptions_are_named_with_their_ciphertext() {
    let mut instances = start_all(&["alice", "bob", "carol"]).await;
    let scratch = Scratch::new();
    let (record, _) = run_to_end(&instances, 2, &scratch).await;
    let ciphertexts = encrypt(&[1, 0, 1], &record.joint_key.joint_public_key).unwrap();
    let hash = extended_base_hash(&record);
    let options = DecryptOptions::default();
    let proxy = Proxy::start(&instances[1].url()).await;
    let bob = instances[1].client_as("bob", &proxy.url);

    // bob answers another ciphertext's share for ciphertext 1: a valid element, a wrong share.
    proxy.tamper("POST", "/decrypt", None, |answer| {
        answer["shares"][1]["partial_decryption"] =
            answer["shares"][0]["partial_decryption"].clone();
    });
    let available = [instances[0].client(), bob.clone(), instances[2].client()];
    let error = decrypt(&record, &available, &ciphertexts, &hash, &options)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, MediatorError::InvalidShare { guardian, index: 1 } if guardian == "bob"),
        "{error}"
    );
    assert!(error.to_string().contains("ciphertext 1"), "{error}");
    proxy.clear();

    // carol is missing; bob compensates for her, first with a wrong recovery key, then with a
    // forged share for ciphertext 2.
    instances[2].kill().await;
    let available = [instances[0].client(), bob.clone()];
    proxy.tamper("POST", "/compensate", Some(1), |answer| {
        answer["recovery_public_key"] = answer["shares"][0]["partial_decryption"].clone();
    });
    let error = decrypt(&record, &available, &ciphertexts, &hash, &options)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, MediatorError::RecoveryKeyMismatch { guardian, missing }
            if guardian == "bob" && missing == "carol"),
        "{error}"
    );
    proxy.tamper("POST", "/compensate", Some(1), |answer| {
        answer["shares"][2]["partial_decryption"] =
            answer["shares"][0]["partial_decryption"].clone();
    });
    let error = decrypt(&record, &available, &ciphertexts, &hash, &options)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, MediatorError::InvalidCompensatedShare { guardian, missing, index: 2 }
            if guardian == "bob" && missing == "carol"),
        "{error}"
    );

    // Untampered, the same guardians decrypt.
    let decrypted = decrypt(&record, &available, &ciphertexts, &hash, &options)
        .await
        .unwrap();
    assert_eq!(
        decrypted.iter().map(|d| d.m).collect::<Vec<_>>(),
        vec![1, 0, 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guardian_killed_mid_ceremony_is_named_and_the_ceremony_resumes_after_its_restart() {
    let mut instances = start_all(&["alice", "bob", "carol"]).await;
    let scratch = Scratch::new();
    let file = scratch.path("state.json");
    let guardians = endpoints(&instances);
    let connector = connector(&instances);
    let mut state = CeremonyState::new("election-2027", 2, guardians).unwrap();

    let bob = &mut instances[1];
    let error = run_ceremony(&mut state, &file, &connector, &mut |step| {
        if *step
            == (Progress::RoundCompleted {
                round: Round::BackupsShared,
            })
        {
            bob.start_kill();
        }
    })
    .await
    .unwrap_err();
    assert!(
        matches!(&error, MediatorError::Call { guardian, source: CallError::Unavailable(_) }
            if guardian == "bob"),
        "{error}"
    );
    let saved = CeremonyState::load(&file).unwrap().unwrap();
    assert_eq!(saved.round, Round::BackupsShared);

    instances[1].restart().await;
    let mut state = CeremonyState::load(&file).unwrap().unwrap();
    let mut steps = Vec::new();
    let record = run_ceremony(&mut state, &file, &connector, &mut |step| {
        steps.push(step.clone())
    })
    .await
    .unwrap();
    assert_eq!(
        steps.first(),
        Some(&Progress::Resumed {
            round: Round::BackupsShared
        })
    );
    assert_eq!(state.round, Round::Finalized);

    // bob's secrets survived the kill: alice and bob decrypt without carol.
    let ciphertexts = encrypt(&[3], &record.joint_key.joint_public_key).unwrap();
    let available = [instances[0].client(), instances[1].client()];
    let decrypted = decrypt_with(&record, &available, &ciphertexts)
        .await
        .unwrap();
    assert_eq!(decrypted[0].m, 3);
}
