//! The secret material of one key version: generation, its storage encoding, public keys.
//!
//! Every version carries its own random HMAC key next to its type's secret, as in Vault, so any
//! key can serve `/hmac`. Raw secret bytes live in [`Zeroizing`] buffers and are wiped when the
//! version is dropped (on seal, on refresh, on delete). The parsed `ring` key pairs cached for
//! asymmetric types are dropped at the same moments; `ring` does not wipe their memory itself.

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use vottery_common::transit::KeyType;
use zeroize::Zeroizing;

/// Storage encoding version (first byte of every encoded material).
const FORMAT: u8 = 1;
/// Size of generated symmetric, HMAC and Ed25519 seed keys.
pub const KEY_LEN: usize = 32;
/// Bounds of `key_size` for `hmac` keys, in bytes.
pub const HMAC_KEY_SIZES: std::ops::RangeInclusive<u32> = 32..=512;

/// Material could not be made or read back.
#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    #[error("the system random number generator failed")]
    Random,
    #[error("RSA key generation failed")]
    RsaGeneration,
    #[error("stored key material is malformed: {0}")]
    Malformed(&'static str),
}

/// The type-specific secret of a version.
pub(crate) enum Secret {
    /// AES-256-GCM or ChaCha20-Poly1305 key.
    Aead(Zeroizing<[u8; KEY_LEN]>),
    Ed25519 {
        seed: Zeroizing<[u8; KEY_LEN]>,
        pair: Ed25519KeyPair,
    },
    EcdsaP256 {
        /// ring's signer, for SHA2-256 over raw input (the common case).
        pair: EcdsaKeyPair,
        /// RustCrypto's signer for pre-hashed input and other hashes (zeroized on drop).
        signing: p256::ecdsa::SigningKey,
    },
    Rsa {
        /// ring's signer (constant-time), loaded from the PKCS#8 the `rsa` crate generated.
        pair: RsaKeyPair,
        /// For OAEP decryption (blinded; see the README's security notes). Zeroized on drop.
        private: Box<rsa::RsaPrivateKey>,
    },
    /// `hmac` keys have no secret besides the HMAC key.
    Hmac,
}

/// One key version's material, unsealed.
pub struct VersionMaterial {
    pub key_type: KeyType,
    pub(crate) hmac_key: Zeroizing<Vec<u8>>,
    pub(crate) secret: Secret,
}

impl std::fmt::Debug for VersionMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionMaterial")
            .field("key_type", &self.key_type)
            .finish_non_exhaustive()
    }
}

pub(crate) fn random_bytes<const N: usize>(
    rng: &SystemRandom,
) -> Result<Zeroizing<[u8; N]>, MaterialError> {
    let mut bytes = Zeroizing::new([0u8; N]);
    rng.fill(bytes.as_mut())
        .map_err(|_| MaterialError::Random)?;
    Ok(bytes)
}

fn type_code(key_type: KeyType) -> u8 {
    match key_type {
        KeyType::Aes256Gcm96 => 1,
        KeyType::Chacha20Poly1305 => 2,
        KeyType::Ed25519 => 3,
        KeyType::EcdsaP256 => 4,
        KeyType::Rsa2048 => 5,
        KeyType::Rsa3072 => 6,
        KeyType::Rsa4096 => 7,
        KeyType::Hmac => 8,
    }
}

fn rsa_bits(key_type: KeyType) -> usize {
    match key_type {
        KeyType::Rsa3072 => 3072,
        KeyType::Rsa4096 => 4096,
        _ => 2048,
    }
}

