//! The ElectionGuard 1.0 group: integers mod the 4096-bit prime p, exponents mod the 256-bit
//! prime q, the generator g, and secrets mod q that wipe themselves.

use std::fmt;
use std::sync::LazyLock;

use crypto_bigint::modular::{MontyForm, MontyParams};
use crypto_bigint::{U256, U4096};
use rand::RngCore;
use rand::rngs::OsRng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::constants::{G, P, Q, Q_COMPLEMENT, Q_ODD};
use crate::exp::{self, GROUP, Mont, SquareChain};

/// Bytes of an element mod p.
pub(crate) const P_BYTES: usize = 512;
/// Bytes of an element mod q.
pub(crate) const Q_BYTES: usize = 32;

/// Why a value is not an element of the group.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// The text is not hexadecimal digits.
    #[error("not a hexadecimal number")]
    NotHex,
    /// The number is not below the modulus (p or q).
    #[error("the number is not below the modulus")]
    OutOfRange,
    /// The number is below p but not in the order-q subgroup.
    #[error("the number is not in the order-q subgroup of the integers mod p")]
    NotAResidue,
    /// A byte encoding has the wrong length or layout.
    #[error("the encoding has the wrong length or layout")]
    Malformed,
}

/// An integer in [0, p). Serialized as the reference does: upper-case hex of even length.
/// Parsing checks the range only; membership of the order-q subgroup is checked by
/// [`ElementModP::is_valid_residue`] / [`ElementModP::from_hex_residue`] and by every proof check.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ElementModP(pub(crate) U4096);

/// An integer in [0, q). Serialized as upper-case hex of even length.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ElementModQ(pub(crate) U256);

/// A secret integer in [0, q): wiped on drop, never printed, never serialized except through
/// [`SecretModQ::to_be_bytes`] for storage under the barrier.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretModQ(pub(crate) U256);

/// Montgomery parameters for inverses mod q.
static Q_PARAMS: LazyLock<MontyParams<{ U256::LIMBS }>> =
    LazyLock::new(|| MontyParams::new_vartime(Q_ODD));

/// Reads the reference's hex form into `N` big-endian bytes: digits of either case, an odd
/// length only with a leading `0` (as its `_hex_to_int`), leading zeros allowed. An empty text
/// is refused (the reference would read it as 0).
fn parse_hex<const N: usize>(text: &str) -> Result<[u8; N], GroupError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(GroupError::NotHex);
    }
    if text.len() % 2 == 1 && !text.starts_with('0') {
        return Err(GroupError::NotHex);
    }
    let significant = text.trim_start_matches('0').as_bytes();
    if significant.len() > 2 * N {
        return Err(GroupError::OutOfRange);
    }
    let mut out = [0u8; N];
    for (i, digit) in significant.iter().rev().enumerate() {
        let value = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => digit - b'A' + 10,
        };
        out[N - 1 - i / 2] |= value << (4 * (i % 2));
    }
    Ok(out)
}

/// The reference's hex form of big-endian bytes: upper case, leading zero bytes dropped,
/// "00" for zero.
pub(crate) fn hex_of(bytes: &[u8]) -> String {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    if first == bytes.len() {
        return "00".to_owned();
    }
    hex::encode_upper(&bytes[first..])
}

