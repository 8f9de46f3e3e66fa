//! The key ceremony's public records and messages: election public keys, encrypted partial key
//! backups and their verification, and the joint key, as the reference's key_ceremony.py.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::elgamal::{HashedElGamalCiphertext, hashed_elgamal_encrypt};
use crate::group::{ElementModP, ElementModQ, SecretModQ, rand_q};
use crate::hash::{Hashable, hash_elems};
use crate::polynomial::{
    ElectionPolynomial, compute_polynomial_coordinate, verify_polynomial_coordinate,
};
use crate::proofs::SchnorrProof;

/// The reference pads a serialized coordinate to this many bytes before encrypting it.
const PADDED_SIZE: usize = 512;
/// Bytes of the padding-length prefix.
const PAD_INDICATOR_SIZE: usize = 2;

/// A guardian's public record; field names as the reference serializes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionPublicKey {
    /// The guardian's id.
    pub owner_id: String,
    /// The guardian's sequence order (1-based, its x coordinate).
    pub sequence_order: u32,
    /// The guardian's election public key K_i (= the first commitment).
    pub key: ElementModP,
    /// K_ij = g^a_ij for each coefficient.
    pub coefficient_commitments: Vec<ElementModP>,
    /// A Schnorr proof for each coefficient.
    pub coefficient_proofs: Vec<SchnorrProof>,
}

/// Why a public record is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The number of commitments or proofs is not the quorum.
    #[error(
        "expected {expected} coefficient commitments and proofs, found {commitments} and {proofs}"
    )]
    WrongLength {
        /// The quorum.
        expected: u32,
        /// Commitments found.
        commitments: usize,
        /// Proofs found.
        proofs: usize,
    },
    /// The key is not the first commitment.
    #[error("the key is not the first coefficient commitment")]
    KeyMismatch,
    /// A proof is not about its commitment.
    #[error("the proof of coefficient {index} is not about its commitment")]
    ProofNotForCommitment {
        /// Coefficient index.
        index: usize,
    },
    /// A Schnorr proof fails.
    #[error("the proof of coefficient {index} is invalid")]
    InvalidProof {
        /// Coefficient index.
        index: usize,
    },
}

impl ElectionPublicKey {
    /// The public record of a guardian's polynomial.
    pub fn new(owner_id: &str, sequence_order: u32, poly: &ElectionPolynomial) -> Self {
        ElectionPublicKey {
            owner_id: owner_id.to_owned(),
            sequence_order,
            key: poly.public_key(),
            coefficient_commitments: poly.commitments(),
            coefficient_proofs: poly.proofs(),
        }
    }

    /// Checks every proof, that there are `quorum` of them and that the key is the first
    /// commitment.
    pub fn verify(&self, quorum: u32) -> Result<(), ProofError> {
        let expected = usize::try_from(quorum).unwrap_or(usize::MAX);
        if self.coefficient_commitments.len() != expected
            || self.coefficient_proofs.len() != expected
        {
            return Err(ProofError::WrongLength {
                expected: quorum,
                commitments: self.coefficient_commitments.len(),
                proofs: self.coefficient_proofs.len(),
            });
        }
        if self.coefficient_commitments.first() != Some(&self.key) {
            return Err(ProofError::KeyMismatch);
        }
        for (index, (commitment, proof)) in self
            .coefficient_commitments
            .iter()
            .zip(&self.coefficient_proofs)
            .enumerate()
        {
            if &proof.public_key != commitment {
                return Err(ProofError::ProofNotForCommitment { index });
            }
            if !proof.is_valid() {
                return Err(ProofError::InvalidProof { index });
            }
        }
        Ok(())
    }
}

/// A partial key backup: the sender's polynomial at the receiver's sequence order, encrypted to
/// the receiver. Field names as the reference serializes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionPartialKeyBackup {
    /// The sending guardian.
    pub owner_id: String,
    /// The receiving guardian.
    pub designated_id: String,
    /// The receiving guardian's sequence order.
    pub designated_sequence_order: u32,
    /// The coordinate, padded as the reference does, under hashed ElGamal.
    pub encrypted_coordinate: HashedElGamalCiphertext,
}

/// A receiver's verdict on a backup; field names as the reference serializes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionPartialKeyVerification {
    /// The sending guardian.
    pub owner_id: String,
    /// The receiving guardian.
    pub designated_id: String,
    /// The guardian that checked it.
    pub verifier_id: String,
    /// Whether the coordinate lies on the sender's committed polynomial.
    pub verified: bool,
}

/// The joint election key and the hash of every commitment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionJointKey {
    /// K = ∏ K_i mod p.
    pub joint_public_key: ElementModP,
    /// hash_elems([every commitment of every guardian]).
    pub commitment_hash: ElementModQ,
}

/// The reference's `generate_election_partial_key_backup` with a fresh nonce.
pub fn generate_backup(
    owner_id: &str,
    poly: &ElectionPolynomial,
    receiver: &ElectionPublicKey,
) -> ElectionPartialKeyBackup {
    generate_backup_with_nonce(owner_id, poly, receiver, &rand_q())
}

