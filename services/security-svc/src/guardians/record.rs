//! The signed ceremony record: the public records, every verification and the joint key, signed
//! by this instance's Ed25519 records key (`vottery-guardian-records`, a transit key created on
//! first use) over the record's RFC 8785 form without `signature`. The signature is exactly what
//! `POST /v1/transit/sign/vottery-guardian-records` answers for those bytes.

use vottery_common::guardians::{CeremonyRecord, RECORDS_KEY};
use vottery_common::transit::KeyType;

use super::error::GuardianError;
use crate::keys::Purpose;
use crate::keys::hash::HashAlgorithm;
use crate::keys::ops::{self, Marshaling, RsaPadding, SignOptions};
use crate::keys::rules::NewKey;
use crate::keys::store::KeyStore;
use crate::keys::wire::{encode_b64, format_versioned};

/// Signs `record` (its `signed_by` set) with the latest version of the records key, filling
/// `signing_key`, `signing_public_key` and `signature`.
pub async fn sign(
    keys: &KeyStore,
    mut record: CeremonyRecord,
) -> Result<CeremonyRecord, GuardianError> {
    let ring = keys
        .create(
            RECORDS_KEY,
            NewKey::for_upsert(KeyType::Ed25519, false, false),
        )
        .await?;
    if ring.key_type() != KeyType::Ed25519 || ring.config.derived {
        return Err(GuardianError::Internal(format!(
            "transit key {RECORDS_KEY} is not a plain ed25519 key"
        )));
    }
    let version = ring.version_for(Purpose::Signing, None)?;
    record.signing_key = RECORDS_KEY.to_owned();
    record.signing_public_key = version.public_key.clone().unwrap_or_default();
    record.signature = String::new();
    let signed_bytes = record
        .signed_bytes()
        .map_err(|error| GuardianError::Internal(error.to_string()))?;
    let options = SignOptions {
        hash: HashAlgorithm::Sha2_256,
        prehashed: false,
        padding: RsaPadding::Pss,
        marshaling: Marshaling::Asn1,
        context: None,
    };
    let signed = ops::sign(&version.material, ring.flags(), &signed_bytes, &options)?;
    record.signature = format_versioned(version.number, &encode_b64(&signed.bytes));
    Ok(record)
}
