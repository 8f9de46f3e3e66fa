//! Schnorr proofs of knowledge of a coefficient and generic Chaum–Pedersen proofs of a partial
//! decryption, as the reference's schnorr.py and chaum_pedersen.py make and check them.

use serde::{Deserialize, Serialize};

use crate::constants::Q;
use crate::elgamal::ElGamalCiphertext;
use crate::exp::{self, Mont, SquareChain};
use crate::group::{ElementModP, ElementModQ, SecretModQ};
use crate::hash::{Hashable, hash_elems, nonce};

/// The header the reference's `make_chaum_pedersen` derives its nonce with.
const CHAUM_PEDERSEN_NONCE_HEADER: &str = "constant-chaum-pedersen-proof";

/// The reference's serialized `ProofUsage.SecretValue`.
pub const SECRET_VALUE_USAGE: &str = "Prove knowledge of secret value";

fn secret_value_usage() -> String {
    SECRET_VALUE_USAGE.to_owned()
}

/// A Schnorr proof that the prover knows the secret behind `public_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchnorrProof {
    /// K = g^s.
    pub public_key: ElementModP,
    /// h = g^r.
    pub commitment: ElementModP,
    /// c = H(K, h).
    pub challenge: ElementModQ,
    /// u = r + c·s mod q.
    pub response: ElementModQ,
    /// The reference's usage text.
    #[serde(default = "secret_value_usage")]
    pub usage: String,
}

impl SchnorrProof {
    /// Proves knowledge of `secret` with a fresh random nonce.
    pub fn make(secret: &SecretModQ, public_key: &ElementModP) -> Self {
        Self::make_with_nonce(secret, public_key, &SecretModQ::random())
    }

    /// The reference's `make_schnorr_proof` with a given nonce r.
    pub fn make_with_nonce(secret: &SecretModQ, public_key: &ElementModP, r: &SecretModQ) -> Self {
        let commitment = r.g_pow();
        let challenge = hash_elems(&[Hashable::P(public_key), Hashable::P(&commitment)]);
        let response = secret.response(r, &challenge);
        SchnorrProof {
            public_key: public_key.clone(),
            commitment,
            challenge,
            response,
            usage: secret_value_usage(),
        }
    }

    /// The reference's `is_valid`: K in the subgroup, the challenge recomputed and
    /// g^u = h·K^c.
    pub fn is_valid(&self) -> bool {
        let Some(key) = KeyChain::new(&self.public_key) else {
            return false;
        };
        let challenge = hash_elems(&[Hashable::P(&self.public_key), Hashable::P(&self.commitment)]);
        if challenge != self.challenge || !self.response.is_in_bounds() {
            return false;
        }
        let lhs = exp::g_pow_vartime(&self.response.0);
        let rhs = self.commitment.to_mont().mul(&key.pow(&self.challenge));
        lhs == rhs
    }
}

/// A Chaum–Pedersen proof that log_g K = log_α M.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChaumPedersenProof {
    /// a = g^u.
    pub pad: ElementModP,
    /// b = α^u.
    pub data: ElementModP,
    /// c = H(Q', α, β, a, b, M).
    pub challenge: ElementModQ,
    /// v = u + c·s mod q.
    pub response: ElementModQ,
    /// The reference's usage text.
    #[serde(default = "secret_value_usage")]
    pub usage: String,
}

impl ChaumPedersenProof {
    /// The reference's `make_chaum_pedersen`: u = Nonces(seed, "constant-chaum-pedersen-proof")[0].
    pub fn make(
        ct: &ElGamalCiphertext,
        secret: &SecretModQ,
        m: &ElementModP,
        seed: &ElementModQ,
        hash_header: &ElementModQ,
    ) -> Self {
        let u = SecretModQ::from_element(&nonce(seed, CHAUM_PEDERSEN_NONCE_HEADER, 0));
        let pad = u.g_pow();
        let data = ElementModP::from_mont(&exp::pow_ct(&ct.pad.to_mont(), &u.0));
        Self::finish(ct, secret, m, &u, pad, data, hash_header)
    }

    /// M = α^s together with its proof, the two powers of α sharing one comb table; `None`
    /// when α is not in the order-q subgroup (checked before the secret is used).
    pub(crate) fn make_with_partial(
        ct: &ElGamalCiphertext,
        secret: &SecretModQ,
        seed: &ElementModQ,
        hash_header: &ElementModQ,
    ) -> Option<(ElementModP, Self)> {
        let u = SecretModQ::from_element(&nonce(seed, CHAUM_PEDERSEN_NONCE_HEADER, 0));
        let (m, b) = exp::pow_pair_ct(&ct.pad.to_mont(), &secret.0, &u.0)?;
        let m = ElementModP::from_mont(&m);
        let pad = u.g_pow();
        let proof = Self::finish(
            ct,
            secret,
            &m,
            &u,
            pad,
            ElementModP::from_mont(&b),
            hash_header,
        );
        Some((m, proof))
    }

    /// c = H(Q', α, β, a, b, M) and v = u + c·s.
    fn finish(
        ct: &ElGamalCiphertext,
        secret: &SecretModQ,
        m: &ElementModP,
        u: &SecretModQ,
        pad: ElementModP,
        data: ElementModP,
        hash_header: &ElementModQ,
    ) -> Self {
        let challenge = hash_elems(&[
            Hashable::Q(hash_header),
            Hashable::P(&ct.pad),
            Hashable::P(&ct.data),
            Hashable::P(&pad),
            Hashable::P(&data),
            Hashable::P(m),
        ]);
        let response = secret.response(u, &challenge);
        ChaumPedersenProof {
            pad,
            data,
            challenge,
            response,
            usage: secret_value_usage(),
        }
    }

