//! Threshold decryption: shares from the guardians at hand and compensated shares for the
//! missing ones, every proof checked, combined as the reference's decrypt_with_shares.py.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use vottery_election::{
    DiscreteLog, ElGamalCiphertext, ElectionPublicKey, ElementModP, ElementModQ, PartialDecryption,
    ShareSet, combine_election_public_keys, combine_partial_decryptions,
    compute_lagrange_coefficient, compute_recovery_public_key, reconstruct_missing_share,
    verify_share_sets,
};

use super::ceremony::check_public_record;
use super::client::all;
use super::{DEFAULT_MAX_PLAINTEXT, GuardianClient, MediatorError, unexpected};
use crate::guardians::{CeremonyRecord, CompensatedShares, DecryptionShares, MAX_CIPHERTEXTS};

/// How [`decrypt`] searches for the plaintexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecryptOptions {
    /// The largest plaintext looked for (the discrete log's table grows with its square root).
    pub max_plaintext: u64,
}

impl Default for DecryptOptions {
    fn default() -> Self {
        Self {
            max_plaintext: DEFAULT_MAX_PLAINTEXT,
        }
    }
}

/// One decrypted ciphertext: g^m and m.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decryption {
    /// g^m = β / ∏ M_i.
    pub g_m: ElementModP,
    /// The plaintext.
    pub m: u64,
}

/// Every share gathered for a list of ciphertexts: each available guardian's partial
/// decryptions, and each available guardian's compensated ones for each missing guardian.
#[derive(Debug, Clone)]
pub struct CollectedShares {
    /// One per available guardian, its shares covering every ciphertext in order.
    pub direct: Vec<DecryptionShares>,
    /// One per (available, missing) pair, covering every ciphertext in order.
    pub compensated: Vec<CompensatedShares>,
}

impl CollectedShares {
    /// The guardians whose own shares were collected.
    fn direct_guardians(&self) -> Vec<&str> {
        self.direct
            .iter()
            .map(|shares| shares.guardian_id.as_str())
            .collect()
    }
}

/// The guardians of a ceremony record split into those at hand and those missing.
struct Participants<'a> {
    available: Vec<&'a ElectionPublicKey>,
    missing: Vec<&'a ElectionPublicKey>,
}

fn participants<'a>(
    record: &'a CeremonyRecord,
    available: &[&str],
) -> Result<Participants<'a>, MediatorError> {
    for name in available {
        if !record.public_records.iter().any(|r| r.owner_id == *name) {
            return Err(MediatorError::UnknownGuardian {
                guardian: (*name).to_owned(),
                ceremony_id: record.ceremony_id.clone(),
            });
        }
    }
    let distinct: BTreeSet<&str> = available.iter().copied().collect();
    if distinct.len() != available.len() {
        return Err(MediatorError::InvalidInput(
            "a guardian is listed twice".into(),
        ));
    }
    if distinct.len() < record.quorum as usize {
        return Err(MediatorError::NotEnoughGuardians {
            available: distinct.len(),
            quorum: record.quorum,
        });
    }
    let (present, missing) = record
        .public_records
        .iter()
        .partition(|r| distinct.contains(r.owner_id.as_str()));
    Ok(Participants {
        available: present,
        missing,
    })
}

/// Asks every available guardian for its shares of `ciphertexts` (1,000 per call), and for
/// compensated shares of every missing guardian; the calls run at once. Nothing is checked here:
/// see [`verify_shares`].
pub async fn collect_shares(
    record: &CeremonyRecord,
    available: &[GuardianClient],
    ciphertexts: &[ElGamalCiphertext],
    extended_base_hash: &ElementModQ,
) -> Result<CollectedShares, MediatorError> {
    let names: Vec<&str> = available.iter().map(GuardianClient::name).collect();
    let participants = participants(record, &names)?;
    let missing: Vec<String> = participants
        .missing
        .iter()
        .map(|r| r.owner_id.clone())
        .collect();
    let mut collected = CollectedShares {
        direct: Vec::new(),
        compensated: Vec::new(),
    };
    for chunk in ciphertexts.chunks(MAX_CIPHERTEXTS) {
        let chunk = Arc::new(chunk.to_vec());
        let direct = available
            .iter()
            .map(|client| {
                let (client, chunk, hash) =
                    (client.clone(), Arc::clone(&chunk), *extended_base_hash);
                async move { client.decrypt_shares(&hash, &chunk).await }
            })
            .collect();
        let compensated = available
            .iter()
            .flat_map(|client| missing.iter().map(move |m| (client, m)))
            .map(|(client, missing)| {
                let (client, chunk, hash) =
                    (client.clone(), Arc::clone(&chunk), *extended_base_hash);
                let missing = missing.clone();
                async move { client.compensate_shares(&missing, &hash, &chunk).await }
            })
            .collect();
        let (direct, compensated) = tokio::join!(all(direct), all(compensated));
        append_direct(&mut collected.direct, direct?);
        append_compensated(&mut collected.compensated, compensated?);
    }
    Ok(collected)
}

