//! The cryptographic operations on one key version, one module per family: AEAD and RSA-OAEP
//! encryption, signatures, HMACs and data keys. Inputs are raw bytes; the transit routes deal
//! with base64 and the `vault:v` form.

mod aead;
mod datakey;
mod hmac;
mod rsa_oaep;
mod sign;

use ring::hkdf;
use zeroize::Zeroizing;

use super::material::{KEY_LEN, VersionMaterial};

pub use self::aead::SealingKeys;
pub use self::datakey::data_key;
pub use self::hmac::{hmac, hmac_matches};
pub use self::sign::{Marshaling, RsaPadding, SignOptions, Signed, sign, verify};

/// Why an operation failed. `User` errors are the caller's (400); `Internal` ones are ours (500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpError {
    User(String),
    Internal(String),
}

impl OpError {
    /// The caller's mistake, with the message the caller sees.
    pub fn user(message: impl Into<String>) -> Self {
        OpError::User(message.into())
    }

    /// The message, whoever is at fault.
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
    /// The context's own data key, for keys with context keys: sealing uses a key derived
    /// from it and the version's key.
    pub data_key: Option<&'a [u8; KEY_LEN]>,
}

/// How a key ring is configured, as far as the operations care.
#[derive(Debug, Clone, Copy)]
pub struct KeyFlags {
    pub derived: bool,
    pub convergent: bool,
}

/// Vault's answer when a derived key is used without a `context`.
pub const MISSING_CONTEXT: &str = "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key";

/// A 256-bit key, wiped when dropped.
type Key = Zeroizing<[u8; KEY_LEN]>;

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

/// The context of a derived key (required and non-empty); `None` for keys used as stored.
fn require_context(flags: KeyFlags, context: Option<&[u8]>) -> Result<Option<&[u8]>, OpError> {
    if !flags.derived {
        return Ok(None);
    }
    match context {
        Some(context) if !context.is_empty() => Ok(Some(context)),
        _ => Err(OpError::user(MISSING_CONTEXT)),
    }
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

/// Encrypts with `version` of a key: under a context's own sealing key for that version when
/// the value has one (`own`), else with the version's key, expanded once across calls in `keys`.
pub fn encrypt_under(
    own: Option<&VersionMaterial>,
    keys: &mut SealingKeys,
    version: &super::KeyVersion,
    flags: KeyFlags,
    plaintext: &[u8],
    inputs: CipherInputs<'_>,
) -> Result<Vec<u8>, OpError> {
    match own {
        // A key of the context's own: nothing to share with the other values.
        Some(sealing) => encrypt(sealing, flags, plaintext, inputs),
        None => encrypt_reusing(
            keys,
            version.number,
            &version.material,
            flags,
            plaintext,
            inputs,
        ),
    }
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
        return rsa_oaep::encrypt(material, plaintext, inputs);
    }
    if !key_type.is_aead() {
        return Err(OpError::user(format!(
            "message encryption not supported for key type {key_type}"
        )));
    }
    aead::seal(keys, version, material, flags, plaintext, inputs)
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
        return rsa_oaep::decrypt(material, payload, inputs);
    }
    if !key_type.is_aead() {
        return Err(OpError::user(format!(
            "message decryption not supported for key type {key_type}"
        )));
    }
    aead::open(material, flags, payload, inputs)
}
