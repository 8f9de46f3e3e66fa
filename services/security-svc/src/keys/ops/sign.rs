//! Signatures with a version: ed25519 (derivable per context), ECDSA P-256 and RSA (PSS or
//! PKCS#1 v1.5), in Vault's encodings.

use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use ring::rand::SystemRandom;
use ring::signature;

use super::{KeyFlags, OpError, derive, require_context, rng_failed};
use crate::keys::hash::HashAlgorithm;
use crate::keys::material::{KEY_LEN, Secret, VersionMaterial};

/// RSA signature padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaPadding {
    Pss,
    Pkcs1v15,
}

/// How signatures are encoded: DER (`asn1`, base64) or fixed-width (`jws`, base64url).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marshaling {
    Asn1,
    Jws,
}

/// The options of one sign or verify request.
#[derive(Debug, Clone, Copy)]
pub struct SignOptions<'a> {
    pub hash: HashAlgorithm,
    pub prehashed: bool,
    pub padding: RsaPadding,
    pub marshaling: Marshaling,
    pub context: Option<&'a [u8]>,
}

impl SignOptions<'_> {
    /// The value ECDSA signs: the input itself when pre-hashed, else its digest.
    fn digest(&self, input: &[u8]) -> Vec<u8> {
        if self.prehashed {
            input.to_vec()
        } else {
            self.hash.digest(input)
        }
    }
}

fn ed25519_pair(
    material: &VersionMaterial,
    flags: KeyFlags,
    context: Option<&[u8]>,
) -> Result<Option<signature::Ed25519KeyPair>, OpError> {
    let Secret::Ed25519 { seed, .. } = &material.secret else {
        return Err(OpError::Internal("not an ed25519 key".into()));
    };
    match require_context(flags, context)? {
        None => Ok(None),
        Some(context) => {
            let derived = derive::<KEY_LEN>(seed.as_ref(), context)?;
            signature::Ed25519KeyPair::from_seed_unchecked(derived.as_ref())
                .map(Some)
                .map_err(|_| OpError::Internal("key derivation failed".into()))
        }
    }
}

fn rsa_signing_padding(
    options: &SignOptions<'_>,
) -> Result<&'static dyn signature::RsaEncoding, OpError> {
    if options.prehashed {
        return Err(OpError::user(
            "prehashed input is not supported for RSA keys; send the message itself",
        ));
    }
    Ok(match (options.padding, options.hash) {
        (RsaPadding::Pss, HashAlgorithm::Sha2_256) => &signature::RSA_PSS_SHA256,
        (RsaPadding::Pss, HashAlgorithm::Sha2_384) => &signature::RSA_PSS_SHA384,
        (RsaPadding::Pss, HashAlgorithm::Sha2_512) => &signature::RSA_PSS_SHA512,
        (RsaPadding::Pkcs1v15, HashAlgorithm::Sha2_256) => &signature::RSA_PKCS1_SHA256,
        (RsaPadding::Pkcs1v15, HashAlgorithm::Sha2_384) => &signature::RSA_PKCS1_SHA384,
        (RsaPadding::Pkcs1v15, HashAlgorithm::Sha2_512) => &signature::RSA_PKCS1_SHA512,
        (_, other) => {
            return Err(OpError::user(format!(
                "hash algorithm {other} is not supported for RSA signatures; use sha2-256, sha2-384 or sha2-512"
            )));
        }
    })
}

fn rsa_verification(
    options: &SignOptions<'_>,
) -> Result<&'static signature::RsaParameters, OpError> {
    rsa_signing_padding(options)?;
    Ok(match (options.padding, options.hash) {
        (RsaPadding::Pss, HashAlgorithm::Sha2_384) => &signature::RSA_PSS_2048_8192_SHA384,
        (RsaPadding::Pss, HashAlgorithm::Sha2_512) => &signature::RSA_PSS_2048_8192_SHA512,
        (RsaPadding::Pss, _) => &signature::RSA_PSS_2048_8192_SHA256,
        (RsaPadding::Pkcs1v15, HashAlgorithm::Sha2_384) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (RsaPadding::Pkcs1v15, HashAlgorithm::Sha2_512) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (RsaPadding::Pkcs1v15, _) => &signature::RSA_PKCS1_2048_8192_SHA256,
    })
}

/// Verifies RSA-PSS with the largest salt the modulus allows (Vault's `auto` when signing).
fn pss_with_largest_salt(
    public: &rsa::RsaPublicKey,
    hash: HashAlgorithm,
    input: &[u8],
    signature_bytes: &[u8],
) -> bool {
    use rsa::traits::PublicKeyParts;
    let digest = hash.digest(input);
    let em_len = (public.n().bits() - 1).div_ceil(8);
    let Some(salt) = em_len.checked_sub(digest.len() + 2) else {
        return false;
    };
    let scheme = match hash {
        HashAlgorithm::Sha2_256 => rsa::Pss::new_with_salt::<sha2::Sha256>(salt),
        HashAlgorithm::Sha2_384 => rsa::Pss::new_with_salt::<sha2::Sha384>(salt),
        HashAlgorithm::Sha2_512 => rsa::Pss::new_with_salt::<sha2::Sha512>(salt),
        _ => return false,
    };
    public.verify(scheme, &digest, signature_bytes).is_ok()
}

/// A signature, and for derived ed25519 keys the derived public key (raw bytes).
pub struct Signed {
    pub bytes: Vec<u8>,
    pub derived_public_key: Option<Vec<u8>>,
}