/// Big-endian bytes of an element mod p.
pub(crate) fn be_bytes_4096(value: &U4096) -> Vec<u8> {
    let mut out = Vec::with_capacity(P_BYTES);
    for word in value.as_words().iter().rev() {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out
}

impl ElementModP {
    /// Parses the reference's hex form (either case; an odd length needs a leading `0`).
    pub fn from_hex(hex: &str) -> Result<Self, GroupError> {
        let bytes = parse_hex::<P_BYTES>(hex)?;
        let value = U4096::from_be_slice(&bytes);
        if value >= P {
            return Err(GroupError::OutOfRange);
        }
        Ok(ElementModP(value))
    }

    /// Reads big-endian bytes (at most 512); refuses a value not below p.
    pub fn from_be_bytes(bytes: &[u8]) -> Result<Self, GroupError> {
        if bytes.len() > P_BYTES {
            return Err(GroupError::Malformed);
        }
        let mut padded = [0u8; P_BYTES];
        padded[P_BYTES - bytes.len()..].copy_from_slice(bytes);
        let value = U4096::from_be_slice(&padded);
        if value >= P {
            return Err(GroupError::OutOfRange);
        }
        Ok(ElementModP(value))
    }

    /// Parses the hex form and requires the order-q subgroup.
    pub fn from_hex_residue(hex: &str) -> Result<Self, GroupError> {
        let element = Self::from_hex(hex)?;
        if !element.is_valid_residue() {
            return Err(GroupError::NotAResidue);
        }
        Ok(element)
    }

    /// The reference's hex form: upper case, padded to an even number of digits.
    pub fn to_hex(&self) -> String {
        hex_of(&be_bytes_4096(&self.0))
    }

    /// The reference's `to_hex_bytes`: the big-endian bytes of the hex form.
    pub(crate) fn hex_bytes(&self) -> Vec<u8> {
        let bytes = be_bytes_4096(&self.0);
        let first = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        bytes[first..].to_vec()
    }

    /// Whether the element is in the order-q subgroup (x^q = 1 mod p), as the reference checks.
    pub fn is_valid_residue(&self) -> bool {
        self.0 != U4096::ZERO && SquareChain::new(&self.to_mont()).is_residue()
    }

    /// The number 1.
    pub fn one() -> Self {
        ElementModP(U4096::ONE)
    }

    /// The generator g.
    pub fn generator() -> Self {
        ElementModP(G)
    }

    /// The product mod p.
    pub fn mul(&self, other: &Self) -> Self {
        Self::from_mont(&self.to_mont().mul(&other.to_mont()))
    }

    /// The inverse mod p; `None` for zero.
    pub fn inv(&self) -> Option<Self> {
        let inverse: Option<Mont> = self.to_mont().inv().into();
        inverse.map(|value| Self::from_mont(&value))
    }

    /// self^e mod p for a public exponent (variable time).
    pub fn pow(&self, exponent: &ElementModQ) -> Self {
        Self::from_mont(&exp::pow_vartime(&self.to_mont(), &exponent.0))
    }

    /// In Montgomery form.
    pub(crate) fn to_mont(&self) -> Mont {
        MontyForm::new(&self.0, GROUP.params)
    }

    /// Out of Montgomery form.
    pub(crate) fn from_mont(value: &Mont) -> Self {
        ElementModP(value.retrieve())
    }
}

impl ElementModQ {
    /// Parses the reference's hex form (either case; an odd length needs a leading `0`).
    pub fn from_hex(hex: &str) -> Result<Self, GroupError> {
        let bytes = parse_hex::<Q_BYTES>(hex)?;
        Self::from_be_bytes(&bytes)
    }

    /// Reads 32 big-endian bytes; refuses a value not below q.
    pub fn from_be_bytes(bytes: &[u8; 32]) -> Result<Self, GroupError> {
        let value = U256::from_be_slice(bytes);
        if value >= Q {
            return Err(GroupError::OutOfRange);
        }
        Ok(ElementModQ(value))
    }

    /// The 32 big-endian bytes.
    pub fn to_be_bytes(&self) -> [u8; 32] {
        exp::be_bytes_256(&self.0)
    }

    /// The reference's hex form: upper case, padded to an even number of digits.
    pub fn to_hex(&self) -> String {
        hex_of(&self.to_be_bytes())
    }

    /// The reference's `to_hex_bytes`: the big-endian bytes of the hex form.
    pub(crate) fn hex_bytes(&self) -> Vec<u8> {
        let bytes = self.to_be_bytes();
        let first = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        bytes[first..].to_vec()
    }

    /// A 256-bit value reduced mod q (one subtraction suffices since 2^256 < 2q).
    pub(crate) fn reduce(value: U256) -> Self {
        if value >= Q {
            ElementModQ(value.wrapping_sub(&Q))
        } else {
            ElementModQ(value)
        }
    }

    /// A small integer (always below q).
    pub fn from_u64(value: u64) -> Self {
        ElementModQ(U256::from_u64(value))
    }

    /// The number 0.
    pub fn zero() -> Self {
        ElementModQ(U256::ZERO)
    }

    /// The number 1.
    pub fn one() -> Self {
        ElementModQ(U256::ONE)
    }

    /// The sum mod q.
    pub fn add(&self, other: &Self) -> Self {
        ElementModQ(self.0.add_mod_special(&other.0, Q_COMPLEMENT))
    }

    /// The difference mod q.
    pub fn sub(&self, other: &Self) -> Self {
        ElementModQ(self.0.sub_mod_special(&other.0, Q_COMPLEMENT))
    }

    /// The product mod q.
    pub fn mul(&self, other: &Self) -> Self {
        ElementModQ(self.0.mul_mod_special(&other.0, Q_COMPLEMENT))
    }

    /// The negation mod q.
    pub fn neg(&self) -> Self {
        ElementModQ(self.0.neg_mod_special(Q_COMPLEMENT))
    }

    /// The inverse mod q; `None` for zero.
    pub fn inv(&self) -> Option<Self> {
        let inverse: Option<MontyForm<{ U256::LIMBS }>> =
            MontyForm::new(&self.0, *Q_PARAMS).inv().into();
        inverse.map(|value| ElementModQ(value.retrieve()))
    }

    /// Whether the value is in [0, q); always true for a value built by this crate.
    pub fn is_in_bounds(&self) -> bool {
        self.0 < Q
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.0 == U256::ZERO
    }
}

impl SecretModQ {
    /// A uniformly random secret in [0, q) from the operating system's generator.
    pub fn random() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        loop {
            OsRng.fill_bytes(bytes.as_mut());
            let value = U256::from_be_slice(bytes.as_ref());
            // q = 2^256 − 189: a redraw happens with probability 2^-248.
            if value < Q {
                return SecretModQ(value);
            }
        }
    }

    /// The 32 big-endian bytes of the secret, for storage under the barrier.
    pub fn to_be_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(exp::be_bytes_256(&self.0))
    }

    /// Reads 32 big-endian bytes; refuses a value not below q.
    pub fn from_be_bytes(bytes: &[u8; 32]) -> Result<Self, GroupError> {
        let value = SecretModQ(U256::from_be_slice(bytes));
        if value.0 >= Q {
            return Err(GroupError::OutOfRange);
        }
        Ok(value)
    }

    /// Parses the reference's hex form of a secret (a decrypted backup's coordinate).
    pub(crate) fn from_hex(hex: &str) -> Result<Self, GroupError> {
        let bytes = Zeroizing::new(parse_hex::<Q_BYTES>(hex)?);
        Self::from_be_bytes(&bytes)
    }

    /// Treats a public value as a secret (a polynomial coordinate revealed in a challenge).
    pub fn from_element(value: &ElementModQ) -> Self {
        SecretModQ(value.0)
    }

    /// g^secret mod p, in constant time.
    pub fn g_pow(&self) -> ElementModP {
        ElementModP::from_mont(&exp::g_pow_ct(&self.0))
    }

    /// (a + b·self) mod q in constant time: a proof's response.
    pub(crate) fn response(&self, a: &SecretModQ, b: &ElementModQ) -> ElementModQ {
        let product = SecretModQ(self.0.mul_mod_special(&b.0, Q_COMPLEMENT));
        ElementModQ(a.0.add_mod_special(&product.0, Q_COMPLEMENT))
    }

    /// (self + other) mod q in constant time.
    pub(crate) fn add(&self, other: &SecretModQ) -> SecretModQ {
        SecretModQ(self.0.add_mod_special(&other.0, Q_COMPLEMENT))
    }

    /// (self · factor) mod q in constant time.
    pub(crate) fn mul_public(&self, factor: &ElementModQ) -> SecretModQ {
        SecretModQ(self.0.mul_mod_special(&factor.0, Q_COMPLEMENT))
    }
}

