//! The key ceremony's rounds: create the guardians and check their public records, have each
//! make its backups, deliver them to their recipients (sending a rejected one once more),
//! finalize, and check that every guardian reached the same joint key.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::signature::{ED25519, UnparsedPublicKey};
use vottery_election::{
    ElectionJointKey, ElectionPartialKeyBackup, ElectionPartialKeyVerification, ElectionPublicKey,
    combine_election_public_keys,
};

use super::client::all;
use super::state::{CeremonyState, Round};
use super::{Connector, GuardianClient, MediatorError, unexpected};
use crate::guardians::{CeremonyRecord, CreateGuardian, GuardianStage, GuardianStatus};

/// One step of a ceremony, for progress lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A run that picks up a saved state.
    Resumed { round: Round },
    /// A guardian exists and its public record passed the checks.
    GuardianReady {
        guardian: String,
        stage: GuardianStage,
    },
    /// A guardian made its backups.
    BackupsReceived { guardian: String, count: usize },
    /// A recipient verified every backup sent to it.
    BackupsVerified { recipient: String, count: usize },
    /// A recipient rejected a backup; it is fetched from its sender and delivered again.
    BackupResending { sender: String, recipient: String },
    /// The backup delivered again was verified.
    BackupResent { sender: String, recipient: String },
    /// A guardian signed its ceremony record.
    Finalized { guardian: String },
    /// A round is complete and saved.
    RoundCompleted { round: Round },
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Resumed { round } => write!(f, "resuming after round \"{round}\""),
            Progress::GuardianReady { guardian, stage } => write!(
                f,
                "guardian {guardian}: public record verified (stage {stage})"
            ),
            Progress::BackupsReceived { guardian, count } => {
                write!(f, "guardian {guardian}: made {count} backups")
            }
            Progress::BackupsVerified { recipient, count } => {
                write!(f, "guardian {recipient}: verified {count} backups")
            }
            Progress::BackupResending { sender, recipient } => write!(
                f,
                "guardian {recipient}: rejected the backup from {sender}; sending it again"
            ),
            Progress::BackupResent { sender, recipient } => write!(
                f,
                "guardian {recipient}: verified the backup from {sender} sent again"
            ),
            Progress::Finalized { guardian } => {
                write!(f, "guardian {guardian}: joint key computed, record signed")
            }
            Progress::RoundCompleted { round } => write!(f, "round complete: {round}"),
        }
    }
}

/// Where progress lines go.
pub type ProgressSink<'a> = &'a mut (dyn FnMut(&Progress) + Send);

/// Runs the ceremony from the round after `state.round` to the end, saving `state` to
/// `state_file` after every round, and answers the first guardian's signed ceremony record.
/// A failed round can be run again: every guardian step is idempotent.
pub async fn run_ceremony(
    state: &mut CeremonyState,
    state_file: &Path,
    connector: &Connector,
    progress: ProgressSink<'_>,
) -> Result<CeremonyRecord, MediatorError> {
    let clients = state
        .guardians
        .iter()
        .map(|guardian| connector.client(&guardian.name, &guardian.url))
        .collect::<Result<Vec<_>, _>>()?;
    if state.round != Round::Planned {
        progress(&Progress::Resumed { round: state.round });
    }
    loop {
        match state.round {
            Round::Planned => create_guardians(state, &clients, progress).await?,
            Round::PublicRecordsVerified => share_backups(state, &clients, progress).await?,
            Round::BackupsShared => verify_backups(state, &clients, progress).await?,
            Round::BackupsVerified => finalize(state, &clients, progress).await?,
            Round::Finalized => break,
        }
        state.save(state_file)?;
        progress(&Progress::RoundCompleted { round: state.round });
    }
    state
        .record()
        .cloned()
        .ok_or_else(|| MediatorError::Internal("a finalized state holds no record".into()))
}

/// Round 1: creates every guardian and checks its public record, proofs included.
async fn create_guardians(
    state: &mut CeremonyState,
    clients: &[GuardianClient],
    progress: ProgressSink<'_>,
) -> Result<(), MediatorError> {
    let number_of_guardians = state.number_of_guardians();
    let calls = clients
        .iter()
        .zip(1..)
        .map(|(client, sequence_order)| {
            let client = client.clone();
            let body = CreateGuardian {
                ceremony_id: state.ceremony_id.clone(),
                sequence_order,
                number_of_guardians,
                quorum: state.quorum,
            };
            async move {
                let status = client.create(&body).await?;
                check_status(&client, &body, &status)?;
                Ok(status)
            }
        })
        .collect();
    let statuses = all(calls).await?;
    let mut records = Vec::with_capacity(statuses.len());
    for status in statuses {
        progress(&Progress::GuardianReady {
            guardian: status.guardian_id.clone(),
            stage: status.stage,
        });
        records.push(status.public_record);
    }
    state.public_records = records;
    state.round = Round::PublicRecordsVerified;
    Ok(())
}