/// [`generate_backup`] with a given encryption nonce, for known answers.
pub fn generate_backup_with_nonce(
    owner_id: &str,
    poly: &ElectionPolynomial,
    receiver: &ElectionPublicKey,
    nonce: &ElementModQ,
) -> ElectionPartialKeyBackup {
    let coordinate = compute_polynomial_coordinate(receiver.sequence_order, poly);
    let padded = padded_coordinate(&coordinate);
    let seed = backup_seed(&receiver.owner_id, receiver.sequence_order);
    ElectionPartialKeyBackup {
        owner_id: owner_id.to_owned(),
        designated_id: receiver.owner_id.clone(),
        designated_sequence_order: receiver.sequence_order,
        encrypted_coordinate: hashed_elgamal_encrypt(&padded, nonce, &receiver.key, &seed),
    }
}

/// The reference's `get_backup_seed`: hash_elems(receiver id, receiver sequence order).
fn backup_seed(receiver_id: &str, sequence_order: u32) -> ElementModQ {
    hash_elems(&[
        Hashable::Str(receiver_id),
        Hashable::Int(u64::from(sequence_order)),
    ])
}

/// The reference's `CoordinateData(coordinate).to_bytes()`: its JSON (`{"coordinate": "HEX"}`)
/// after a two-byte big-endian padding length, zero-padded to 512 bytes.
fn padded_coordinate(coordinate: &SecretModQ) -> Zeroizing<Vec<u8>> {
    let hex = Zeroizing::new(crate::group::hex_of(coordinate.to_be_bytes().as_ref()));
    let json = Zeroizing::new(format!("{{\"coordinate\": \"{}\"}}", hex.as_str()));
    let padding = PADDED_SIZE - PAD_INDICATOR_SIZE - json.len();
    let mut out = Zeroizing::new(Vec::with_capacity(PADDED_SIZE));
    out.extend_from_slice(&(padding as u16).to_be_bytes());
    out.extend_from_slice(json.as_bytes());
    out.resize(PADDED_SIZE, 0);
    out
}

/// The coordinate inside the reference's padded `CoordinateData`.
fn unpad_coordinate(padded: &[u8]) -> Option<SecretModQ> {
    let indicator = padded.get(..PAD_INDICATOR_SIZE)?;
    let padding = usize::from(u16::from_be_bytes([indicator[0], indicator[1]]));
    let end = PADDED_SIZE.checked_sub(padding)?;
    let json = padded.get(PAD_INDICATOR_SIZE..end)?;
    #[derive(Deserialize)]
    struct CoordinateData {
        coordinate: String,
    }
    let data: CoordinateData = serde_json::from_slice(json).ok()?;
    let hex = Zeroizing::new(data.coordinate);
    SecretModQ::from_hex(&hex).ok()
}

/// Decrypts a backup addressed to `backup.designated_id` at `backup.designated_sequence_order`
/// (the caller checks that is itself). `None` when the MAC or the padded coordinate is wrong.
pub fn decrypt_backup(
    backup: &ElectionPartialKeyBackup,
    receiver_secret: &SecretModQ,
) -> Option<SecretModQ> {
    let seed = backup_seed(&backup.designated_id, backup.designated_sequence_order);
    let padded = backup
        .encrypted_coordinate
        .decrypt(receiver_secret, &seed)?;
    unpad_coordinate(&padded)
}

/// The reference's `verify_election_partial_key_backup`: decrypts the backup and checks the
/// coordinate against the sender's commitments; a backup that does not decrypt is unverified.
pub fn verify_backup(
    verifier_id: &str,
    backup: &ElectionPartialKeyBackup,
    sender: &ElectionPublicKey,
    receiver_secret: &SecretModQ,
) -> ElectionPartialKeyVerification {
    let verified = backup.owner_id == sender.owner_id
        && decrypt_backup(backup, receiver_secret).is_some_and(|coordinate| {
            verify_polynomial_coordinate(
                &coordinate,
                backup.designated_sequence_order,
                &sender.coefficient_commitments,
            )
        });
    ElectionPartialKeyVerification {
        owner_id: backup.owner_id.clone(),
        designated_id: backup.designated_id.clone(),
        verifier_id: verifier_id.to_owned(),
        verified,
    }
}

/// The reference's `combine_election_public_keys`.
pub fn combine_election_public_keys(keys: &[ElectionPublicKey]) -> ElectionJointKey {
    let joint_public_key = keys.iter().fold(ElementModP::one(), |product, record| {
        product.mul(&record.key)
    });
    let commitments: Vec<Hashable<'_>> = keys
        .iter()
        .flat_map(|record| record.coefficient_commitments.iter().map(Hashable::P))
        .collect();
    ElectionJointKey {
        joint_public_key,
        commitment_hash: hash_elems(&[Hashable::Seq(commitments)]),
    }
}