/// g^e mod p through the fixed-base table.
pub fn g_pow_p(e: &ElementModQ) -> ElementModP {
    ElementModP::from_mont(&exp::g_pow_vartime(&e.0))
}

/// A uniformly random element of [0, q).
pub fn rand_q() -> ElementModQ {
    ElementModQ(SecretModQ::random().0)
}

impl fmt::Debug for ElementModP {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ElementModP({})", self.to_hex())
    }
}

impl fmt::Debug for ElementModQ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ElementModQ({})", self.to_hex())
    }
}

impl fmt::Debug for SecretModQ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretModQ(..)")
    }
}

impl Serialize for ElementModP {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ElementModP {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ElementModP::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for ElementModQ {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ElementModQ {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ElementModQ::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_upper_case_and_of_even_length_as_the_reference_writes_it() {
        assert_eq!(ElementModQ::zero().to_hex(), "00");
        assert_eq!(ElementModQ::from_u64(5).to_hex(), "05");
        assert_eq!(ElementModQ::from_u64(0x123).to_hex(), "0123");
        assert_eq!(ElementModQ::from_u64(0xabcd).to_hex(), "ABCD");
        assert_eq!(ElementModP::one().to_hex(), "01");
    }

    #[test]
    fn hex_is_read_as_the_reference_reads_it() {
        assert_eq!(
            ElementModQ::from_hex("0123").unwrap(),
            ElementModQ::from_u64(0x123)
        );
        assert_eq!(ElementModQ::from_hex("123"), Err(GroupError::NotHex));
        assert_eq!(
            ElementModQ::from_hex("0abc").unwrap(),
            ElementModQ::from_u64(0xabc)
        );
        assert_eq!(
            ElementModQ::from_hex("00000005").unwrap(),
            ElementModQ::from_u64(5)
        );
        assert_eq!(ElementModQ::from_hex(""), Err(GroupError::NotHex));
        assert_eq!(ElementModQ::from_hex("0x12"), Err(GroupError::NotHex));
        assert_eq!(ElementModQ::from_hex(" 12"), Err(GroupError::NotHex));
        let q_hex = hex_of(&exp::be_bytes_256(&Q));
        assert_eq!(ElementModQ::from_hex(&q_hex), Err(GroupError::OutOfRange));
        let below_q = hex_of(&exp::be_bytes_256(&Q.wrapping_sub(&U256::ONE)));
        assert!(ElementModQ::from_hex(&below_q).is_ok());
        assert_eq!(
            ElementModQ::from_hex(&"1".repeat(66)),
            Err(GroupError::OutOfRange)
        );
        let p_hex = hex_of(&be_bytes_4096(&P));
        assert_eq!(ElementModP::from_hex(&p_hex), Err(GroupError::OutOfRange));
        let g = ElementModP::generator();
        assert_eq!(ElementModP::from_hex(&g.to_hex()).unwrap(), g);
        assert_eq!(
            ElementModP::from_hex(&g.to_hex().to_lowercase()).unwrap(),
            g
        );
    }

