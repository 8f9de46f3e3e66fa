//! ElectionGuard 1.0 mathematics, computing exactly what the `electionguard` 1.4.0 reference
//! package computes: the standard 4096-bit group, `hash_elems`, exponential and hashed ElGamal,
//! Schnorr and Chaum–Pedersen proofs, the guardians' key ceremony and threshold decryption with
//! compensation for missing guardians.
//!
//! The numbers are checked against the reference: `tests/vectors.json` holds its known answers
//! (`scripts/guardians/eg_reference.py vectors`), and `tests/reference.rs` has it verify proofs,
//! keys and decryptions made here. JSON field names are the reference's wherever a type is one
//! of its own (`ElectionPublicKey`, `SchnorrProof`, `ChaumPedersenProof`, `ElGamalCiphertext`,
//! `HashedElGamalCiphertext`, `ElectionPartialKeyBackup`, `ElectionJointKey`, …), so its
//! `serialize.from_raw` reads them.
//!
//! # Arithmetic
//!
//! Multiplication mod p is crypto-bigint 0.6.1's constant-time Montgomery arithmetic
//! (`MontyForm<64>`), the version already in the workspace. Measured on this 2-core machine
//! (minimum of 60 runs while others compiled): 0.6.1 multiplies in 7.5 µs and squares in
//! 7.0 µs; 0.7.11 does both in 6.65 µs (about 8 % faster) — not enough to put a second major
//! version in the tree. GMP (the reference's gmpy2) multiplies in 4.9 µs and raises to a 256-bit
//! power in 1.0 ms against crypto-bigint's 2.4 ms; the algorithms in the private `exp` module
//! make up the difference:
//!
//! - g^e uses a fixed-base table (64 windows × 16 entries): 63 multiplications; for a secret
//!   exponent every entry of a window is read and selected in constant time.
//! - A partial decryption needs α^s and α^u, both secret: one comb table of α (6 teeth) serves
//!   both with about a quarter fewer operations than two windowed powers, and its squarings are carried
//!   to α^(2^256) to check α is in the subgroup for ~50 more operations.
//! - Verification raises only public exponents: the 256 squarings each subgroup check needs
//!   (x^q = 1 ⇔ x^(2^256) = x^189, as q = 2^256 − 189) are kept and reused for α^v, M^c and K^c
//!   (Yao's method, ~94 multiplications each); the guardian key K is checked once per batch.
//! - Batches are split over the available cores with `std::thread::scope`.

mod constants;
pub mod decryption;
pub mod discrete_log;
pub mod elgamal;
mod exp;
pub mod group;
pub mod hash;
pub mod key_ceremony;
pub mod membership;
mod parallel;
pub mod polynomial;
pub mod proofs;

pub use decryption::{
    PartialDecryption, ShareSet, combine_partial_decryptions, compute_recovery_public_key,
    partially_decrypt, partially_decrypt_batch, reconstruct_missing_share, verify_partial,
    verify_partial_batch, verify_share_sets,
};
pub use discrete_log::DiscreteLog;
pub use elgamal::{
    ElGamalCiphertext, HashedElGamalCiphertext, elgamal_add, elgamal_encrypt,
    hashed_elgamal_encrypt,
};
pub use group::{ElementModP, ElementModQ, GroupError, SecretModQ, g_pow_p, rand_q};
pub use hash::{Hashable, hash_elems};
pub use key_ceremony::{
    ElectionJointKey, ElectionPartialKeyBackup, ElectionPartialKeyVerification, ElectionPublicKey,
    ProofError, combine_election_public_keys, decrypt_backup, generate_backup,
    generate_backup_with_nonce, verify_backup,
};
pub use membership::all_members;
pub use polynomial::{
    ElectionPolynomial, compute_lagrange_coefficient, compute_polynomial_coordinate,
    verify_polynomial_coordinate,
};
pub use proofs::{ChaumPedersenProof, SECRET_VALUE_USAGE, SchnorrProof};
