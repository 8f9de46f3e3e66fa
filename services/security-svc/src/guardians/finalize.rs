//! Finalizing: given every guardian's verification of every backup, and once every backup to
//! this guardian is verified, compute the joint key K = ∏ K_i and the commitment hash over the
//! records in sequence order (so every instance computes the same), sign the ceremony record
//! and keep it. Refused (409, naming what is missing) until the ceremony is complete.
//! Idempotent: the same verifications again answer the stored record.

use std::collections::{BTreeSet, HashMap};

use diesel_async::AsyncConnection;
use vottery_common::guardians::{CeremonyRecord, Finalize, GuardianStage};
use vottery_common::problem::FieldError;
use vottery_election::{ElectionPartialKeyVerification, combine_election_public_keys};

use super::error::GuardianError;
use super::guardian::Guardian;
use super::input::GuardianName;
use super::{record, store, to_json};
use crate::keys::store::KeyStore;

/// The verifications in a stable order: by the owner's, then the designated guardian's
/// sequence order.
fn in_order(
    guardian: &Guardian,
    mut verifications: Vec<ElectionPartialKeyVerification>,
) -> Vec<ElectionPartialKeyVerification> {
    let order = |id: &str| {
        guardian
            .record_of(id)
            .map_or(u32::MAX, |record| record.sequence_order)
    };
    verifications.sort_by_key(|verification| {
        (
            order(&verification.owner_id),
            order(&verification.designated_id),
        )
    });
    verifications
}

/// 400 for verifications that name unknown guardians or are not the designated guardian's own;
/// 409 for missing pairs and verifications that are not true.
fn check_complete(
    guardian: &Guardian,
    verifications: &[ElectionPartialKeyVerification],
) -> Result<(), GuardianError> {
    let seen = check_named(guardian, verifications)?;
    let records = guardian.shared_records()?;
    let mut missing = Vec::new();
    for owner in records {
        for designated in records {
            if owner.owner_id != designated.owner_id
                && !seen.contains(&(owner.owner_id.as_str(), designated.owner_id.as_str()))
            {
                missing.push(format!("{} → {}", owner.owner_id, designated.owner_id));
            }
        }
    }
    let refused: Vec<(usize, &ElectionPartialKeyVerification)> = verifications
        .iter()
        .enumerate()
        .filter(|(_, verification)| !verification.verified)
        .collect();
    if missing.is_empty() && refused.is_empty() {
        return Ok(());
    }
    Err(incomplete(&missing, &refused))
}

/// 400 unless every verification names two guardians of the ceremony, is the designated
/// guardian's own and is the only one of its pair; the pairs (owner, designated) seen.
fn check_named<'a>(
    guardian: &Guardian,
    verifications: &'a [ElectionPartialKeyVerification],
) -> Result<BTreeSet<(&'a str, &'a str)>, GuardianError> {
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for (index, verification) in verifications.iter().enumerate() {
        let mut refuse = |name: &str, detail: String| {
            errors.push(FieldError::new(
                format!("verifications[{index}].{name}"),
                detail,
            ));
        };
        let (owner, designated) = (&verification.owner_id, &verification.designated_id);
        let unknown = |id: &str| guardian.record_of(id).is_none();
        if unknown(owner) {
            refuse(
                "owner_id",
                format!("{owner} is not a guardian of this ceremony"),
            );
        }
        if unknown(designated) {
            refuse(
                "designated_id",
                format!("{designated} is not a guardian of this ceremony"),
            );
        } else if designated == owner {
            refuse(
                "designated_id",
                "a guardian sends no backup to itself".into(),
            );
        }
        if verification.verifier_id != *designated {
            refuse("verifier_id", "must be the designated guardian".into());
        }
        if !seen.insert((owner.as_str(), designated.as_str())) {
            refuse(
                "owner_id",
                format!("a second verification of {owner}'s backup to {designated}"),
            );
        }
    }
    GuardianError::unless_refused(errors)?;
    Ok(seen)
}

