//! Partial decryptions with Chaum–Pedersen proofs, their checks, compensation for a missing
//! guardian and the combination of shares, as the reference's decryption.py and
//! decrypt_with_shares.py.

use serde::{Deserialize, Serialize};

use crate::elgamal::ElGamalCiphertext;
use crate::exp::{self, Mont};
use crate::group::{ElementModP, ElementModQ, SecretModQ, rand_q};
use crate::key_ceremony::ElectionPublicKey;
use crate::membership::all_members;
use crate::parallel::in_parallel;
use crate::polynomial::commitment_product;
use crate::proofs::{ChaumPedersenProof, CiphertextChain, KeyChain};

/// M = α^s and the proof that it used the secret behind the guardian's (or recovery) key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialDecryption {
    /// M = α^s mod p.
    pub partial_decryption: ElementModP,
    /// Proof that log_g K = log_α M.
    pub proof: ChaumPedersenProof,
}

/// The reference's `partially_decrypt` (and `decrypt_with_threshold` when `secret` is a missing
/// guardian's coordinate), with a random nonce seed. `None` when α is not in the order-q
/// subgroup: the secret is never raised from a value that could leak part of it.
pub fn partially_decrypt(
    ct: &ElGamalCiphertext,
    secret: &SecretModQ,
    extended_base_hash: &ElementModQ,
) -> Option<PartialDecryption> {
    let seed = rand_q();
    let (partial_decryption, proof) =
        ChaumPedersenProof::make_with_partial(ct, secret, &seed, extended_base_hash)?;
    Some(PartialDecryption {
        partial_decryption,
        proof,
    })
}

/// [`partially_decrypt`] over many ciphertexts, spread over the available cores; the error is
/// the index of the first ciphertext whose α is not in the order-q subgroup.
pub fn partially_decrypt_batch(
    cts: &[ElGamalCiphertext],
    secret: &SecretModQ,
    ebh: &ElementModQ,
) -> Result<Vec<PartialDecryption>, usize> {
    let results: Vec<Result<Vec<PartialDecryption>, usize>> = in_parallel(cts, |offset, chunk| {
        let mut out = Vec::with_capacity(chunk.len());
        for (i, ct) in chunk.iter().enumerate() {
            out.push(partially_decrypt(ct, secret, ebh).ok_or(offset + i)?);
        }
        Ok(out)
    });
    let mut shares = Vec::with_capacity(cts.len());
    for result in results {
        shares.extend(result?);
    }
    Ok(shares)
}

/// Checks one partial decryption against the guardian's key K (or a recovery key).
pub fn verify_partial(
    ct: &ElGamalCiphertext,
    share: &PartialDecryption,
    k: &ElementModP,
    ebh: &ElementModQ,
) -> bool {
    share.proof.is_valid(ct, k, &share.partial_decryption, ebh)
}

/// Checks every share against its ciphertext exactly as the reference's `is_valid` does, spread
/// over the available cores; the error is the first bad index (a length mismatch is reported at
/// the shorter length, a key outside the subgroup at 0).
pub fn verify_partial_batch(
    cts: &[ElGamalCiphertext],
    shares: &[PartialDecryption],
    k: &ElementModP,
    ebh: &ElementModQ,
) -> Result<(), usize> {
    if cts.len() != shares.len() {
        return Err(cts.len().min(shares.len()));
    }
    let Some(key) = KeyChain::new(k) else {
        return Err(0);
    };
    let pairs: Vec<(&ElGamalCiphertext, &PartialDecryption)> = cts.iter().zip(shares).collect();
    let valid = share_check(cts, &[shares], ebh);
    let failures = in_parallel(&pairs, |offset, chunk| {
        chunk
            .iter()
            .position(|(ct, share)| !valid(ct, share, &key))
            .map(|i| offset + i)
    });
    match failures.into_iter().flatten().min() {
        Some(index) => Err(index),
        None => Ok(()),
    }
}

/// Whether a share is valid for its ciphertext under a key.
type ShareCheck<'a> =
    Box<dyn Fn(&ElGamalCiphertext, &PartialDecryption, &KeyChain) -> bool + Sync + 'a>;

