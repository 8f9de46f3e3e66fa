//! The cryptographic operations on one key version: AEAD and RSA-OAEP encryption, signatures,
//! HMACs. Inputs are raw bytes; the transit routes deal with base64 and the `vault:v` form.

use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac as ring_hmac, signature};
use vottery_common::transit::KeyType;
use zeroize::Zeroizing;

use super::hash::HashAlgorithm;
use super::material::{KEY_LEN, Secret, VersionMaterial};

const NONCE_LEN: usize = aead::NONCE_LEN;
const TAG_LEN: usize = 16;

/// Why an operation failed. `User` errors are the caller's (400); `Internal` ones are ours (500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpError {
    User(String),
    Internal(String),
}

impl OpError {
    pub fn user(message: impl Into<String>) -> Self {
        OpError::User(message.into())
    }

    pub fn message(&self) -> &str {
        match self {
            OpError::User(message) | OpError::Internal(message) => message,
        }
    }
}

fn rng_failed() -> OpError {
    OpError::Internal("the system random number generator failed".into())
}

/// The per-request inputs of encryption besides the plaintext.
#[derive(Debug, Clone, Copy, Default)]
pub struct CipherInputs<'a> {
    pub associated_data: Option<&'a [u8]>,
    /// The derivation context; required for derived keys, ignored otherwise.
    pub context: Option<&'a [u8]>,
}

/// How a key ring is configured, as far as the operations care.
#[derive(Debug, Clone, Copy)]
pub struct KeyFlags {
    pub derived: bool,
    pub convergent: bool,
}

pub const MISSING_CONTEXT: &str = "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key";

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA256(ikm = key, salt = empty, info = context), `N` bytes.
fn derive<const N: usize>(key: &[u8], context: &[u8]) -> Result<Zeroizing<[u8; N]>, OpError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(key);
    let info = [context];
    let okm = prk
        .expand(&info, Len(N))
        .map_err(|_| OpError::Internal("key derivation failed".into()))?;
    let mut out = Zeroizing::new([0u8; N]);
    okm.fill(out.as_mut())
        .map_err(|_| OpError::Internal("key derivation failed".into()))?;
    Ok(out)
}

fn require_context(flags: KeyFlags, context: Option<&[u8]>) -> Result<Option<&[u8]>, OpError> {
    if !flags.derived {
        return Ok(None);
    }
    match context {
        Some(context) if !context.is_empty() => Ok(Some(context)),
        _ => Err(OpError::user(MISSING_CONTEXT)),
    }
}

fn aead_algorithm(key_type: KeyType) -> &'static aead::Algorithm {
    if key_type == KeyType::Chacha20Poly1305 {
        &aead::CHACHA20_POLY1305
    } else {
        &aead::AES_256_GCM
    }
}

fn authentication_failed(key_type: KeyType) -> OpError {
    OpError::user(if key_type == KeyType::Chacha20Poly1305 {
        "chacha20poly1305: message authentication failed"
    } else {
        "cipher: message authentication failed"
    })
}

/// A 256-bit key, wiped when dropped.
type Key = Zeroizing<[u8; KEY_LEN]>;

/// The AEAD key of a version for one request: the stored key, or one derived from the context
/// (with the HMAC key convergent encryption draws its nonce from).
fn aead_keys(
    material: &VersionMaterial,
    flags: KeyFlags,
    context: Option<&[u8]>,
) -> Result<(Key, Option<Key>), OpError> {
    let Secret::Aead(key) = &material.secret else {
        return Err(OpError::Internal("not an AEAD key".into()));
    };
    match require_context(flags, context)? {
        None => Ok((key.clone(), None)),
        Some(context) if flags.convergent => {
            let both = derive::<{ 2 * KEY_LEN }>(key.as_ref(), context)?;
            let mut enc = Zeroizing::new([0u8; KEY_LEN]);
            let mut mac = Zeroizing::new([0u8; KEY_LEN]);
            enc.copy_from_slice(&both[..KEY_LEN]);
            mac.copy_from_slice(&both[KEY_LEN..]);
            Ok((enc, Some(mac)))
        }
        Some(context) => Ok((derive::<KEY_LEN>(key.as_ref(), context)?, None)),
    }
}

/// AEAD keys expanded once and reused for the items of one request. Only key versions used as
/// stored (no derivation context, not convergent) are kept, and they go with the request.
#[derive(Default)]
pub struct SealingKeys {
    expanded: Vec<(u32, LessSafeKey)>,
}

impl SealingKeys {
    fn for_version(
        &mut self,
        version: u32,
        key_type: KeyType,
        key: &[u8],
    ) -> Result<&LessSafeKey, OpError> {
        let index = match self
            .expanded
            .iter()
            .position(|(number, _)| *number == version)
        {
            Some(index) => index,
            None => {
                self.expanded
                    .push((version, expand_aead_key(key_type, key)?));
                self.expanded.len() - 1
            }
        };
        Ok(&self.expanded[index].1)
    }
}

fn expand_aead_key(key_type: KeyType, key: &[u8]) -> Result<LessSafeKey, OpError> {
    Ok(LessSafeKey::new(
        UnboundKey::new(aead_algorithm(key_type), key)
            .map_err(|_| OpError::Internal("bad AEAD key".into()))?,
    ))
}

