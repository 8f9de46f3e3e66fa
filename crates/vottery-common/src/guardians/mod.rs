//! Bodies of security-svc's guardian routes (`/v1/guardians/...`): the key ceremony of
//! ElectionGuard guardians and their partial decryptions.
//!
//! Group elements, proofs, public records and backups are `vottery_election`'s types and travel
//! in the reference package's hex. Request bodies reject unknown fields. Nothing here holds a
//! secret: backups are ciphertexts that only their recipient guardian can open.

use serde::{Deserialize, Serialize};
use vottery_election::{
    ElGamalCiphertext, ElectionJointKey, ElectionPartialKeyBackup, ElectionPartialKeyVerification,
    ElectionPublicKey, ElementModP, ElementModQ, PartialDecryption,
};

#[cfg(feature = "mediator")]
pub mod mediator;
#[cfg(feature = "openapi")]
pub mod schema;

/// Most guardians one ceremony may have.
pub const MAX_GUARDIANS: u32 = 32;
/// Most ciphertexts one decrypt or compensate call takes.
pub const MAX_CIPHERTEXTS: usize = 1_000;
/// The transit key (ed25519) with which every instance signs its ceremony records.
pub const RECORDS_KEY: &str = "vottery-guardian-records";

/// `POST /v1/guardians/{guardian}`: creates the guardian and its secret polynomial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateGuardian {
    /// The ceremony this guardian takes part in; the same on every guardian of it.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9_.:-]+$")
    )]
    pub ceremony_id: String,
    /// This guardian's position, 1 to `number_of_guardians`.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 32))]
    pub sequence_order: u32,
    /// How many guardians the ceremony has (n), 1 to 32.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 32))]
    pub number_of_guardians: u32,
    /// How many guardians a decryption needs (k), 1 to n.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 32))]
    pub quorum: u32,
}

/// Where a guardian stands in its ceremony; each stage follows the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum GuardianStage {
    /// The polynomial exists; the public record is ready to be shared.
    Created,
    /// Backups for the other guardians were made from everyone's public records.
    BackupsShared,
    /// Every backup addressed to this guardian was verified.
    BackupsVerified,
    /// The joint key is known and the ceremony record signed.
    Finalized,
}

impl GuardianStage {
    /// Every stage, in order.
    pub const ALL: [GuardianStage; 4] = [
        GuardianStage::Created,
        GuardianStage::BackupsShared,
        GuardianStage::BackupsVerified,
        GuardianStage::Finalized,
    ];

    /// The name used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            GuardianStage::Created => "created",
            GuardianStage::BackupsShared => "backups_shared",
            GuardianStage::BackupsVerified => "backups_verified",
            GuardianStage::Finalized => "finalized",
        }
    }

    /// The stage named `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|stage| stage.as_str() == text)
    }
}

impl std::fmt::Display for GuardianStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A guardian as `GET /v1/guardians/{guardian}` (and create) shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GuardianStatus {
    /// The guardian's name: the path segment, and `owner_id` in its records.
    pub guardian_id: String,
    pub ceremony_id: String,
    pub sequence_order: u32,
    pub number_of_guardians: u32,
    pub quorum: u32,
    pub stage: GuardianStage,
    /// The guardian's election public key, coefficient commitments and their Schnorr proofs.
    #[cfg_attr(feature = "openapi", schema(value_type = schema::PublicRecord))]
    pub public_record: ElectionPublicKey,
    /// The joint key, once finalized.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<schema::JointKey>))]
    pub joint_key: Option<ElectionJointKey>,
}

/// `POST /v1/guardians/{guardian}/backups`: every guardian's public record, this one's included.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShareBackups {
    /// All n public records, one per sequence order.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Vec<schema::PublicRecord>, min_items = 1, max_items = 32)
    )]
    pub public_records: Vec<ElectionPublicKey>,
}

/// The backups this guardian made: one per other guardian, encrypted to that guardian.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupsAnswer {
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<schema::Backup>))]
    pub backups: Vec<ElectionPartialKeyBackup>,
}

/// `POST /v1/guardians/{guardian}/verifications`: backups addressed to this guardian.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyBackups {
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Vec<schema::Backup>, min_items = 1, max_items = 31)
    )]
    pub backups: Vec<ElectionPartialKeyBackup>,
}