/// The guardian's answer is the guardian asked for, and its public record holds.
fn check_status(
    client: &GuardianClient,
    asked: &CreateGuardian,
    status: &GuardianStatus,
) -> Result<(), MediatorError> {
    let name = client.name();
    let mismatch = |what: &str| unexpected(name, format!("its {what} is not the ceremony's"));
    if status.guardian_id != name {
        return Err(mismatch("id"));
    }
    if status.ceremony_id != asked.ceremony_id {
        return Err(mismatch("ceremony id"));
    }
    if (
        status.sequence_order,
        status.number_of_guardians,
        status.quorum,
    ) != (
        asked.sequence_order,
        asked.number_of_guardians,
        asked.quorum,
    ) {
        return Err(mismatch("sequence order, n or quorum"));
    }
    check_public_record(
        name,
        asked.sequence_order,
        asked.quorum,
        &status.public_record,
    )
}

/// A public record is its guardian's, at its position, with `quorum` valid Schnorr proofs.
pub(super) fn check_public_record(
    guardian: &str,
    sequence_order: u32,
    quorum: u32,
    record: &ElectionPublicKey,
) -> Result<(), MediatorError> {
    let refuse = |reason: String| MediatorError::InvalidPublicRecord {
        guardian: guardian.to_owned(),
        reason,
    };
    if record.owner_id != guardian {
        return Err(refuse(format!("its owner is {:?}", record.owner_id)));
    }
    if record.sequence_order != sequence_order {
        return Err(refuse(format!(
            "its sequence order is {}, not {sequence_order}",
            record.sequence_order
        )));
    }
    record
        .verify(quorum)
        .map_err(|error| refuse(error.to_string()))
}

/// Round 2: every guardian makes its backups from every public record.
async fn share_backups(
    state: &mut CeremonyState,
    clients: &[GuardianClient],
    progress: ProgressSink<'_>,
) -> Result<(), MediatorError> {
    let records = Arc::new(state.public_records.clone());
    let calls = clients
        .iter()
        .map(|client| {
            let client = client.clone();
            let records = Arc::clone(&records);
            async move {
                let backups = client.share_backups(&records).await?;
                check_backups(client.name(), &records, &backups)?;
                Ok(backups)
            }
        })
        .collect();
    let answers = all(calls).await?;
    state.backups.clear();
    for (client, backups) in clients.iter().zip(answers) {
        progress(&Progress::BackupsReceived {
            guardian: client.name().to_owned(),
            count: backups.len(),
        });
        state.backups.extend(backups);
    }
    state.round = Round::BackupsShared;
    Ok(())
}

/// A sender's backups: one from it to every other guardian, at that guardian's position.
fn check_backups(
    sender: &str,
    records: &[ElectionPublicKey],
    backups: &[ElectionPartialKeyBackup],
) -> Result<(), MediatorError> {
    let others: Vec<&ElectionPublicKey> = records.iter().filter(|r| r.owner_id != sender).collect();
    if backups.len() != others.len() {
        return Err(unexpected(
            sender,
            format!(
                "{} backups for {} other guardians",
                backups.len(),
                others.len()
            ),
        ));
    }
    for other in others {
        let found = backups
            .iter()
            .filter(|backup| backup.designated_id == other.owner_id)
            .collect::<Vec<_>>();
        match found.as_slice() {
            [backup]
                if backup.owner_id == sender
                    && backup.designated_sequence_order == other.sequence_order => {}
            _ => {
                return Err(unexpected(
                    sender,
                    format!("no single well-addressed backup for {}", other.owner_id),
                ));
            }
        }
    }
    Ok(())
}

/// What one recipient verified: its verifications and the backups fetched again on the way.
struct RecipientVerdict {
    verifications: Vec<ElectionPartialKeyVerification>,
    resent: Vec<ElectionPartialKeyBackup>,
    events: Vec<Progress>,
}