/// Encrypts with a version: `nonce || ciphertext || tag` for AEAD keys, RSA-OAEP(SHA-256) for RSA.
pub fn encrypt(
    material: &VersionMaterial,
    flags: KeyFlags,
    plaintext: &[u8],
    inputs: CipherInputs<'_>,
) -> Result<Vec<u8>, OpError> {
    // A fresh, empty set of expanded keys: the version number only labels this one use.
    encrypt_reusing(
        &mut SealingKeys::default(),
        0,
        material,
        flags,
        plaintext,
        inputs,
    )
}

/// [`encrypt`] with version `version` of a key, reusing its expanded AEAD key across calls.
pub fn encrypt_reusing(
    keys: &mut SealingKeys,
    version: u32,
    material: &VersionMaterial,
    flags: KeyFlags,
    plaintext: &[u8],
    inputs: CipherInputs<'_>,
) -> Result<Vec<u8>, OpError> {
    let key_type = material.key_type;
    if key_type.is_rsa() {
        if inputs.associated_data.is_some_and(|ad| !ad.is_empty()) {
            return Err(OpError::user(format!(
                "'associated_data' provided for non-AEAD cipher suite {key_type}"
            )));
        }
        let Secret::Rsa { private, .. } = &material.secret else {
            return Err(OpError::Internal("not an RSA key".into()));
        };
        return private
            .to_public_key()
            .encrypt(
                &mut rand::rngs::OsRng,
                rsa::Oaep::new::<sha2::Sha256>(),
                plaintext,
            )
            .map_err(|error| {
                OpError::user(format!("failed to RSA encrypt the plaintext: {error}"))
            });
    }
    if !key_type.is_aead() {
        return Err(OpError::user(format!(
            "message encryption not supported for key type {key_type}"
        )));
    }
    let (key, convergent_mac) = aead_keys(material, flags, inputs.context)?;
    let as_stored = convergent_mac.is_none() && inputs.context.is_none();
    let nonce: [u8; NONCE_LEN] = match convergent_mac {
        Some(mac_key) => {
            let mac = ring_hmac::sign(
                &ring_hmac::Key::new(ring_hmac::HMAC_SHA256, mac_key.as_ref()),
                plaintext,
            );
            let mut nonce = [0u8; NONCE_LEN];
            nonce.copy_from_slice(&mac.as_ref()[..NONCE_LEN]);
            nonce
        }
        None => super::nonce::fresh::<NONCE_LEN>().map_err(|_| rng_failed())?,
    };
    let derived;
    let sealing = if as_stored {
        keys.for_version(version, key_type, key.as_ref())?
    } else {
        derived = expand_aead_key(key_type, key.as_ref())?;
        &derived
    };
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = sealing
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(inputs.associated_data.unwrap_or_default()),
            &mut out[NONCE_LEN..],
        )
        .map_err(|_| OpError::Internal("encryption failed".into()))?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Decrypts what [`encrypt`] produced with the same version, context and associated data.
pub fn decrypt(
    material: &VersionMaterial,
    flags: KeyFlags,
    payload: &[u8],
    inputs: CipherInputs<'_>,
) -> Result<Zeroizing<Vec<u8>>, OpError> {
    let key_type = material.key_type;
    if key_type.is_rsa() {
        if inputs.associated_data.is_some_and(|ad| !ad.is_empty()) {
            return Err(OpError::user(format!(
                "'associated_data' provided for non-AEAD cipher suite {key_type}"
            )));
        }
        let Secret::Rsa { private, .. } = &material.secret else {
            return Err(OpError::Internal("not an RSA key".into()));
        };
        // One message for every OAEP failure, so the answer does not tell padding errors apart.
        return private
            .decrypt_blinded(
                &mut rand::rngs::OsRng,
                rsa::Oaep::new::<sha2::Sha256>(),
                payload,
            )
            .map(Zeroizing::new)
            .map_err(|_| OpError::user("failed to RSA decrypt the ciphertext: decryption error"));
    }
    if !key_type.is_aead() {
        return Err(OpError::user(format!(
            "message decryption not supported for key type {key_type}"
        )));
    }
    if payload.len() < NONCE_LEN + TAG_LEN {
        return Err(OpError::user("invalid ciphertext length"));
    }
    let (key, _) = aead_keys(material, flags, inputs.context)?;
    let opening = LessSafeKey::new(
        UnboundKey::new(aead_algorithm(key_type), key.as_ref())
            .map_err(|_| OpError::Internal("bad AEAD key".into()))?,
    );
    let (nonce, sealed) = payload.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| OpError::user("invalid ciphertext length"))?;
    let mut buffer = Zeroizing::new(sealed.to_vec());
    let plain_len = opening
        .open_in_place(
            nonce,
            Aad::from(inputs.associated_data.unwrap_or_default()),
            &mut buffer,
        )
        .map_err(|_| authentication_failed(key_type))?
        .len();
    buffer.truncate(plain_len);
    Ok(buffer)
}

// ---------------------------------------------------------------------------------------------
// Signatures

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

// ---------------------------------------------------------------------------------------------
// HMAC

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
    D: hmac::digest::Digest + hmac::digest::core_api::BlockSizeUser,
{
    use hmac::{Mac, digest::KeyInit};
    let mut mac = <hmac::SimpleHmac<D> as KeyInit>::new_from_slice(key)
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

/// A fresh random key of `bits` for `/datakey`.
pub fn data_key(bits: usize) -> Result<Zeroizing<Vec<u8>>, OpError> {
    let mut key = Zeroizing::new(vec![0u8; bits / 8]);
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| rng_failed())?;
    Ok(key)
}
