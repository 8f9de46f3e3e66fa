//! HMACs under a version's HMAC key: ring for SHA-2 256/384/512, RustCrypto for the rest.

use ring::hmac as ring_hmac;

use super::OpError;
use crate::keys::hash::HashAlgorithm;
use crate::keys::material::VersionMaterial;

/// The outcome of an HMAC computation: the tag, or whether it matched an expected tag.
enum MacOutcome {
    Tag(Vec<u8>),
    Matches(bool),
}

fn rust_crypto_mac<D>(
    key: &[u8],
    input: &[u8],
    expected: Option<&[u8]>,
) -> Result<MacOutcome, OpError>
where
    D: ::hmac::digest::Digest + ::hmac::digest::core_api::BlockSizeUser,
{
    use ::hmac::{Mac, digest::KeyInit};
    let mut mac = <::hmac::SimpleHmac<D> as KeyInit>::new_from_slice(key)
        .map_err(|_| OpError::Internal("bad HMAC key".into()))?;
    Mac::update(&mut mac, input);
    Ok(match expected {
        Some(expected) => MacOutcome::Matches(mac.verify_slice(expected).is_ok()),
        None => MacOutcome::Tag(mac.finalize().into_bytes().to_vec()),
    })
}

/// HMAC under a version's HMAC key; ring for SHA-2 256/384/512, RustCrypto for the rest.
/// With `expected`, compares in constant time instead of returning the tag.
fn mac(
    material: &VersionMaterial,
    algorithm: HashAlgorithm,
    input: &[u8],
    expected: Option<&[u8]>,
) -> Result<MacOutcome, OpError> {
    let key = material.hmac_key.as_slice();
    let ring_algorithm = match algorithm {
        HashAlgorithm::Sha2_256 => ring_hmac::HMAC_SHA256,
        HashAlgorithm::Sha2_384 => ring_hmac::HMAC_SHA384,
        HashAlgorithm::Sha2_512 => ring_hmac::HMAC_SHA512,
        HashAlgorithm::Sha2_224 => return rust_crypto_mac::<sha2::Sha224>(key, input, expected),
        HashAlgorithm::Sha3_224 => return rust_crypto_mac::<sha3::Sha3_224>(key, input, expected),
        HashAlgorithm::Sha3_256 => return rust_crypto_mac::<sha3::Sha3_256>(key, input, expected),
        HashAlgorithm::Sha3_384 => return rust_crypto_mac::<sha3::Sha3_384>(key, input, expected),
        HashAlgorithm::Sha3_512 => return rust_crypto_mac::<sha3::Sha3_512>(key, input, expected),
        HashAlgorithm::None => return Err(OpError::user("unsupported algorithm none")),
    };
    let key = ring_hmac::Key::new(ring_algorithm, key);
    Ok(match expected {
        Some(expected) => MacOutcome::Matches(ring_hmac::verify(&key, input, expected).is_ok()),
        None => MacOutcome::Tag(ring_hmac::sign(&key, input).as_ref().to_vec()),
    })
}

/// HMAC of `input` under a version's HMAC key.
pub fn hmac(
    material: &VersionMaterial,
    algorithm: HashAlgorithm,
    input: &[u8],
) -> Result<Vec<u8>, OpError> {
    match mac(material, algorithm, input, None)? {
        MacOutcome::Tag(tag) => Ok(tag),
        MacOutcome::Matches(_) => Err(OpError::Internal("HMAC computation failed".into())),
    }
}

/// Whether `expected` is the HMAC of `input`, compared in constant time.
pub fn hmac_matches(
    material: &VersionMaterial,
    algorithm: HashAlgorithm,
    input: &[u8],
    expected: &[u8],
) -> Result<bool, OpError> {
    match mac(material, algorithm, input, Some(expected))? {
        MacOutcome::Matches(matches) => Ok(matches),
        MacOutcome::Tag(_) => Err(OpError::Internal("HMAC computation failed".into())),
    }
}
