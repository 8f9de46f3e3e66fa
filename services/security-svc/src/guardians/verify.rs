//! Verifying backups: each backup addressed to this guardian is decrypted and its coordinate
//! checked against the sender's commitments. A verified backup is kept (its coordinate sealed)
//! and final; a failed one is reported naming the sender and not kept, so the sender's backup
//! can be checked again when it is re-sent. When every other guardian's backup is verified the
//! guardian moves to `backups_verified`.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use diesel_async::AsyncConnection;
use vottery_common::guardians::{GuardianStage, VerificationsAnswer, VerifyBackups};
use vottery_common::problem::FieldError;
use vottery_election::{
    ElectionPartialKeyBackup, ElectionPartialKeyVerification, ElectionPublicKey, decrypt_backup,
    verify_polynomial_coordinate,
};

use super::error::GuardianError;
use super::guardian::Guardian;
use super::input::GuardianName;
use super::store::{self, ReceivedRow};
use super::{blocking, to_json};
use crate::keys::store::KeyStore;

/// Checks that every backup is addressed to this guardian, from a known other guardian, once.
fn check_addressing(
    guardian: &Guardian,
    backups: &[ElectionPartialKeyBackup],
) -> Result<(), GuardianError> {
    if backups.is_empty() {
        return Err(GuardianError::invalid(
            "backups",
            "must hold at least one backup",
        ));
    }
    let mut errors = Vec::new();
    let mut senders = HashSet::new();
    for (index, backup) in backups.iter().enumerate() {
        let mut refuse = |name: &str, detail: String| {
            errors.push(FieldError::new(format!("backups[{index}].{name}"), detail));
        };
        if backup.designated_id != guardian.name {
            let to = &backup.designated_id;
            refuse(
                "designated_id",
                format!("is addressed to {to}, not to guardian {}", guardian.name),
            );
        }
        if backup.designated_sequence_order != guardian.sequence_order {
            let (order, name) = (guardian.sequence_order, &guardian.name);
            refuse(
                "designated_sequence_order",
                format!("must be {order} (guardian {name}'s)"),
            );
        }
        if backup.owner_id == guardian.name || guardian.record_of(&backup.owner_id).is_none() {
            let (owner, ceremony) = (&backup.owner_id, &guardian.ceremony_id);
            refuse(
                "owner_id",
                format!("{owner} is not another guardian of ceremony {ceremony}"),
            );
        } else if !senders.insert(backup.owner_id.as_str()) {
            refuse(
                "owner_id",
                format!("a second backup from guardian {}", backup.owner_id),
            );
        }
    }
    GuardianError::unless_refused(errors)
}

fn verification(
    guardian: &Guardian,
    owner_id: &str,
    verified: bool,
) -> ElectionPartialKeyVerification {
    ElectionPartialKeyVerification {
        owner_id: owner_id.to_owned(),
        designated_id: guardian.name.clone(),
        verifier_id: guardian.name.clone(),
        verified,
    }
}

/// A backup checked now: its verdict, and when verified the row that keeps it.
struct Checked {
    verified: bool,
    kept: Option<ReceivedRow>,
}

/// Decrypts and checks `fresh` backups with this guardian's secret key, sealing each verified
/// coordinate. CPU-bound.
fn check_backups(
    guardian: &Guardian,
    root: &crate::seal::barrier::RootKey,
    fresh: &[(ElectionPartialKeyBackup, ElectionPublicKey)],
) -> Result<Vec<Checked>, GuardianError> {
    let owner = guardian.secret_owner();
    let polynomial = owner.open_polynomial(root, &guardian.sealed_polynomial)?;
    fresh
        .iter()
        .map(|(backup, sender)| {
            let coordinate = decrypt_backup(backup, polynomial.secret_key()).filter(|coordinate| {
                verify_polynomial_coordinate(
                    coordinate,
                    guardian.sequence_order,
                    &sender.coefficient_commitments,
                )
            });
            let Some(coordinate) = coordinate else {
                return Ok(Checked {
                    verified: false,
                    kept: None,
                });
            };
            let sealed = owner.seal_coordinate(root, &backup.owner_id, &coordinate)?;
            Ok(Checked {
                verified: true,
                kept: Some(ReceivedRow {
                    guardian_name: guardian.name.clone(),
                    owner_id: backup.owner_id.clone(),
                    backup: to_json(backup)?,
                    sealed_coordinate: sealed,
                    verification: to_json(&verification(guardian, &backup.owner_id, true))?,
                    created_at: Utc::now(),
                }),
            })
        })
        .collect()
}

/// Verifies the backups sent to guardian `name`.
pub async fn verify(
    keys: &KeyStore,
    name: &GuardianName,
    request: VerifyBackups,
) -> Result<VerificationsAnswer, GuardianError> {
    let guardian = Guardian::load(keys, name).await?;
    guardian.shared_records()?;
    check_addressing(&guardian, &request.backups)?;
    let kept: HashMap<String, ReceivedRow> = {
        let mut conn = keys.connection().await?;
        store::received_backups(&mut conn, name.as_str())
            .await?
            .into_iter()
            .map(|row| (row.owner_id.clone(), row))
            .collect()
    };
    let mut fresh = Vec::new();
    for (index, backup) in request.backups.iter().enumerate() {
        match kept.get(&backup.owner_id) {
            Some(row) if row.backup == to_json(backup)? => {}
            Some(_) => {
                return Err(GuardianError::conflict(
                    format!("backups[{index}]"),
                    format!(
                        "guardian {}'s backup to {} was already verified and is final; this one differs",
                        backup.owner_id, guardian.name
                    ),
                ));
            }
            None => {
                let sender = guardian
                    .record_of(&backup.owner_id)
                    .cloned()
                    .ok_or_else(|| GuardianError::Internal("sender vanished".into()))?;
                fresh.push((backup.clone(), sender));
            }
        }
    }

    let root = keys.barrier();
    let checking = guardian.clone();
    let checked_fresh = fresh.clone();
    let checked = blocking(move || check_backups(&checking, &root, &checked_fresh)).await?;
    let mut verdicts: HashMap<String, bool> =
        kept.keys().map(|owner| (owner.clone(), true)).collect();
    for ((backup, _), checked) in fresh.iter().zip(&checked) {
        verdicts.insert(backup.owner_id.clone(), checked.verified);
        if !checked.verified {
            tracing::info!(guardian = %name, sender = %backup.owner_id, "backup failed verification");
        }
    }
    let rows: Vec<&ReceivedRow> = checked
        .iter()
        .filter_map(|checked| checked.kept.as_ref())
        .collect();
    if !rows.is_empty() {
        let others = guardian.number_of_guardians as i64 - 1;
        let mut conn = keys.connection().await?;
        conn.transaction::<_, GuardianError, _>(async |conn| {
            let locked = Guardian::lock(conn, name).await?;
            for row in &rows {
                store::insert_received(conn, row).await?;
            }
            if locked.stage == GuardianStage::BackupsShared
                && store::count_received(conn, name.as_str()).await? == others
            {
                store::set_stage(conn, name.as_str(), GuardianStage::BackupsVerified).await?;
                tracing::info!(guardian = %name, "every backup to the guardian verified");
            }
            Ok(())
        })
        .await?;
    }
    Ok(VerificationsAnswer {
        verifications: request
            .backups
            .iter()
            .map(|backup| {
                let verified = verdicts.get(&backup.owner_id).copied().unwrap_or(false);
                verification(&guardian, &backup.owner_id, verified)
            })
            .collect(),
    })
}