fn append_direct(into: &mut Vec<DecryptionShares>, batch: Vec<DecryptionShares>) {
    for answer in batch {
        match into
            .iter_mut()
            .find(|known| known.guardian_id == answer.guardian_id)
        {
            Some(known) => known.shares.extend(answer.shares),
            None => into.push(answer),
        }
    }
}

fn append_compensated(into: &mut Vec<CompensatedShares>, batch: Vec<CompensatedShares>) {
    for answer in batch {
        match into.iter_mut().find(|known| {
            known.guardian_id == answer.guardian_id
                && known.missing_guardian_id == answer.missing_guardian_id
        }) {
            Some(known) => known.shares.extend(answer.shares),
            None => into.push(answer),
        }
    }
}

fn direct_of<'a>(
    shares: &'a CollectedShares,
    guardian: &str,
) -> Result<&'a DecryptionShares, MediatorError> {
    shares
        .direct
        .iter()
        .find(|answer| answer.guardian_id == guardian)
        .ok_or_else(|| unexpected(guardian, "no partial decryptions"))
}

fn compensated_of<'a>(
    shares: &'a CollectedShares,
    guardian: &str,
    missing: &str,
) -> Result<&'a CompensatedShares, MediatorError> {
    shares
        .compensated
        .iter()
        .find(|answer| answer.guardian_id == guardian && answer.missing_guardian_id == missing)
        .ok_or_else(|| {
            unexpected(
                guardian,
                format!("no compensated decryptions for {missing}"),
            )
        })
}

/// Whose shares a set holds, to name them when a proof fails.
enum SetOwner<'a> {
    Direct(&'a str),
    Compensated { guardian: &'a str, missing: &'a str },
}

/// One guardian's shares, the key they are checked against, and whose they are.
struct CheckedSet<'a> {
    owner: SetOwner<'a>,
    key: Cow<'a, ElementModP>,
    shares: &'a [PartialDecryption],
}

/// Checks every share against the public records: each guardian's partial decryptions against
/// its key, each compensated one against the recovery key computed from the missing guardian's
/// commitments, each ciphertext's α and β checked once for all of them. CPU-bound (all cores):
/// run it off the async threads.
pub fn verify_shares(
    record: &CeremonyRecord,
    shares: &CollectedShares,
    ciphertexts: &[ElGamalCiphertext],
    extended_base_hash: &ElementModQ,
) -> Result<(), MediatorError> {
    let participants = participants(record, &shares.direct_guardians())?;
    let mut checked = Vec::new();
    for guardian in &participants.available {
        let name = guardian.owner_id.as_str();
        let answer = direct_of(shares, name)?;
        if answer.sequence_order != guardian.sequence_order || answer.public_key != guardian.key {
            return Err(unexpected(
                name,
                "its partial decryptions name another key or position",
            ));
        }
        check_count(name, answer.shares.len(), ciphertexts.len())?;
        checked.push(CheckedSet {
            owner: SetOwner::Direct(name),
            key: Cow::Borrowed(&guardian.key),
            shares: &answer.shares,
        });
        for missing in &participants.missing {
            let answer = compensated_of(shares, name, &missing.owner_id)?;
            let recovery = compute_recovery_public_key(guardian.sequence_order, missing);
            if answer.recovery_public_key != recovery {
                return Err(MediatorError::RecoveryKeyMismatch {
                    guardian: name.to_owned(),
                    missing: missing.owner_id.clone(),
                });
            }
            check_count(name, answer.shares.len(), ciphertexts.len())?;
            checked.push(CheckedSet {
                owner: SetOwner::Compensated {
                    guardian: name,
                    missing: &missing.owner_id,
                },
                key: Cow::Owned(recovery),
                shares: &answer.shares,
            });
        }
    }
    let sets: Vec<ShareSet<'_>> = checked
        .iter()
        .map(|set| ShareSet {
            key: &set.key,
            shares: set.shares,
        })
        .collect();
    verify_share_sets(ciphertexts, &sets, extended_base_hash).map_err(|(set, index)| match checked
        [set]
        .owner
    {
        SetOwner::Direct(guardian) => MediatorError::InvalidShare {
            guardian: guardian.to_owned(),
            index,
        },
        SetOwner::Compensated { guardian, missing } => MediatorError::InvalidCompensatedShare {
            guardian: guardian.to_owned(),
            missing: missing.to_owned(),
            index,
        },
    })
}

fn check_count(guardian: &str, found: usize, expected: usize) -> Result<(), MediatorError> {
    if found == expected {
        Ok(())
    } else {
        Err(unexpected(
            guardian,
            format!("{found} shares for {expected} ciphertexts"),
        ))
    }
}

