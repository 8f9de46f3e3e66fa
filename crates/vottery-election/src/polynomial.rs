//! A guardian's secret polynomial, its coordinates and their checks against the public
//! commitments, and Lagrange coefficients, as the reference's election_polynomial.py.

use zeroize::Zeroizing;

use crate::exp::{self, Mont};
use crate::group::{ElementModP, ElementModQ, GroupError, P_BYTES, Q_BYTES, SecretModQ};
use crate::hash::{Hashable, hash_elems};
use crate::proofs::SchnorrProof;

/// First byte of [`ElectionPolynomial::to_secret_bytes`].
const SECRET_FORMAT_VERSION: u8 = 1;
/// Bytes per coefficient in the secret encoding: value, proof commitment, challenge, response.
const COEFFICIENT_BYTES: usize = Q_BYTES + P_BYTES + Q_BYTES + Q_BYTES;
/// The most coefficients the secret encoding accepts.
const MAX_COEFFICIENTS: usize = 256;

/// One coefficient: the secret value, its commitment g^value and a Schnorr proof of it.
#[derive(Clone)]
pub(crate) struct Coefficient {
    pub(crate) value: SecretModQ,
    pub(crate) commitment: ElementModP,
    pub(crate) proof: SchnorrProof,
}

/// A guardian's secret polynomial of degree quorum − 1. The coefficients are wiped on drop;
/// nothing here prints or serializes them except [`ElectionPolynomial::to_secret_bytes`].
#[derive(Clone)]
pub struct ElectionPolynomial {
    pub(crate) coefficients: Vec<Coefficient>,
}

impl std::fmt::Debug for ElectionPolynomial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElectionPolynomial")
            .field("quorum", &self.coefficients.len())
            .finish_non_exhaustive()
    }
}

impl ElectionPolynomial {
    /// A fresh random polynomial with `quorum` coefficients (at least one), each with its
    /// commitment and proof.
    pub fn generate(quorum: u32) -> Self {
        Self::from_values((0..quorum.max(1)).map(|_| SecretModQ::random()))
    }

    fn from_values(values: impl Iterator<Item = SecretModQ>) -> Self {
        let coefficients = values
            .map(|value| {
                let commitment = value.g_pow();
                let proof = SchnorrProof::make(&value, &commitment);
                Coefficient {
                    value,
                    commitment,
                    proof,
                }
            })
            .collect();
        ElectionPolynomial { coefficients }
    }

    /// The reference's `generate_polynomial(quorum, nonce)`: coefficient i is nonce + i. For
    /// tests and known answers only.
    pub fn generate_with_nonce(quorum: u32, nonce: &ElementModQ) -> Self {
        let start = SecretModQ::from_element(nonce);
        Self::from_values((0..quorum.max(1)).map(|i| {
            start.add(&SecretModQ::from_element(&ElementModQ::from_u64(
                u64::from(i),
            )))
        }))
    }

