//! Partial decryptions by a finalized guardian: M_i = α^{s_i} with a Chaum–Pedersen proof for
//! each ciphertext, and compensated shares α^{P_m(i)} for a missing guardian m from the
//! coordinate m's backup carried, with the recovery key g^{P_m(i)} the proofs check against.
//! Every pad and data must be in the group, or the batch is refused naming each bad one; the
//! batch runs off the async runtime.

use vottery_common::guardians::{
    CompensateShares, CompensatedShares, DecryptShares, DecryptionShares,
};
use vottery_election::{ElGamalCiphertext, compute_recovery_public_key, partially_decrypt_batch};

use super::blocking;
use super::error::GuardianError;
use super::guardian::Guardian;
use super::input::{GuardianName, check_batch_size, check_data, pads_refused};
use super::store;
use crate::keys::store::KeyStore;

/// Guardian `name`, once the batch's size is allowed and the guardian is finalized.
async fn finalized(
    keys: &KeyStore,
    name: &GuardianName,
    ciphertexts: &[ElGamalCiphertext],
) -> Result<Guardian, GuardianError> {
    check_batch_size(ciphertexts)?;
    let guardian = Guardian::load(keys, name).await?;
    guardian.finalized()?;
    Ok(guardian)
}

/// Guardian `name`'s partial decryptions of `request.ciphertexts`.
pub async fn decrypt(
    keys: &KeyStore,
    name: &GuardianName,
    request: DecryptShares,
) -> Result<DecryptionShares, GuardianError> {
    let guardian = finalized(keys, name, &request.ciphertexts).await?;
    let root = keys.barrier();
    let answering = guardian.clone();
    let shares = blocking(move || {
        let batch = &request.ciphertexts;
        check_data(batch)?;
        let polynomial = answering
            .secret_owner()
            .open_polynomial(&root, &answering.sealed_polynomial)?;
        partially_decrypt_batch(batch, polynomial.secret_key(), &request.extended_base_hash)
            .map_err(|first| pads_refused(batch, first))
    })
    .await?;
    tracing::debug!(guardian = %name, shares = shares.len(), "partial decryptions made");
    Ok(DecryptionShares {
        public_key: guardian.public_record.key.clone(),
        guardian_id: guardian.name,
        sequence_order: guardian.sequence_order,
        shares,
    })
}

/// Guardian `name`'s compensated partial decryptions for `request.missing_guardian_id`.
pub async fn compensate(
    keys: &KeyStore,
    name: &GuardianName,
    request: CompensateShares,
) -> Result<CompensatedShares, GuardianError> {
    let CompensateShares {
        missing_guardian_id,
        extended_base_hash,
        ciphertexts,
    } = request;
    let guardian = finalized(keys, name, &ciphertexts).await?;
    let missing = match guardian.record_of(&missing_guardian_id) {
        Some(record) if record.owner_id != guardian.name => record.clone(),
        _ => {
            return Err(GuardianError::invalid(
                "missing_guardian_id",
                format!(
                    "{missing_guardian_id} is not another guardian of ceremony {}",
                    guardian.ceremony_id
                ),
            ));
        }
    };
    let kept = {
        let mut conn = keys.connection().await?;
        store::received_from(&mut conn, name.as_str(), &missing_guardian_id)
            .await?
            .ok_or_else(|| {
                GuardianError::Internal(format!(
                    "guardian {name} is finalized without the backup from {missing_guardian_id}"
                ))
            })?
    };
    let root = keys.barrier();
    let answering = guardian.clone();
    let (recovery_public_key, shares) = blocking(move || {
        check_data(&ciphertexts)?;
        let coordinate = answering.secret_owner().open_coordinate(
            &root,
            &missing.owner_id,
            &kept.sealed_coordinate,
        )?;
        let recovery_public_key = compute_recovery_public_key(answering.sequence_order, &missing);
        let shares = partially_decrypt_batch(&ciphertexts, &coordinate, &extended_base_hash)
            .map_err(|first| pads_refused(&ciphertexts, first))?;
        Ok((recovery_public_key, shares))
    })
    .await?;
    tracing::debug!(
        guardian = %name,
        missing = %missing_guardian_id,
        shares = shares.len(),
        "compensated partial decryptions made"
    );
    Ok(CompensatedShares {
        guardian_id: guardian.name,
        sequence_order: guardian.sequence_order,
        missing_guardian_id,
        recovery_public_key,
        shares,
    })
}