impl VersionMaterial {
    /// Generates fresh material. `hmac_key_size` applies to `hmac` keys only (bytes).
    /// RSA generation takes up to seconds: call it off the async executor.
    pub fn generate(
        key_type: KeyType,
        hmac_key_size: u32,
    ) -> Result<Zeroizing<Vec<u8>>, MaterialError> {
        let rng = SystemRandom::new();
        let hmac_len = if key_type == KeyType::Hmac {
            hmac_key_size as usize
        } else {
            KEY_LEN
        };
        let mut hmac_key = Zeroizing::new(vec![0u8; hmac_len]);
        rng.fill(&mut hmac_key).map_err(|_| MaterialError::Random)?;
        let secret: Zeroizing<Vec<u8>> = match key_type {
            KeyType::Aes256Gcm96 | KeyType::Chacha20Poly1305 | KeyType::Ed25519 => {
                Zeroizing::new(random_bytes::<KEY_LEN>(&rng)?.to_vec())
            }
            KeyType::EcdsaP256 => {
                let document =
                    EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                        .map_err(|_| MaterialError::Random)?;
                Zeroizing::new(document.as_ref().to_vec())
            }
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, rsa_bits(key_type))
                    .map_err(|_| MaterialError::RsaGeneration)?;
                let document = private
                    .to_pkcs8_der()
                    .map_err(|_| MaterialError::RsaGeneration)?;
                Zeroizing::new(document.as_bytes().to_vec())
            }
            KeyType::Hmac => Zeroizing::new(Vec::new()),
        };
        let mut encoded = Zeroizing::new(Vec::with_capacity(4 + hmac_key.len() + secret.len()));
        encoded.push(FORMAT);
        encoded.push(type_code(key_type));
        encoded.extend_from_slice(&(hmac_key.len() as u16).to_be_bytes());
        encoded.extend_from_slice(&hmac_key);
        encoded.extend_from_slice(&secret);
        Ok(encoded)
    }

    /// Reads material back from its storage encoding (after the barrier opened it).
    pub fn decode(key_type: KeyType, encoded: &[u8]) -> Result<Self, MaterialError> {
        let [format, code, len_hi, len_lo, rest @ ..] = encoded else {
            return Err(MaterialError::Malformed("too short"));
        };
        if *format != FORMAT {
            return Err(MaterialError::Malformed("unknown format"));
        }
        if *code != type_code(key_type) {
            return Err(MaterialError::Malformed("key type mismatch"));
        }
        let hmac_len = u16::from_be_bytes([*len_hi, *len_lo]) as usize;
        if rest.len() < hmac_len {
            return Err(MaterialError::Malformed("truncated HMAC key"));
        }
        let (hmac_key, secret) = rest.split_at(hmac_len);
        let secret = match key_type {
            KeyType::Aes256Gcm96 | KeyType::Chacha20Poly1305 => Secret::Aead(fixed_key(secret)?),
            KeyType::Ed25519 => {
                let seed = fixed_key(secret)?;
                let pair = Ed25519KeyPair::from_seed_unchecked(seed.as_ref())
                    .map_err(|_| MaterialError::Malformed("ed25519 seed"))?;
                Secret::Ed25519 { seed, pair }
            }
            KeyType::EcdsaP256 => {
                let pair = EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    secret,
                    &SystemRandom::new(),
                )
                .map_err(|_| MaterialError::Malformed("ecdsa pkcs8"))?;
                let signing = p256::ecdsa::SigningKey::from_pkcs8_der(secret)
                    .map_err(|_| MaterialError::Malformed("ecdsa pkcs8"))?;
                Secret::EcdsaP256 { pair, signing }
            }
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                let pair = RsaKeyPair::from_pkcs8(secret)
                    .map_err(|_| MaterialError::Malformed("rsa pkcs8"))?;
                let private = rsa::RsaPrivateKey::from_pkcs8_der(secret)
                    .map_err(|_| MaterialError::Malformed("rsa pkcs8"))?;
                Secret::Rsa {
                    pair,
                    private: Box::new(private),
                }
            }
            KeyType::Hmac => Secret::Hmac,
        };
        Ok(Self {
            key_type,
            hmac_key: Zeroizing::new(hmac_key.to_vec()),
            secret,
        })
    }

    /// The public key as Vault shows it: base64 raw bytes for ed25519, PKIX PEM otherwise.
    pub fn public_key(&self) -> Option<String> {
        match &self.secret {
            Secret::Ed25519 { pair, .. } => {
                Some(base64::engine::general_purpose::STANDARD.encode(pair.public_key().as_ref()))
            }
            Secret::EcdsaP256 { signing, .. } => signing
                .verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .ok(),
            Secret::Rsa { private, .. } => private
                .to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .ok(),
            Secret::Aead(_) | Secret::Hmac => None,
        }
    }

    /// The raw public key bytes ring verifies with (ed25519 point, SEC1 point, PKCS#1 RSA key).
    pub(crate) fn public_key_bytes(&self) -> Option<&[u8]> {
        match &self.secret {
            Secret::Ed25519 { pair, .. } => Some(pair.public_key().as_ref()),
            Secret::EcdsaP256 { pair, .. } => Some(pair.public_key().as_ref()),
            Secret::Rsa { pair, .. } => Some(pair.public().as_ref()),
            Secret::Aead(_) | Secret::Hmac => None,
        }
    }

    /// The curve or modulus name shown beside public keys in a key read.
    pub fn public_key_name(&self) -> &'static str {
        match self.key_type {
            KeyType::EcdsaP256 => "P-256",
            other => other.as_str(),
        }
    }
}

fn fixed_key(bytes: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>, MaterialError> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if bytes.len() != KEY_LEN {
        return Err(MaterialError::Malformed("wrong key length"));
    }
    key.copy_from_slice(bytes);
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_encoding() {
        for key_type in [
            KeyType::Aes256Gcm96,
            KeyType::Chacha20Poly1305,
            KeyType::Ed25519,
            KeyType::EcdsaP256,
            KeyType::Rsa2048,
            KeyType::Hmac,
        ] {
            let encoded = VersionMaterial::generate(key_type, 64).unwrap();
            let material = VersionMaterial::decode(key_type, &encoded).unwrap();
            assert_eq!(material.key_type, key_type);
            let expected_hmac = if key_type == KeyType::Hmac {
                64
            } else {
                KEY_LEN
            };
            assert_eq!(material.hmac_key.len(), expected_hmac);
            assert_eq!(
                material.public_key().is_some(),
                key_type.is_asymmetric(),
                "{key_type}"
            );
        }
    }

    #[test]
    fn decoding_checks_format_and_type() {
        let encoded = VersionMaterial::generate(KeyType::Aes256Gcm96, 32).unwrap();
        assert!(VersionMaterial::decode(KeyType::Chacha20Poly1305, &encoded).is_err());
        assert!(VersionMaterial::decode(KeyType::Aes256Gcm96, &encoded[..10]).is_err());
        assert!(VersionMaterial::decode(KeyType::Aes256Gcm96, &[]).is_err());
    }

    #[test]
    fn public_keys_are_pem_or_raw_base64() {
        let ecdsa = VersionMaterial::decode(
            KeyType::EcdsaP256,
            &VersionMaterial::generate(KeyType::EcdsaP256, 32).unwrap(),
        )
        .unwrap();
        assert!(
            ecdsa
                .public_key()
                .unwrap()
                .starts_with("-----BEGIN PUBLIC KEY-----\n")
        );
        assert_eq!(ecdsa.public_key_name(), "P-256");
        let ed = VersionMaterial::decode(
            KeyType::Ed25519,
            &VersionMaterial::generate(KeyType::Ed25519, 32).unwrap(),
        )
        .unwrap();
        assert_eq!(ed.public_key().unwrap().len(), 44);
    }
}