/// Round 3: every recipient verifies the backups sent to it; a rejected backup is fetched from
/// its sender again and delivered once more.
async fn verify_backups(
    state: &mut CeremonyState,
    clients: &[GuardianClient],
    progress: ProgressSink<'_>,
) -> Result<(), MediatorError> {
    let records = Arc::new(state.public_records.clone());
    let all_clients = Arc::new(clients.to_vec());
    let calls = clients
        .iter()
        .map(|recipient| {
            let recipient = recipient.clone();
            let addressed: Vec<ElectionPartialKeyBackup> = state
                .backups
                .iter()
                .filter(|backup| backup.designated_id == recipient.name())
                .cloned()
                .collect();
            let records = Arc::clone(&records);
            let senders = Arc::clone(&all_clients);
            async move { verify_for(&recipient, addressed, &records, &senders).await }
        })
        .collect();
    let verdicts = all(calls).await?;
    let mut verifications = Vec::new();
    for verdict in verdicts {
        for event in &verdict.events {
            progress(event);
        }
        for backup in verdict.resent {
            if let Some(stored) = state.backups.iter_mut().find(|stored| {
                stored.owner_id == backup.owner_id && stored.designated_id == backup.designated_id
            }) {
                *stored = backup;
            }
        }
        verifications.extend(verdict.verifications);
    }
    state.verifications = verifications;
    state.round = Round::BackupsVerified;
    Ok(())
}

async fn verify_for(
    recipient: &GuardianClient,
    addressed: Vec<ElectionPartialKeyBackup>,
    records: &[ElectionPublicKey],
    senders: &[GuardianClient],
) -> Result<RecipientVerdict, MediatorError> {
    let name = recipient.name();
    let answered = recipient.verify_backups(&addressed).await?;
    let mut verdict = RecipientVerdict {
        verifications: Vec::with_capacity(addressed.len()),
        resent: Vec::new(),
        events: Vec::new(),
    };
    for backup in &addressed {
        let sender = backup.owner_id.as_str();
        let verification = answered
            .iter()
            .find(|v| v.owner_id == sender)
            .cloned()
            .ok_or_else(|| unexpected(name, format!("no verification of {sender}'s backup")))?;
        check_verification(name, sender, &verification)?;
        if verification.verified {
            verdict.verifications.push(verification);
            continue;
        }
        verdict.events.push(Progress::BackupResending {
            sender: sender.to_owned(),
            recipient: name.to_owned(),
        });
        let client = senders
            .iter()
            .find(|client| client.name() == sender)
            .ok_or_else(|| unexpected(name, format!("a backup from unknown guardian {sender}")))?;
        let again = client
            .share_backups(records)
            .await?
            .into_iter()
            .find(|backup| backup.designated_id == name)
            .ok_or_else(|| unexpected(sender, format!("no backup for {name}")))?;
        let retried = recipient
            .verify_backups(std::slice::from_ref(&again))
            .await?
            .into_iter()
            .find(|v| v.owner_id == sender)
            .ok_or_else(|| unexpected(name, format!("no verification of {sender}'s backup")))?;
        check_verification(name, sender, &retried)?;
        if !retried.verified {
            return Err(MediatorError::BackupRejected {
                sender: sender.to_owned(),
                recipient: name.to_owned(),
            });
        }
        verdict.events.push(Progress::BackupResent {
            sender: sender.to_owned(),
            recipient: name.to_owned(),
        });
        verdict.resent.push(again);
        verdict.verifications.push(retried);
    }
    verdict.events.push(Progress::BackupsVerified {
        recipient: name.to_owned(),
        count: verdict.verifications.len(),
    });
    Ok(verdict)
}

fn check_verification(
    recipient: &str,
    sender: &str,
    verification: &ElectionPartialKeyVerification,
) -> Result<(), MediatorError> {
    if verification.designated_id != recipient
        || verification.verifier_id != recipient
        || verification.owner_id != sender
    {
        return Err(unexpected(
            recipient,
            format!("its verification of {sender}'s backup is addressed elsewhere"),
        ));
    }
    Ok(())
}

/// Round 4: every guardian computes the joint key and signs its ceremony record; they must all
/// agree with the joint key the public records give.
async fn finalize(
    state: &mut CeremonyState,
    clients: &[GuardianClient],
    progress: ProgressSink<'_>,
) -> Result<(), MediatorError> {
    let expected = combine_election_public_keys(&state.public_records);
    let verifications = Arc::new(state.verifications.clone());
    let calls = clients
        .iter()
        .map(|client| {
            let client = client.clone();
            let verifications = Arc::clone(&verifications);
            async move { client.finalize(&verifications).await }
        })
        .collect();
    let records = all(calls).await?;
    for (client, record) in clients.iter().zip(&records) {
        check_record(client.name(), state, &expected, record)?;
        progress(&Progress::Finalized {
            guardian: client.name().to_owned(),
        });
    }
    state.records = records;
    state.round = Round::Finalized;
    Ok(())
}