/// Combines verified shares as the reference's decrypt_with_shares.py: each missing guardian's
/// share rebuilt as ∏ M_ℓ^{w_ℓ} over the available guardians ℓ (Lagrange coefficients of their
/// sequence orders), then g^m = β / ∏ M_i and m by the discrete log.
pub fn combine_shares(
    record: &CeremonyRecord,
    shares: &CollectedShares,
    ciphertexts: &[ElGamalCiphertext],
    discrete_log: &DiscreteLog,
    max_plaintext: u64,
) -> Result<Vec<Decryption>, MediatorError> {
    let participants = participants(record, &shares.direct_guardians())?;
    let orders: Vec<u32> = participants
        .available
        .iter()
        .map(|r| r.sequence_order)
        .collect();
    let mut coefficients = Vec::with_capacity(orders.len());
    for guardian in &participants.available {
        let others: Vec<u32> = orders
            .iter()
            .copied()
            .filter(|order| *order != guardian.sequence_order)
            .collect();
        let coefficient = compute_lagrange_coefficient(guardian.sequence_order, &others)
            .ok_or_else(|| {
                MediatorError::InvalidCeremony("two guardians share a sequence order".into())
            })?;
        coefficients.push(coefficient);
    }
    let direct = participants
        .available
        .iter()
        .map(|guardian| direct_of(shares, &guardian.owner_id))
        .collect::<Result<Vec<_>, _>>()?;
    let compensated = participants
        .missing
        .iter()
        .map(|missing| {
            participants
                .available
                .iter()
                .map(|guardian| compensated_of(shares, &guardian.owner_id, &missing.owner_id))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut decryptions = Vec::with_capacity(ciphertexts.len());
    for (index, ciphertext) in ciphertexts.iter().enumerate() {
        let mut present: Vec<&ElementModP> = Vec::with_capacity(record.public_records.len());
        for (guardian, answer) in participants.available.iter().zip(&direct) {
            present.push(
                share_at(&answer.shares, index)
                    .ok_or_else(|| unexpected(&guardian.owner_id, "too few shares"))?,
            );
        }
        let mut rebuilt = Vec::with_capacity(compensated.len());
        for answers in &compensated {
            let mut parts = Vec::with_capacity(answers.len());
            for (answer, coefficient) in answers.iter().zip(&coefficients) {
                let part = share_at(&answer.shares, index)
                    .ok_or_else(|| unexpected(&answer.guardian_id, "too few shares"))?;
                parts.push((part, coefficient));
            }
            rebuilt.push(reconstruct_missing_share(&parts));
        }
        present.extend(rebuilt.iter());
        let g_m = combine_partial_decryptions(ciphertext, &present).ok_or_else(|| {
            MediatorError::InvalidInput(format!("ciphertext {index}: its shares multiply to zero"))
        })?;
        let m = discrete_log
            .find(&g_m)
            .ok_or(MediatorError::PlaintextOutOfRange {
                index,
                max: max_plaintext,
            })?;
        decryptions.push(Decryption { g_m, m });
    }
    Ok(decryptions)
}

fn share_at(shares: &[PartialDecryption], index: usize) -> Option<&ElementModP> {
    shares.get(index).map(|share| &share.partial_decryption)
}

/// Decrypts `ciphertexts` with the guardians at hand (at least the quorum of the ceremony in
/// `record`; the others are missing and compensated for): gathers the shares, checks every
/// proof, combines them and finds each m up to `options.max_plaintext`.
pub async fn decrypt(
    record: &CeremonyRecord,
    available: &[GuardianClient],
    ciphertexts: &[ElGamalCiphertext],
    extended_base_hash: &ElementModQ,
    options: &DecryptOptions,
) -> Result<Vec<Decryption>, MediatorError> {
    check_record_keys(record)?;
    let shares = collect_shares(record, available, ciphertexts, extended_base_hash).await?;
    let (record, ciphertexts, hash, max) = (
        record.clone(),
        ciphertexts.to_vec(),
        *extended_base_hash,
        options.max_plaintext,
    );
    tokio::task::spawn_blocking(move || {
        verify_shares(&record, &shares, &ciphertexts, &hash)?;
        let discrete_log = DiscreteLog::new(max);
        combine_shares(&record, &shares, &ciphertexts, &discrete_log, max)
    })
    .await
    .map_err(|error| MediatorError::Internal(error.to_string()))?
}

/// The record's public records carry valid proofs and give its joint key.
fn check_record_keys(record: &CeremonyRecord) -> Result<(), MediatorError> {
    for (public_record, sequence_order) in record.public_records.iter().zip(1..) {
        check_public_record(
            &public_record.owner_id,
            sequence_order,
            record.quorum,
            public_record,
        )?;
    }
    let expected = combine_election_public_keys(&record.public_records);
    if expected != record.joint_key {
        return Err(MediatorError::InvalidRecord {
            guardian: record.signed_by.clone(),
            reason: "has a joint key its public records do not give".into(),
        });
    }
    Ok(())
}
