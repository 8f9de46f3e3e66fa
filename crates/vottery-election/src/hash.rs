//! `hash_elems`: SHA-256 over `|`-framed text, reduced mod q, exactly as the reference's hash.py.

use crypto_bigint::U256;
use sha2::{Digest, Sha256};

use crate::group::{ElementModP, ElementModQ};

/// One input of [`hash_elems`].
#[derive(Debug, Clone)]
pub enum Hashable<'a> {
    /// Hashed as its hex form.
    P(&'a ElementModP),
    /// Hashed as its hex form.
    Q(&'a ElementModQ),
    /// Hashed as the text itself.
    Str(&'a str),
    /// Hashed as its decimal digits.
    Int(u64),
    /// Hashed as the hex of `hash_elems` over its items; an empty sequence is `null`.
    Seq(Vec<Hashable<'a>>),
    /// Python's `None`: hashed as `null`.
    Null,
}

/// The reference's `hash_elems(*items)`.
pub fn hash_elems(items: &[Hashable<'_>]) -> ElementModQ {
    let mut hasher = Sha256::new();
    hasher.update(b"|");
    for item in items {
        match item {
            Hashable::P(element) => hasher.update(element.to_hex().as_bytes()),
            Hashable::Q(element) => hasher.update(element.to_hex().as_bytes()),
            Hashable::Str(text) => hasher.update(text.as_bytes()),
            Hashable::Int(value) => hasher.update(value.to_string().as_bytes()),
            Hashable::Seq(inner) if inner.is_empty() => hasher.update(b"null"),
            Hashable::Seq(inner) => hasher.update(hash_elems(inner).to_hex().as_bytes()),
            Hashable::Null => hasher.update(b"null"),
        }
        hasher.update(b"|");
    }
    let digest: [u8; 32] = hasher.finalize().into();
    ElementModQ::reduce(U256::from_be_slice(&digest))
}

/// The reference's `Nonces(seed, *headers)[index]`: hash_elems(hash_elems(seed, *headers), index).
pub(crate) fn nonce(seed: &ElementModQ, header: &str, index: u64) -> ElementModQ {
    let sequence_seed = hash_elems(&[Hashable::Q(seed), Hashable::Str(header)]);
    hash_elems(&[Hashable::Q(&sequence_seed), Hashable::Int(index)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_sequence_and_none_hash_alike() {
        assert_eq!(
            hash_elems(&[Hashable::Seq(vec![])]),
            hash_elems(&[Hashable::Null])
        );
        assert_ne!(hash_elems(&[Hashable::Null]), hash_elems(&[]));
    }

    #[test]
    fn a_sequence_hashes_as_the_hex_of_its_own_hash() {
        let one = ElementModQ::one();
        let inner = hash_elems(&[Hashable::Q(&one), Hashable::Int(2)]);
        let inner_hex = inner.to_hex();
        assert_eq!(
            hash_elems(&[Hashable::Seq(vec![Hashable::Q(&one), Hashable::Int(2)])]),
            hash_elems(&[Hashable::Str(&inner_hex)])
        );
    }
}
