//! Splitting the root key into unseal shares, with Feldman verifiable secret sharing over P-256
//! (vsss-rs). The public commitments are stored at init, so each share an operator submits is
//! checked on its own: a wrong share is refused at once and the good ones already given count.
//!
//! The shared secret is a P-256 scalar; the root key is HKDF-SHA256 of it. A share is 33 bytes,
//! like Vault's: one identifier byte and the 32-byte share value.

use p256::elliptic_curve::PrimeField;
use p256::elliptic_curve::group::GroupEncoding;
use p256::{ProjectivePoint, Scalar};
use ring::hkdf;
use vsss_rs::{
    DefaultShare, FeldmanVerifierSet, IdentifierPrimeField, ReadableShareSet, Share, ShareElement,
    ShareVerifierGroup, feldman,
};
use zeroize::Zeroizing;

use crate::keys::material::KEY_LEN;

type ShareValue = IdentifierPrimeField<Scalar>;
type FeldmanShare = DefaultShare<ShareValue, ShareValue>;
type Verifier = ShareVerifierGroup<ProjectivePoint>;

/// Length of an encoded share.
pub const SHARE_LEN: usize = 1 + 32;

/// Why splitting, verifying or combining failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    #[error("shares must be at least one")]
    NoShares,
    #[error("threshold must be at least one")]
    NoThreshold,
    #[error("threshold must be greater than one for multiple shares")]
    ThresholdOfOne,
    #[error("shares must be less than 256")]
    TooManyShares,
    #[error("threshold cannot be larger than shares")]
    ThresholdAboveShares,
    #[error("invalid key: a share is {SHARE_LEN} bytes")]
    Length,
    /// The share was not made for this seal, or was mistyped.
    #[error("invalid key: this share does not belong to this seal")]
    NotOurs,
    #[error("secret sharing failed")]
    Internal,
}

/// A new root key's shares and the public commitments that verify them.
pub struct Split {
    pub secret: Zeroizing<[u8; 32]>,
    pub shares: Vec<Zeroizing<Vec<u8>>>,
    pub verifiers: Vec<Vec<u8>>,
}

/// Checks Vault's rules for share count and threshold.
pub fn check_parameters(shares: i64, threshold: i64) -> Result<(u8, u8), ShareError> {
    if shares < 1 {
        return Err(ShareError::NoShares);
    }
    if threshold < 1 {
        return Err(ShareError::NoThreshold);
    }
    if shares > 255 {
        return Err(ShareError::TooManyShares);
    }
    if threshold > shares {
        return Err(ShareError::ThresholdAboveShares);
    }
    if threshold == 1 && shares > 1 {
        return Err(ShareError::ThresholdOfOne);
    }
    Ok((shares as u8, threshold as u8))
}

fn encode_point(point: &ProjectivePoint) -> Vec<u8> {
    point.to_affine().to_bytes().to_vec()
}

fn random_scalar() -> Scalar {
    use p256::elliptic_curve::Field;
    Scalar::random(&mut rand::rngs::OsRng)
}

/// Splits a fresh random secret into `count` shares, any `threshold` of which recombine it.
pub fn split(count: u8, threshold: u8) -> Result<Split, ShareError> {
    let secret = random_scalar();
    let secret_bytes = Zeroizing::new(<[u8; 32]>::from(secret.to_repr()));
    if threshold == 1 {
        // One share holding the secret itself, committed to as g^secret.
        let mut share = Zeroizing::new(vec![1u8]);
        share.extend_from_slice(secret_bytes.as_ref());
        let commitment = ProjectivePoint::GENERATOR * secret;
        return Ok(Split {
            secret: secret_bytes,
            shares: vec![share],
            verifiers: vec![encode_point(&commitment)],
        });
    }
    let (shares, verifiers): (Vec<FeldmanShare>, Vec<Verifier>) =
        feldman::split_secret::<FeldmanShare, Verifier>(
            threshold as usize,
            count as usize,
            &IdentifierPrimeField(secret),
            None,
            &mut rand::rngs::OsRng,
        )
        .map_err(|_| ShareError::Internal)?;
    let encoded = shares
        .iter()
        .map(|share| {
            let id = share.identifier().0.to_repr();
            // Identifiers are the small integers 1..=count, big-endian in the scalar's bytes.
            let (high, low) = id.split_at(31);
            if high.iter().any(|byte| *byte != 0) {
                return Err(ShareError::Internal);
            }
            let mut bytes = Zeroizing::new(Vec::with_capacity(SHARE_LEN));
            bytes.push(low[0]);
            bytes.extend_from_slice(&share.value().0.to_repr());
            Ok(bytes)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let verifiers = verifiers.iter().map(|verifier| verifier.to_vec()).collect();
    Ok(Split {
        secret: secret_bytes,
        shares: encoded,
        verifiers,
    })
}

fn decode_share(bytes: &[u8]) -> Result<FeldmanShare, ShareError> {
    if bytes.len() != SHARE_LEN || bytes[0] == 0 {
        return Err(ShareError::Length);
    }
    let mut repr = p256::FieldBytes::default();
    repr.copy_from_slice(&bytes[1..]);
    let value: Option<Scalar> = Scalar::from_repr(repr).into();
    let value = value.ok_or(ShareError::NotOurs)?;
    Ok(FeldmanShare::with_identifier_and_value(
        IdentifierPrimeField(Scalar::from(u64::from(bytes[0]))),
        IdentifierPrimeField(value),
    ))
}

/// Verifies one share against the stored commitments; returns its identifier.
pub fn verify(verifiers: &[Vec<u8>], share: &[u8]) -> Result<u8, ShareError> {
    let parsed = decode_share(share)?;
    if verifiers.len() == 1 {
        let expected = ProjectivePoint::GENERATOR * parsed.value().0;
        return if share[0] == 1 && encode_point(&expected) == verifiers[0] {
            Ok(1)
        } else {
            Err(ShareError::NotOurs)
        };
    }
    let verifiers = verifiers
        .iter()
        .map(|bytes| Verifier::from_slice(bytes).map_err(|_| ShareError::Internal))
        .collect::<Result<Vec<_>, _>>()?;
    verifiers
        .verify_share(&parsed)
        .map_err(|_| ShareError::NotOurs)?;
    Ok(share[0])
}

/// Recombines the secret from `threshold` verified shares.
pub fn combine(shares: &[Zeroizing<Vec<u8>>]) -> Result<Zeroizing<[u8; 32]>, ShareError> {
    if let [only] = shares
        && only.len() == SHARE_LEN
        && only[0] == 1
    {
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(&only[1..]);
        return Ok(secret);
    }
    let parsed = shares
        .iter()
        .map(|share| decode_share(share))
        .collect::<Result<Vec<_>, _>>()?;
    let secret = parsed.combine().map_err(|_| ShareError::Internal)?;
    Ok(Zeroizing::new(<[u8; 32]>::from(secret.0.to_repr())))
}

struct Len;

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        KEY_LEN
    }
}