/// Signs `input` with a version.
pub fn sign(
    material: &VersionMaterial,
    flags: KeyFlags,
    input: &[u8],
    options: &SignOptions<'_>,
) -> Result<Signed, OpError> {
    let rng = SystemRandom::new();
    let bytes = match &material.secret {
        Secret::Ed25519 { pair, .. } => {
            return Ok(match ed25519_pair(material, flags, options.context)? {
                Some(derived) => Signed {
                    bytes: derived.sign(input).as_ref().to_vec(),
                    derived_public_key: Some(
                        signature::KeyPair::public_key(&derived).as_ref().to_vec(),
                    ),
                },
                None => Signed {
                    bytes: pair.sign(input).as_ref().to_vec(),
                    derived_public_key: None,
                },
            });
        }
        Secret::EcdsaP256 { pair, signing } => {
            if options.hash == HashAlgorithm::None && !options.prehashed {
                return Err(OpError::user(
                    "hash_algorithm=none requires prehashed=true for ECDSA keys",
                ));
            }
            let fixed = if !options.prehashed && options.hash == HashAlgorithm::Sha2_256 {
                pair.sign(&rng, input)
                    .map_err(|_| rng_failed())?
                    .as_ref()
                    .to_vec()
            } else {
                let signature: p256::ecdsa::Signature =
                    signing.sign_prehash(&options.digest(input)).map_err(|_| {
                        OpError::user("the pre-hashed input is too short for ECDSA P-256")
                    })?;
                signature.to_bytes().to_vec()
            };
            match options.marshaling {
                Marshaling::Jws => fixed,
                Marshaling::Asn1 => p256::ecdsa::Signature::from_slice(&fixed)
                    .map_err(|_| OpError::Internal("signature encoding failed".into()))?
                    .to_der()
                    .as_bytes()
                    .to_vec(),
            }
        }
        Secret::Rsa { pair, .. } => {
            let padding = rsa_signing_padding(options)?;
            let mut out = vec![0u8; pair.public().modulus_len()];
            pair.sign(padding, &rng, input, &mut out)
                .map_err(|_| OpError::Internal("RSA signing failed".into()))?;
            out
        }
        Secret::Aead(_) | Secret::Hmac => {
            return Err(OpError::user(format!(
                "key type {} does not support signing",
                material.key_type
            )));
        }
    };
    Ok(Signed {
        bytes,
        derived_public_key: None,
    })
}

/// Checks a signature made by [`sign`] (or any conforming signer) with a version's public key.
/// A signature that does not match is `Ok(false)`, not an error.
pub fn verify(
    material: &VersionMaterial,
    flags: KeyFlags,
    input: &[u8],
    signature_bytes: &[u8],
    options: &SignOptions<'_>,
) -> Result<bool, OpError> {
    let public = material.public_key_bytes();
    match (&material.secret, public) {
        (Secret::Ed25519 { .. }, Some(public)) => {
            let derived = ed25519_pair(material, flags, options.context)?;
            let key = match &derived {
                Some(pair) => signature::KeyPair::public_key(pair).as_ref(),
                None => public,
            };
            Ok(signature::UnparsedPublicKey::new(&signature::ED25519, key)
                .verify(input, signature_bytes)
                .is_ok())
        }
        (Secret::EcdsaP256 { signing, .. }, Some(public)) => {
            let ring_algorithm: Option<&'static signature::EcdsaVerificationAlgorithm> =
                match (options.prehashed, options.hash, options.marshaling) {
                    (false, HashAlgorithm::Sha2_256, Marshaling::Asn1) => {
                        Some(&signature::ECDSA_P256_SHA256_ASN1)
                    }
                    (false, HashAlgorithm::Sha2_256, Marshaling::Jws) => {
                        Some(&signature::ECDSA_P256_SHA256_FIXED)
                    }
                    (false, HashAlgorithm::Sha2_384, Marshaling::Asn1) => {
                        Some(&signature::ECDSA_P256_SHA384_ASN1)
                    }
                    _ => None,
                };
            if let Some(algorithm) = ring_algorithm {
                return Ok(signature::UnparsedPublicKey::new(algorithm, public)
                    .verify(input, signature_bytes)
                    .is_ok());
            }
            let parsed = match options.marshaling {
                Marshaling::Asn1 => p256::ecdsa::Signature::from_der(signature_bytes),
                Marshaling::Jws => p256::ecdsa::Signature::from_slice(signature_bytes),
            };
            Ok(parsed.is_ok_and(|parsed| {
                signing
                    .verifying_key()
                    .verify_prehash(&options.digest(input), &parsed)
                    .is_ok()
            }))
        }
        (Secret::Rsa { private, .. }, Some(public)) => {
            let parameters = rsa_verification(options)?;
            let valid = signature::UnparsedPublicKey::new(parameters, public)
                .verify(input, signature_bytes)
                .is_ok();
            if valid || options.padding != RsaPadding::Pss {
                return Ok(valid);
            }
            // ring accepts only a salt as long as the hash; Vault signs PSS with the largest salt
            // by default. A public-key check, so the `rsa` crate's timing caveat does not apply.
            Ok(pss_with_largest_salt(
                &private.to_public_key(),
                options.hash,
                input,
                signature_bytes,
            ))
        }
        _ => Err(OpError::user(format!(
            "key type {} does not support verification",
            material.key_type
        ))),
    }
}