/// How to check one share against its ciphertext and key. When every α, β and M of the batch
/// pass [`all_members`] together, each proof is checked without a subgroup check of its own;
/// otherwise each ciphertext and share is checked in full, which finds the bad one.
fn share_check<'a>(
    cts: &'a [ElGamalCiphertext],
    sets: &[&[PartialDecryption]],
    ebh: &'a ElementModQ,
) -> ShareCheck<'a> {
    let mut elements: Vec<&ElementModP> = cts.iter().flat_map(|ct| [&ct.pad, &ct.data]).collect();
    elements.extend(
        sets.iter()
            .flat_map(|shares| shares.iter().map(|share| &share.partial_decryption)),
    );
    if all_members(&elements) {
        return Box::new(move |ct, share, key| {
            share
                .proof
                .is_valid_for_members(ct, key, &share.partial_decryption, ebh)
        });
    }
    let chain = ciphertext_chains(cts);
    Box::new(move |ct, share, key| {
        chain(ct).is_some_and(|ct| {
            share
                .proof
                .is_valid_prepared(&ct, key, &share.partial_decryption, ebh)
        })
    })
}

/// How to check each ciphertext of a batch: every β at once when the batch passes
/// [`all_members`] (then α alone per ciphertext), else α and β of each, to find the bad one.
fn ciphertext_chains(
    cts: &[ElGamalCiphertext],
) -> impl Fn(&ElGamalCiphertext) -> Option<CiphertextChain<'_>> + Sync {
    let data: Vec<&ElementModP> = cts.iter().map(|ct| &ct.data).collect();
    let data_are_members = all_members(&data);
    move |ct| {
        if data_are_members {
            CiphertextChain::of_member_data(ct)
        } else {
            CiphertextChain::new(ct)
        }
    }
}

/// One guardian's shares of a list of ciphertexts and the key they are checked against (the
/// guardian's public key, or the recovery public key for compensated shares).
#[derive(Debug, Clone, Copy)]
pub struct ShareSet<'a> {
    /// K_i, or the recovery public key of a missing guardian.
    pub key: &'a ElementModP,
    /// One share per ciphertext, in order.
    pub shares: &'a [PartialDecryption],
}

/// Checks several guardians' shares of the same ciphertexts, as [`verify_partial_batch`] does
/// for each set, but checking each ciphertext's α and β once for all sets; spread over the
/// available cores. The error is (set, ciphertext) of the first bad share in ciphertext order;
/// a set of the wrong length fails at (set, its length), a key outside the subgroup at (set, 0).
pub fn verify_share_sets(
    cts: &[ElGamalCiphertext],
    sets: &[ShareSet<'_>],
    ebh: &ElementModQ,
) -> Result<(), (usize, usize)> {
    let mut keys = Vec::with_capacity(sets.len());
    for (set, share_set) in sets.iter().enumerate() {
        if share_set.shares.len() != cts.len() {
            return Err((set, share_set.shares.len().min(cts.len())));
        }
        keys.push(KeyChain::new(share_set.key).ok_or((set, 0))?);
    }
    let indices: Vec<usize> = (0..cts.len()).collect();
    let all_shares: Vec<&[PartialDecryption]> = sets.iter().map(|set| set.shares).collect();
    let valid = share_check(cts, &all_shares, ebh);
    let failures = in_parallel(&indices, |_, chunk| {
        chunk.iter().find_map(|&i| {
            let bad = sets
                .iter()
                .zip(&keys)
                .position(|(share_set, key)| !valid(&cts[i], &share_set.shares[i], key))?;
            Some((bad, i))
        })
    });
    match failures
        .into_iter()
        .flatten()
        .min_by_key(|(set, i)| (*i, *set))
    {
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}

/// The reference's `compute_recovery_public_key`: ∏ K_mj^(ℓ^j), the key a compensated share from
/// the guardian at `sequence_order` is checked against.
pub fn compute_recovery_public_key(
    sequence_order: u32,
    missing: &ElectionPublicKey,
) -> ElementModP {
    commitment_product(sequence_order, &missing.coefficient_commitments)
}

/// A missing guardian's share rebuilt from compensated shares: ∏ M_ℓ^(w_ℓ), each with the
/// Lagrange coefficient of the guardian that made it.
pub fn reconstruct_missing_share(parts: &[(&ElementModP, &ElementModQ)]) -> ElementModP {
    let mut product: Option<Mont> = None;
    for (share, coefficient) in parts {
        let term = exp::pow_vartime(&share.to_mont(), &coefficient.0);
        product = Some(match product {
            Some(value) => value.mul(&term),
            None => term,
        });
    }
    product.map_or_else(ElementModP::one, |value| ElementModP::from_mont(&value))
}

/// g^m = β / ∏ M_i: the decrypted value in the exponent, from every guardian's share (present or
/// reconstructed). `None` when a share is zero (no verified share is).
pub fn combine_partial_decryptions(
    ct: &ElGamalCiphertext,
    shares: &[&ElementModP],
) -> Option<ElementModP> {
    let product = shares
        .iter()
        .fold(ElementModP::one(), |product, share| product.mul(share));
    Some(ct.data.mul(&product.inv()?))
}