/// The root key for a shared secret: HKDF-SHA256, so the key is uniform whatever the field.
pub fn root_key_bytes(secret: &[u8; 32]) -> Result<Zeroizing<[u8; KEY_LEN]>, ShareError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"vottery-security seal v1").extract(secret);
    let info: [&[u8]; 1] = [b"root key"];
    let okm = prk.expand(&info, Len).map_err(|_| ShareError::Internal)?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    okm.fill(key.as_mut()).map_err(|_| ShareError::Internal)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_threshold_of_shares_recombines_and_fewer_do_not() {
        let split = split(5, 3).unwrap();
        assert_eq!(split.shares.len(), 5);
        assert!(split.shares.iter().all(|share| share.len() == SHARE_LEN));
        for picks in [[0, 1, 2], [4, 2, 0], [1, 3, 4]] {
            let chosen: Vec<_> = picks.iter().map(|&i| split.shares[i].clone()).collect();
            assert_eq!(*combine(&chosen).unwrap(), *split.secret);
        }
        let two: Vec<_> = split.shares[..2].to_vec();
        assert_ne!(
            combine(&two).ok().map(|secret| *secret),
            Some(*split.secret)
        );
    }

    #[test]
    fn each_share_verifies_and_a_wrong_one_is_refused() {
        let split = split(3, 2).unwrap();
        for (index, share) in split.shares.iter().enumerate() {
            assert_eq!(verify(&split.verifiers, share).unwrap() as usize, index + 1);
        }
        let mut wrong = split.shares[0].to_vec();
        wrong[10] ^= 1;
        assert_eq!(verify(&split.verifiers, &wrong), Err(ShareError::NotOurs));
        let other = super::split(3, 2).unwrap();
        assert_eq!(
            verify(&split.verifiers, &other.shares[0]),
            Err(ShareError::NotOurs)
        );
        assert_eq!(
            verify(&split.verifiers, &[1, 2, 3]),
            Err(ShareError::Length)
        );
    }

    #[test]
    fn a_single_share_is_the_secret_and_still_verifies() {
        let split = split(1, 1).unwrap();
        assert_eq!(verify(&split.verifiers, &split.shares[0]).unwrap(), 1);
        assert_eq!(*combine(&split.shares).unwrap(), *split.secret);
        let mut wrong = split.shares[0].to_vec();
        wrong[5] ^= 1;
        assert!(verify(&split.verifiers, &wrong).is_err());
    }

    #[test]
    fn parameters_follow_vaults_rules() {
        assert_eq!(check_parameters(5, 3), Ok((5, 3)));
        assert_eq!(check_parameters(1, 1), Ok((1, 1)));
        assert_eq!(check_parameters(0, 1), Err(ShareError::NoShares));
        assert_eq!(check_parameters(3, 0), Err(ShareError::NoThreshold));
        assert_eq!(
            check_parameters(3, 4),
            Err(ShareError::ThresholdAboveShares)
        );
        assert_eq!(check_parameters(3, 1), Err(ShareError::ThresholdOfOne));
        assert_eq!(check_parameters(256, 3), Err(ShareError::TooManyShares));
    }
}