    #[test]
    fn residues_are_told_from_other_numbers_below_p() {
        assert!(ElementModP::generator().is_valid_residue());
        assert!(ElementModP::one().is_valid_residue());
        assert!(!ElementModP(U4096::ZERO).is_valid_residue());
        let minus_one = ElementModP(P.wrapping_sub(&U4096::ONE));
        assert!(!minus_one.is_valid_residue());
        assert_eq!(
            ElementModP::from_hex_residue(&minus_one.to_hex()),
            Err(GroupError::NotAResidue)
        );
    }

    #[test]
    fn arithmetic_mod_q_wraps_at_q() {
        let minus_one = ElementModQ(Q.wrapping_sub(&U256::ONE));
        assert_eq!(minus_one.add(&ElementModQ::one()), ElementModQ::zero());
        assert_eq!(ElementModQ::zero().sub(&ElementModQ::one()), minus_one);
        assert_eq!(ElementModQ::one().neg(), minus_one);
        assert_eq!(minus_one.mul(&minus_one), ElementModQ::one());
        assert_eq!(ElementModQ::zero().inv(), None);
        for _ in 0..50 {
            let a = rand_q();
            let b = rand_q();
            let inverse = a.inv().unwrap();
            assert_eq!(a.mul(&inverse), ElementModQ::one());
            let wide = a.0.mul_mod_vartime(&b.0, Q_ODD.as_nz_ref());
            assert_eq!(a.mul(&b).0, wide);
            assert!(a.add(&b).is_in_bounds());
            assert_eq!(a.add(&b).sub(&b), a);
        }
    }

    #[test]
    fn inverses_mod_p_multiply_to_one() {
        let g = ElementModP::generator();
        assert_eq!(g.mul(&g.inv().unwrap()), ElementModP::one());
        assert_eq!(ElementModP(U4096::ZERO).inv(), None);
    }

    #[test]
    fn secrets_round_trip_through_their_bytes_and_do_not_print() {
        let secret = SecretModQ::random();
        let bytes = secret.to_be_bytes();
        let back = SecretModQ::from_be_bytes(&bytes).unwrap();
        assert_eq!(back.0, secret.0);
        assert_eq!(format!("{secret:?}"), "SecretModQ(..)");
        assert_eq!(
            SecretModQ::from_be_bytes(&[0xff; 32]).err(),
            Some(GroupError::OutOfRange)
        );
        let e = ElementModQ(secret.0);
        assert_eq!(secret.g_pow(), g_pow_p(&e));
    }
}
