//! Sharing backups: given every guardian's public record, check each proof (refusing the
//! ceremony, naming the guardian, on a bad one), then make one backup per other guardian: this
//! guardian's polynomial at that guardian's sequence order, encrypted to that guardian's key.
//! Idempotent: the same records again answer the same backups; other records are 409.

use diesel_async::AsyncConnection;
use vottery_common::guardians::{BackupsAnswer, GuardianStage, ShareBackups};
use vottery_common::problem::FieldError;
use vottery_election::{ElectionPartialKeyBackup, ElectionPublicKey, generate_backup};

use super::error::GuardianError;
use super::guardian::Guardian;
use super::input::{GuardianName, check_public_records, in_sequence_order};
use super::store;
use super::{blocking, to_json};
use crate::keys::store::KeyStore;

/// What a guardian that already shared answers for `records` (in sequence order).
fn repeat(
    guardian: &Guardian,
    records: &[ElectionPublicKey],
) -> Result<BackupsAnswer, GuardianError> {
    match (&guardian.public_records, &guardian.backups) {
        (Some(stored), Some(backups)) if stored.as_slice() == records => Ok(BackupsAnswer {
            backups: backups.clone(),
        }),
        _ => Err(GuardianError::conflict(
            "public_records",
            format!(
                "guardian {} already made its backups from other public records",
                guardian.name
            ),
        )),
    }
}

/// Checks every other guardian's proofs, a thread per record; the refusal names each bad
/// record and its guardian.
fn verify_proofs(records: &[(usize, ElectionPublicKey)], quorum: u32) -> Result<(), GuardianError> {
    let refused: Vec<(usize, &str, String)> = std::thread::scope(|scope| {
        let checks: Vec<_> = records
            .iter()
            .map(|(index, record)| {
                scope.spawn(move || {
                    record
                        .verify(quorum)
                        .err()
                        .map(|error| (*index, record.owner_id.as_str(), error.to_string()))
                })
            })
            .collect();
        checks
            .into_iter()
            .zip(records)
            .filter_map(|(check, (index, record))| {
                check.join().unwrap_or_else(|_| {
                    Some((*index, record.owner_id.as_str(), "the check failed".into()))
                })
            })
            .collect()
    });
    if refused.is_empty() {
        return Ok(());
    }
    let owners: Vec<&str> = refused.iter().map(|(_, owner, _)| *owner).collect();
    Err(GuardianError::Invalid {
        detail: format!(
            "the ceremony is refused: the public record of guardian {} does not verify",
            owners.join(", guardian ")
        ),
        errors: refused
            .into_iter()
            .map(|(index, owner, why)| {
                FieldError::new(
                    format!("public_records[{index}]"),
                    format!("guardian {owner}'s public record is refused: {why}"),
                )
            })
            .collect(),
    })
}

/// Makes (or answers again) guardian `name`'s backups for the other guardians.
pub async fn share(
    keys: &KeyStore,
    name: &GuardianName,
    request: ShareBackups,
) -> Result<BackupsAnswer, GuardianError> {
    let guardian = Guardian::load(keys, name).await?;
    check_public_records(
        &request.public_records,
        guardian.number_of_guardians,
        guardian.quorum,
        &guardian.public_record,
    )?;
    let records = in_sequence_order(request.public_records.clone());
    if guardian.stage >= GuardianStage::BackupsShared {
        return repeat(&guardian, &records);
    }
    let others: Vec<(usize, ElectionPublicKey)> = request
        .public_records
        .into_iter()
        .enumerate()
        .filter(|(_, record)| record.owner_id != guardian.name)
        .collect();
    let quorum = guardian.quorum;
    blocking(move || verify_proofs(&others, quorum)).await?;

    let root = keys.barrier();
    let mut conn = keys.connection().await?;
    let answer = conn
        .transaction::<_, GuardianError, _>(async |conn| {
            let locked = Guardian::lock(conn, name).await?;
            if locked.stage >= GuardianStage::BackupsShared {
                return repeat(&locked, &records);
            }
            let to_encrypt = records.clone();
            let backups: Vec<ElectionPartialKeyBackup> = blocking(move || {
                let polynomial = locked
                    .secret_owner()
                    .open_polynomial(&root, &locked.sealed_polynomial)?;
                Ok(to_encrypt
                    .iter()
                    .filter(|receiver| receiver.owner_id != locked.name)
                    .map(|receiver| generate_backup(&locked.name, &polynomial, receiver))
                    .collect())
            })
            .await?;
            store::record_backups(
                conn,
                name.as_str(),
                &to_json(&records)?,
                &to_json(&backups)?,
            )
            .await?;
            if records.len() == 1 {
                // A guardian alone has no backups to wait for.
                store::set_stage(conn, name.as_str(), GuardianStage::BackupsVerified).await?;
            }
            Ok(BackupsAnswer { backups })
        })
        .await?;
    tracing::info!(
        guardian = %name,
        backups = answer.backups.len(),
        "guardian backups shared"
    );
    Ok(answer)
}