    /// The reference's `is_valid`: every value in range and in the subgroup, the challenge
    /// recomputed, g^v = a·K^c and α^v = b·M^c.
    pub fn is_valid(
        &self,
        ct: &ElGamalCiphertext,
        k: &ElementModP,
        m: &ElementModP,
        extended_base_hash: &ElementModQ,
    ) -> bool {
        match KeyChain::new(k) {
            Some(key) => self.is_valid_with_key(ct, &key, m, extended_base_hash),
            None => false,
        }
    }

    /// [`ChaumPedersenProof::is_valid`] with the key's residue check and squarings done once.
    ///
    /// Equivalent to the reference: α, β, K and M are checked to be in the subgroup and c, v,
    /// Q' to be below q (a, b are below p by type). The reference's subgroup checks of a and b
    /// follow from the two equations once K, α and M are in the subgroup
    /// (a = g^v·K^−c, b = α^v·M^−c), so they are not repeated.
    pub(crate) fn is_valid_with_key(
        &self,
        ct: &ElGamalCiphertext,
        key: &KeyChain,
        m: &ElementModP,
        extended_base_hash: &ElementModQ,
    ) -> bool {
        match CiphertextChain::new(ct) {
            Some(chain) => self.is_valid_prepared(&chain, key, m, extended_base_hash),
            None => false,
        }
    }

    /// [`ChaumPedersenProof::is_valid_with_key`] with the ciphertext's subgroup checks done once
    /// for every guardian's share of it.
    pub(crate) fn is_valid_prepared(
        &self,
        ct: &CiphertextChain<'_>,
        key: &KeyChain,
        m: &ElementModP,
        extended_base_hash: &ElementModQ,
    ) -> bool {
        if !self.holds_for_key(ct.ciphertext, key, m, extended_base_hash) {
            return false;
        }
        let Some(m_chain) = KeyChain::new(m) else {
            return false;
        };
        ct.alpha.pow(&self.response) == self.data.to_mont().mul(&m_chain.pow(&self.challenge))
    }

    /// [`ChaumPedersenProof::is_valid_with_key`] when α, β and M are already known to be members
    /// (checked with their batch): α^v·M^(q−c) = b, which is α^v = b·M^c for a member M, with
    /// the squarings of α and M shared.
    pub(crate) fn is_valid_for_members(
        &self,
        ct: &ElGamalCiphertext,
        key: &KeyChain,
        m: &ElementModP,
        extended_base_hash: &ElementModQ,
    ) -> bool {
        if !self.holds_for_key(ct, key, m, extended_base_hash) {
            return false;
        }
        let minus_c = Q.wrapping_sub(&self.challenge.0);
        exp::pow2_vartime(&ct.pad.to_mont(), &self.response.0, &m.to_mont(), &minus_c)
            == self.data.to_mont()
    }

    /// The first half of a check: c and v below q, the challenge recomputed, and g^v = a·K^c.
    fn holds_for_key(
        &self,
        ct: &ElGamalCiphertext,
        key: &KeyChain,
        m: &ElementModP,
        extended_base_hash: &ElementModQ,
    ) -> bool {
        if !self.challenge.is_in_bounds()
            || !self.response.is_in_bounds()
            || !extended_base_hash.is_in_bounds()
        {
            return false;
        }
        let challenge = hash_elems(&[
            Hashable::Q(extended_base_hash),
            Hashable::P(&ct.pad),
            Hashable::P(&ct.data),
            Hashable::P(&self.pad),
            Hashable::P(&self.data),
            Hashable::P(m),
        ]);
        challenge == self.challenge
            && exp::g_pow_vartime(&self.response.0)
                == self.pad.to_mont().mul(&key.pow(&self.challenge))
    }
}

/// A ciphertext whose α and β are known to be in the order-q subgroup, with α's squarings kept.
pub(crate) struct CiphertextChain<'a> {
    ciphertext: &'a ElGamalCiphertext,
    alpha: KeyChain,
}

impl<'a> CiphertextChain<'a> {
    /// `None` unless both α and β are non-zero members of the order-q subgroup.
    pub(crate) fn new(ciphertext: &'a ElGamalCiphertext) -> Option<Self> {
        KeyChain::new(&ciphertext.data)?;
        Self::of_member_data(ciphertext)
    }

    /// As [`CiphertextChain::new`] for a ciphertext whose β is already known to be a member
    /// (checked with its batch): `None` unless α is a non-zero member.
    pub(crate) fn of_member_data(ciphertext: &'a ElGamalCiphertext) -> Option<Self> {
        let alpha = KeyChain::new(&ciphertext.pad)?;
        Some(CiphertextChain { ciphertext, alpha })
    }
}

/// A public value known to be in the order-q subgroup, with the squarings that checked it kept
/// for its public powers.
pub(crate) struct KeyChain {
    chain: SquareChain,
}

impl KeyChain {
    /// `None` unless the value is a non-zero member of the order-q subgroup.
    pub(crate) fn new(value: &ElementModP) -> Option<Self> {
        if value.0 == crypto_bigint::U4096::ZERO {
            return None;
        }
        let chain = SquareChain::new(&value.to_mont());
        chain.is_residue().then_some(KeyChain { chain })
    }

    /// value^e for a public e.
    pub(crate) fn pow(&self, exponent: &ElementModQ) -> Mont {
        self.chain.pow_vartime(&exponent.0)
    }
}