/// A guardian's ceremony record is this ceremony's, with the expected joint key, and signed in
/// the form transit signatures take.
fn check_record(
    guardian: &str,
    state: &CeremonyState,
    expected: &ElectionJointKey,
    record: &CeremonyRecord,
) -> Result<(), MediatorError> {
    let invalid = |reason: &str| MediatorError::InvalidRecord {
        guardian: guardian.to_owned(),
        reason: reason.to_owned(),
    };
    if record.ceremony_id != state.ceremony_id
        || record.number_of_guardians != state.number_of_guardians()
        || record.quorum != state.quorum
    {
        return Err(invalid("is about another ceremony"));
    }
    if record.public_records != state.public_records {
        return Err(invalid("holds other public records"));
    }
    let n = state.guardians.len();
    if record.verifications.len() != n * (n - 1) || record.verifications.iter().any(|v| !v.verified)
    {
        return Err(invalid("does not hold every backup's verification"));
    }
    if record.joint_key.joint_public_key != expected.joint_public_key {
        return Err(MediatorError::JointKeyMismatch {
            guardian: guardian.to_owned(),
            what: "joint public key",
        });
    }
    if record.joint_key.commitment_hash != expected.commitment_hash {
        return Err(MediatorError::JointKeyMismatch {
            guardian: guardian.to_owned(),
            what: "commitment hash",
        });
    }
    if record.signed_by != guardian {
        return Err(invalid("is signed for another guardian"));
    }
    check_signature(record).map_err(invalid)
}

/// The record's Ed25519 signature verifies with the public key it names, over its RFC 8785 form.
fn check_signature(record: &CeremonyRecord) -> Result<(), &'static str> {
    let signature = transit_signature(&record.signature, 64).ok_or("has a malformed signature")?;
    let public_key = match BASE64.decode(&record.signing_public_key) {
        Ok(key) if key.len() == 32 => key,
        _ => return Err("has a malformed signing public key"),
    };
    let signed = record
        .signed_bytes()
        .map_err(|_| "cannot be put in canonical form")?;
    UnparsedPublicKey::new(&ED25519, &public_key)
        .verify(&signed, &signature)
        .map_err(|_| "has a signature that does not verify with its signing public key")
}

/// The payload of `vault:v<N>:<base64>` with N ≥ 1, when it is `length` bytes.
fn transit_signature(signature: &str, length: usize) -> Option<Vec<u8>> {
    let (version, payload) = signature
        .strip_prefix("vault:v")
        .and_then(|rest| rest.split_once(':'))?;
    let version_ok = !version.is_empty()
        && version.bytes().all(|byte| byte.is_ascii_digit())
        && version.parse::<u32>().is_ok_and(|v| v >= 1);
    let payload = BASE64.decode(payload).ok()?;
    (version_ok && payload.len() == length).then_some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transit_signatures_are_versioned_base64_of_the_right_length() {
        let payload = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
        assert!(transit_signature(&format!("vault:v1:{payload}"), 64).is_some());
        assert!(transit_signature(&format!("vault:v12:{payload}"), 64).is_some());
        assert!(transit_signature(&format!("vault:v0:{payload}"), 64).is_none());
        assert!(transit_signature(&format!("vault:vx:{payload}"), 64).is_none());
        assert!(transit_signature(&format!("vault:v1:{payload}"), 32).is_none());
        assert!(transit_signature("vault:v1:not base64!", 64).is_none());
        assert!(transit_signature(&payload, 64).is_none());
    }

    #[test]
    fn a_record_verifies_only_as_signed() {
        use ring::signature::{Ed25519KeyPair, KeyPair};
        let pair = Ed25519KeyPair::from_seed_unchecked(&[9u8; 32]).unwrap();
        let mut record: CeremonyRecord = serde_json::from_value(serde_json::json!({
            "ceremony_id": "election-2027",
            "number_of_guardians": 1,
            "quorum": 1,
            "public_records": [],
            "verifications": [],
            "joint_key": {"joint_public_key": "02", "commitment_hash": "03"},
            "signed_by": "guardian-1",
            "signing_key": "vottery-guardian-records",
            "signing_public_key": BASE64.encode(pair.public_key().as_ref()),
            "signature": "",
        }))
        .unwrap();
        let signature = pair.sign(&record.signed_bytes().unwrap());
        record.signature = format!("vault:v1:{}", BASE64.encode(signature.as_ref()));
        assert_eq!(check_signature(&record), Ok(()));

        let mut altered = record.clone();
        altered.quorum = 2;
        assert_eq!(
            check_signature(&altered),
            Err("has a signature that does not verify with its signing public key")
        );
        let mut other_key = record.clone();
        other_key.signing_public_key = BASE64.encode([1u8; 32]);
        assert!(check_signature(&other_key).is_err());
        let mut short_key = record;
        short_key.signing_public_key = BASE64.encode([1u8; 31]);
        assert_eq!(
            check_signature(&short_key),
            Err("has a malformed signing public key")
        );
    }
}