    /// The secret encoding for storage under the barrier: the coefficients and their proofs.
    ///
    /// Layout: a version byte (1), the number of coefficients (u16, big endian), then per
    /// coefficient its value (32 bytes), its proof's commitment (512), challenge (32) and
    /// response (32), all big endian.
    pub fn to_secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(
            3 + self.coefficients.len() * COEFFICIENT_BYTES,
        ));
        out.push(SECRET_FORMAT_VERSION);
        out.extend_from_slice(&(self.coefficients.len() as u16).to_be_bytes());
        for coefficient in &self.coefficients {
            out.extend_from_slice(coefficient.value.to_be_bytes().as_ref());
            out.extend_from_slice(&crate::group::be_bytes_4096(
                &coefficient.proof.commitment.0,
            ));
            out.extend_from_slice(&coefficient.proof.challenge.to_be_bytes());
            out.extend_from_slice(&coefficient.proof.response.to_be_bytes());
        }
        out
    }

    /// Reads [`ElectionPolynomial::to_secret_bytes`]; recomputes the commitments.
    /// Each proof's challenge must still be H(commitment, proof commitment).
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, GroupError> {
        let (header, body) = bytes.split_at_checked(3).ok_or(GroupError::Malformed)?;
        let count = usize::from(u16::from_be_bytes([header[1], header[2]]));
        if header[0] != SECRET_FORMAT_VERSION
            || count == 0
            || count > MAX_COEFFICIENTS
            || body.len() != count * COEFFICIENT_BYTES
        {
            return Err(GroupError::Malformed);
        }
        let mut coefficients = Vec::with_capacity(count);
        for chunk in body.chunks_exact(COEFFICIENT_BYTES) {
            let (value, rest) = chunk.split_at(Q_BYTES);
            let (proof_commitment, rest) = rest.split_at(P_BYTES);
            let (challenge, response) = rest.split_at(Q_BYTES);
            let value = SecretModQ::from_be_bytes(&to_array(value)?)?;
            let commitment = value.g_pow();
            let proof = SchnorrProof {
                public_key: commitment.clone(),
                commitment: ElementModP::from_be_bytes(proof_commitment)?,
                challenge: ElementModQ::from_be_bytes(&to_array(challenge)?)?,
                response: ElementModQ::from_be_bytes(&to_array(response)?)?,
                usage: crate::proofs::SECRET_VALUE_USAGE.to_owned(),
            };
            let expected = hash_elems(&[
                Hashable::P(&proof.public_key),
                Hashable::P(&proof.commitment),
            ]);
            if expected != proof.challenge {
                return Err(GroupError::Malformed);
            }
            coefficients.push(Coefficient {
                value,
                commitment,
                proof,
            });
        }
        Ok(ElectionPolynomial { coefficients })
    }

    /// The constant coefficient: the guardian's election secret key.
    pub fn secret_key(&self) -> &SecretModQ {
        &self.coefficients[0].value
    }

    /// The guardian's election public key, g^secret_key.
    pub fn public_key(&self) -> ElementModP {
        self.coefficients[0].commitment.clone()
    }

    /// The number of coefficients (the quorum).
    pub fn quorum(&self) -> u32 {
        self.coefficients.len() as u32
    }

    /// The coefficient commitments, constant first.
    pub fn commitments(&self) -> Vec<ElementModP> {
        self.coefficients
            .iter()
            .map(|c| c.commitment.clone())
            .collect()
    }

    /// The Schnorr proofs of the coefficients, constant first.
    pub fn proofs(&self) -> Vec<SchnorrProof> {
        self.coefficients.iter().map(|c| c.proof.clone()).collect()
    }
}

/// The reference's `compute_polynomial_coordinate`: P(sequence_order) mod q.
pub fn compute_polynomial_coordinate(sequence_order: u32, poly: &ElectionPolynomial) -> SecretModQ {
    let x = ElementModQ::from_u64(u64::from(sequence_order));
    let mut power = ElementModQ::one();
    let mut sum = SecretModQ::from_element(&ElementModQ::zero());
    for coefficient in &poly.coefficients {
        sum = sum.add(&coefficient.value.mul_public(&power));
        power = power.mul(&x);
    }
    sum
}

/// ∏ K_j^(ℓ^j) mod p: the public image of P(ℓ) (ℓ^j reduced mod q, the same number for
/// the sequence orders and quorums a ceremony has).
pub(crate) fn commitment_product(sequence_order: u32, commitments: &[ElementModP]) -> ElementModP {
    let x = ElementModQ::from_u64(u64::from(sequence_order));
    let mut power = ElementModQ::one();
    let mut product: Option<Mont> = None;
    for commitment in commitments {
        let term = exp::pow_vartime(&commitment.to_mont(), &power.0);
        product = Some(match product {
            Some(value) => value.mul(&term),
            None => term,
        });
        power = power.mul(&x);
    }
    product.map_or_else(ElementModP::one, |value| ElementModP::from_mont(&value))
}

fn to_array(bytes: &[u8]) -> Result<[u8; 32], GroupError> {
    bytes.try_into().map_err(|_| GroupError::Malformed)
}

/// The reference's `verify_polynomial_coordinate`: g^coordinate = ∏ K_j^(ℓ^j).
pub fn verify_polynomial_coordinate(
    coordinate: &SecretModQ,
    sequence_order: u32,
    commitments: &[ElementModP],
) -> bool {
    coordinate.g_pow() == commitment_product(sequence_order, commitments)
}

/// The reference's `compute_lagrange_coefficient(coordinate, *degrees)`:
/// ∏ d / ∏ (d − coordinate) mod q. `None` when a degree equals the coordinate (the reference
/// raises a division by zero).
pub fn compute_lagrange_coefficient(coordinate: u32, degrees: &[u32]) -> Option<ElementModQ> {
    let coordinate = ElementModQ::from_u64(u64::from(coordinate));
    let mut numerator = ElementModQ::one();
    let mut denominator = ElementModQ::one();
    for degree in degrees {
        let degree = ElementModQ::from_u64(u64::from(*degree));
        numerator = numerator.mul(&degree);
        denominator = denominator.mul(&degree.sub(&coordinate));
    }
    Some(numerator.mul(&denominator.inv()?))
}
