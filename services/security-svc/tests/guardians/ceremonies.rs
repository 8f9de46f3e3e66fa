//! Whole ceremonies, 3 guardians with quorum 2 and 5 with quorum 3: every guardian reaches the
//! same joint key, ciphertexts to it decrypt with every guardian and with exactly the quorum
//! (the others' processes killed), and 1,000 encrypted votes add up to a tally decrypted once.

use vottery_common::guardians::GuardianStage;
use vottery_common::guardians::mediator::{
    CeremonyState, MediatorError, Progress, Round, accumulate, encrypt,
};
use vottery_election::{ElementModQ, g_pow_p};

use crate::instances::{Instance, Scratch, start_all};
use crate::{decrypt_with, run_to_end};

/// Runs the ceremony, checks it, then decrypts some values and a 1,000-vote tally with every
/// guardian, and again after killing the instances at `killed` (leaving exactly the quorum).
async fn ceremony_then_decrypt(names: &[&str], quorum: u32, killed: &[usize]) {
    let mut instances = start_all(names).await;
    let scratch = Scratch::new();
    let (record, steps) = run_to_end(&instances, quorum, &scratch).await;

    assert_eq!(record.number_of_guardians as usize, names.len());
    assert_eq!(record.quorum, quorum);
    assert_eq!(
        steps.last(),
        Some(&Progress::RoundCompleted {
            round: Round::Finalized
        })
    );
    for instance in &instances {
        let status = instance.client().status().await.unwrap();
        assert_eq!(status.stage, GuardianStage::Finalized, "{}", instance.name);
        assert_eq!(status.joint_key.as_ref(), Some(&record.joint_key));
        let signed = instance.client().ceremony_record().await.unwrap();
        assert_eq!(signed.joint_key, record.joint_key);
        assert_eq!(signed.signed_by, instance.name);
    }
    let saved = std::fs::read_to_string(scratch.path("state.json")).unwrap();
    for instance in &instances {
        assert!(
            !saved.contains(&instance.token),
            "a token in the state file"
        );
    }
    let state = CeremonyState::load(&scratch.path("state.json"))
        .unwrap()
        .unwrap();
    assert_eq!(state.round, Round::Finalized);
    assert_eq!(state.records.len(), names.len());

    let key = record.joint_key.joint_public_key.clone();
    let values = [0u64, 1, 2, 7, 42, 1_000];
    let votes: Vec<u64> = (0..1_000)
        .map(|_| u64::from(rand::random::<bool>()))
        .collect();
    let expected_count: u64 = votes.iter().sum();
    let (mut ciphertexts, ballots) = tokio::task::spawn_blocking({
        let key = key.clone();
        move || {
            (
                encrypt(&values, &key).unwrap(),
                encrypt(&votes, &key).unwrap(),
            )
        }
    })
    .await
    .unwrap();
    ciphertexts.push(accumulate(&ballots).unwrap());
    let mut expected: Vec<u64> = values.to_vec();
    expected.push(expected_count);

    let everyone: Vec<_> = instances.iter().map(Instance::client).collect();
    let decrypted = decrypt_with(&record, &everyone, &ciphertexts)
        .await
        .unwrap();
    let found: Vec<u64> = decrypted.iter().map(|d| d.m).collect();
    assert_eq!(found, expected, "decrypted with every guardian");
    for decryption in &decrypted {
        assert_eq!(
            decryption.g_m,
            g_pow_p(&ElementModQ::from_u64(decryption.m))
        );
    }

    for index in killed {
        instances[*index].kill().await;
    }
    let quorum_only: Vec<_> = instances
        .iter()
        .enumerate()
        .filter(|(index, _)| !killed.contains(index))
        .map(|(_, instance)| instance.client())
        .collect();
    assert_eq!(quorum_only.len(), quorum as usize);
    let decrypted = decrypt_with(&record, &quorum_only, &ciphertexts)
        .await
        .unwrap();
    let found: Vec<u64> = decrypted.iter().map(|d| d.m).collect();
    assert_eq!(found, expected, "decrypted with exactly the quorum");

    let too_few = &quorum_only[1..];
    let error = decrypt_with(&record, too_few, &ciphertexts)
        .await
        .unwrap_err();
    assert!(
        matches!(error, MediatorError::NotEnoughGuardians { available, quorum: q } if available == too_few.len() && q == quorum),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_guardians_with_quorum_two_decrypt_with_all_or_any_two_and_tally_a_thousand_votes() {
    ceremony_then_decrypt(&["alice", "bob", "carol"], 2, &[1]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_guardians_with_quorum_three_decrypt_with_all_or_any_three_and_tally_a_thousand_votes()
{
    ceremony_then_decrypt(&["g1", "g2", "g3", "g4", "g5"], 3, &[0, 3]).await;
}