/// The 409 for backups whose verifications are `missing` (named "owner → designated") or
/// `refused` (with their index in the request).
fn incomplete(
    missing: &[String],
    refused: &[(usize, &ElectionPartialKeyVerification)],
) -> GuardianError {
    let mut detail = Vec::new();
    if !missing.is_empty() {
        detail.push(format!(
            "verifications of these backups are missing: {}",
            missing.join(", ")
        ));
    }
    if !refused.is_empty() {
        let names: Vec<String> = refused
            .iter()
            .map(|(_, verification)| {
                format!(
                    "{}'s backup to {}",
                    verification.owner_id, verification.designated_id
                )
            })
            .collect();
        detail.push(format!(
            "not verified: {}; the sender must re-send it",
            names.join(", ")
        ));
    }
    let mut errors: Vec<FieldError> = refused
        .iter()
        .map(|(index, verification)| {
            FieldError::new(
                format!("verifications[{index}].verified"),
                format!(
                    "{} did not verify {}'s backup",
                    verification.designated_id, verification.owner_id
                ),
            )
        })
        .collect();
    if !missing.is_empty() {
        errors.push(FieldError::new(
            "verifications",
            format!("{} missing", missing.len()),
        ));
    }
    GuardianError::Conflict {
        detail: detail.join("; "),
        errors,
    }
}

/// 409 unless every backup to this guardian was verified here.
async fn check_own_backups(keys: &KeyStore, guardian: &Guardian) -> Result<(), GuardianError> {
    if guardian.stage >= GuardianStage::BackupsVerified {
        return Ok(());
    }
    let records = guardian.shared_records()?;
    let received: HashMap<String, ()> = {
        let mut conn = keys.connection().await?;
        store::received_backups(&mut conn, &guardian.name)
            .await?
            .into_iter()
            .map(|row| (row.owner_id, ()))
            .collect()
    };
    let waiting: Vec<&str> = records
        .iter()
        .map(|record| record.owner_id.as_str())
        .filter(|owner| *owner != guardian.name && !received.contains_key(*owner))
        .collect();
    Err(GuardianError::missing_step(
        "verifications",
        format!(
            "guardian {} has not verified the backups from {} yet: POST /v1/guardians/{}/verifications first",
            guardian.name,
            waiting.join(", "),
            guardian.name
        ),
    ))
}

fn repeat(
    guardian: &Guardian,
    stored: &CeremonyRecord,
    verifications: &[ElectionPartialKeyVerification],
) -> Result<CeremonyRecord, GuardianError> {
    if stored.verifications == verifications {
        Ok(stored.clone())
    } else {
        Err(GuardianError::conflict(
            "verifications",
            format!(
                "guardian {} was already finalized with other verifications",
                guardian.name
            ),
        ))
    }
}

/// Finalizes guardian `name`'s ceremony.
pub async fn finalize(
    keys: &KeyStore,
    name: &GuardianName,
    request: Finalize,
) -> Result<CeremonyRecord, GuardianError> {
    let guardian = Guardian::load(keys, name).await?;
    let records = guardian.shared_records()?.to_vec();
    check_own_backups(keys, &guardian).await?;
    check_complete(&guardian, &request.verifications)?;
    let verifications = in_order(&guardian, request.verifications);
    if let Some(stored) = &guardian.ceremony_record {
        return repeat(&guardian, stored, &verifications);
    }
    let unsigned = CeremonyRecord {
        ceremony_id: guardian.ceremony_id.clone(),
        number_of_guardians: guardian.number_of_guardians,
        quorum: guardian.quorum,
        joint_key: combine_election_public_keys(&records),
        public_records: records,
        verifications: verifications.clone(),
        signed_by: guardian.name.clone(),
        signing_key: String::new(),
        signing_public_key: String::new(),
        signature: String::new(),
    };
    let signed = record::sign(keys, unsigned).await?;
    let mut conn = keys.connection().await?;
    let answer = conn
        .transaction::<_, GuardianError, _>(async |conn| {
            let locked = Guardian::lock(conn, name).await?;
            if let Some(stored) = &locked.ceremony_record {
                return repeat(&locked, stored, &verifications);
            }
            store::record_ceremony(conn, name.as_str(), &to_json(&signed)?).await?;
            Ok(signed.clone())
        })
        .await?;
    tracing::info!(
        guardian = %name,
        ceremony = %answer.ceremony_id,
        signature_key = %answer.signing_key,
        "guardian ceremony finalized"
    );
    Ok(answer)
}

/// The stored ceremony record; 409 before finalize.
pub async fn ceremony_record(
    keys: &KeyStore,
    name: &GuardianName,
) -> Result<CeremonyRecord, GuardianError> {
    Guardian::load(keys, name).await?.finalized().cloned()
}
