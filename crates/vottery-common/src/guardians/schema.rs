//! OpenAPI schemas of the `vottery_election` types the guardian routes carry. They document
//! the wire form only; the bodies themselves (de)serialize through `vottery_election`.

#![allow(dead_code)] // schemas only

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

fn hex(description: &str, pattern: &str, max_length: usize) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .min_length(Some(1))
        .max_length(Some(max_length))
        .description(Some(description))
        .into()
}

/// An integer mod p (4096 bits) in hex.
pub struct HexModP;

impl PartialSchema for HexModP {
    fn schema() -> RefOr<Schema> {
        hex(
            "An integer below p (4096 bits) in hex, as the ElectionGuard reference writes it: upper case, even length. Group elements must also lie in the order-q subgroup.",
            "^[0-9A-Fa-f]{1,1024}$",
            1024,
        )
    }
}

impl ToSchema for HexModP {}

/// An integer mod q (256 bits) in hex.
pub struct HexModQ;

impl PartialSchema for HexModQ {
    fn schema() -> RefOr<Schema> {
        hex(
            "An integer below q (256 bits) in hex, as the ElectionGuard reference writes it: upper case, even length.",
            "^[0-9A-Fa-f]{1,64}$",
            64,
        )
    }
}

impl ToSchema for HexModQ {}

/// Bytes in hex (the data and MAC of a hashed ElGamal ciphertext).
pub struct HexBytes;

impl PartialSchema for HexBytes {
    fn schema() -> RefOr<Schema> {
        hex(
            "Bytes in upper-case hex, leading zero bytes dropped as the reference does.",
            "^[0-9A-Fa-f]+$",
            4096,
        )
    }
}

impl ToSchema for HexBytes {}

/// An exponential ElGamal ciphertext (α, β) = (g^r, g^m·K^r), named apart from transit's.
#[derive(ToSchema)]
#[schema(as = ElGamalCiphertext)]
pub struct Ciphertext {
    /// α = g^r: a member of the group.
    pad: HexModP,
    /// β = g^m·K^r: a member of the group.
    data: HexModP,
}

/// A Schnorr proof of knowledge of a polynomial coefficient.
#[derive(ToSchema)]
pub struct SchnorrProof {
    public_key: HexModP,
    commitment: HexModP,
    challenge: HexModQ,
    response: HexModQ,
    /// `SecretValue`.
    usage: String,
}

/// A guardian's public record: its election public key, coefficient commitments and proofs.
#[derive(ToSchema)]
pub struct PublicRecord {
    /// The guardian's name.
    owner_id: String,
    #[schema(minimum = 1, maximum = 32)]
    sequence_order: u32,
    /// K_i = g^{a_i,0}: the first commitment.
    key: HexModP,
    /// g^{a_i,j} for j in 0..k.
    #[schema(min_items = 1, max_items = 32)]
    coefficient_commitments: Vec<HexModP>,
    /// One Schnorr proof per commitment.
    #[schema(min_items = 1, max_items = 32)]
    coefficient_proofs: Vec<SchnorrProof>,
}

/// A hashed ElGamal ciphertext (ElectionGuard's backup encryption).
#[derive(ToSchema)]
pub struct HashedCiphertext {
    pad: HexModP,
    data: HexBytes,
    mac: HexBytes,
}

/// P_owner(designated's sequence order), encrypted to the designated guardian.
#[derive(ToSchema)]
pub struct Backup {
    owner_id: String,
    designated_id: String,
    #[schema(minimum = 1, maximum = 32)]
    designated_sequence_order: u32,
    encrypted_coordinate: HashedCiphertext,
}

/// One guardian's verdict on one backup sent to it.
#[derive(ToSchema)]
#[schema(as = BackupVerification)]
pub struct Verification {
    owner_id: String,
    designated_id: String,
    verifier_id: String,
    verified: bool,
}

/// The joint public key K and the commitment hash.
#[derive(ToSchema)]
pub struct JointKey {
    joint_public_key: HexModP,
    commitment_hash: HexModQ,
}

/// A Chaum–Pedersen proof that a partial decryption used the guardian's share.
#[derive(ToSchema)]
pub struct ChaumPedersenProof {
    pad: HexModP,
    data: HexModP,
    challenge: HexModQ,
    response: HexModQ,
    usage: String,
}

/// A partial decryption M_i = α^{s_i} and its proof.
#[derive(ToSchema)]
pub struct Share {
    partial_decryption: HexModP,
    proof: ChaumPedersenProof,
}