/// This guardian's verdict on each backup it was sent, in the order sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerificationsAnswer {
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<schema::Verification>))]
    pub verifications: Vec<ElectionPartialKeyVerification>,
}

/// `POST /v1/guardians/{guardian}/finalize`: every guardian's verification of every backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Finalize {
    /// All n·(n−1) verifications, every one true.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Vec<schema::Verification>, max_items = 992)
    )]
    pub verifications: Vec<ElectionPartialKeyVerification>,
}

/// The outcome of a ceremony as one guardian's instance saw it, signed by that instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CeremonyRecord {
    pub ceremony_id: String,
    pub number_of_guardians: u32,
    pub quorum: u32,
    /// Every guardian's public record, by sequence order.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<schema::PublicRecord>))]
    pub public_records: Vec<ElectionPublicKey>,
    /// Every verification, by owner then designated guardian's sequence order.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<schema::Verification>))]
    pub verifications: Vec<ElectionPartialKeyVerification>,
    /// K = ∏ K_i and the hash of every commitment, in sequence order.
    #[cfg_attr(feature = "openapi", schema(value_type = schema::JointKey))]
    pub joint_key: ElectionJointKey,
    /// The guardian whose instance signed.
    pub signed_by: String,
    /// The transit key that signed (`vottery-guardian-records`, ed25519).
    pub signing_key: String,
    /// The signing version's public key, base64, as a transit key read shows it.
    pub signing_public_key: String,
    /// `vault:v<N>:<base64>`: Ed25519 over the RFC 8785 form of this record without
    /// `signature`, as `POST /v1/transit/sign/vottery-guardian-records` makes it.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^vault:v[0-9]+:[A-Za-z0-9+/]+=*$")
    )]
    pub signature: String,
}

impl CeremonyRecord {
    /// The bytes the signature covers: the RFC 8785 (JCS) form of this record without
    /// `signature`. Check it with `POST /v1/transit/verify/vottery-guardian-records`, input
    /// these bytes in base64, or with Ed25519 and `signing_public_key` directly.
    pub fn signed_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut value = serde_json::to_value(self)?;
        if let Some(members) = value.as_object_mut() {
            members.remove("signature");
        }
        serde_json_canonicalizer::to_vec(&value)
    }
}

/// `POST /v1/guardians/{guardian}/decrypt`: ciphertexts to partially decrypt.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecryptShares {
    /// Q̄: the election's extended base hash, bound into each proof.
    #[cfg_attr(feature = "openapi", schema(value_type = schema::HexModQ))]
    pub extended_base_hash: ElementModQ,
    /// 1 to 1,000 ciphertexts under the joint key.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Vec<schema::Ciphertext>, min_items = 1, max_items = 1000)
    )]
    pub ciphertexts: Vec<ElGamalCiphertext>,
}

/// Partial decryptions M_i = α^{s_i}, each with a Chaum–Pedersen proof, in input order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecryptionShares {
    pub guardian_id: String,
    pub sequence_order: u32,
    /// K_i, against which the proofs check.
    #[cfg_attr(feature = "openapi", schema(value_type = schema::HexModP))]
    pub public_key: ElementModP,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<schema::Share>))]
    pub shares: Vec<PartialDecryption>,
}

/// `POST /v1/guardians/{guardian}/compensate`: shares on behalf of a missing guardian.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompensateShares {
    /// The guardian that is missing: another guardian of this ceremony.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub missing_guardian_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = schema::HexModQ))]
    pub extended_base_hash: ElementModQ,
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Vec<schema::Ciphertext>, min_items = 1, max_items = 1000)
    )]
    pub ciphertexts: Vec<ElGamalCiphertext>,
}

/// Compensated partial decryptions α^{P_missing(i)}, with proofs against the recovery key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompensatedShares {
    pub guardian_id: String,
    pub sequence_order: u32,
    pub missing_guardian_id: String,
    /// g^{P_missing(i)}, computed from the missing guardian's commitments.
    #[cfg_attr(feature = "openapi", schema(value_type = schema::HexModP))]
    pub recovery_public_key: ElementModP,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<schema::Share>))]
    pub shares: Vec<PartialDecryption>,
}
