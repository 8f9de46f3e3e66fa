//! The transit routes' refusals: every request the caller got wrong, with the message Vault
//! answers (clients match on these texts), written once. A refusal of the whole request is a
//! 400 [`VaultError`]; a refusal of one batch item is an [`OpError::User`] in its result.

use vottery_common::transit::{KeyType, UnknownKeyType};

use crate::error::VaultError;
use crate::keys::ops::OpError;

/// A request, or one item of a batch, refused with Vault's message.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    // Batches
    #[error("missing batch input to process")]
    EmptyBatch,
    #[error("batch_input has {items} items; at most {max} are accepted in one request")]
    BatchTooLarge { items: usize, max: usize },
    #[error("context should be set either in all the request blocks or in none")]
    MixedContext,

    // Key rings
    #[error("encryption key not found")]
    EncryptionKeyNotFound,
    #[error("signing key not found")]
    SigningKeyNotFound,
    #[error("signature verification key not found")]
    VerificationKeyNotFound,
    #[error("key not found")]
    KeyNotFound,
    #[error("no existing key named {0} could be found")]
    NoKeyToConfigure(String),
    /// Trim names a key that does not exist (Vault's wording).
    #[error("invalid key name")]
    NoKeyToTrim,
    #[error(
        "invalid key name: use letters, digits, '_', '-' and '.', starting and ending with a letter or digit"
    )]
    InvalidKeyName,
    #[error("{0}")]
    UnknownKeyType(UnknownKeyType),
    #[error("key type {0} not supported for this operation")]
    KeyTypeNotSupported(KeyType),
    #[error("convergent encryption requires derivation to be enabled, so context is required")]
    ConvergentWithoutContext,
    /// A key rule's own message (see [`crate::keys::rules`]).
    #[error("{0}")]
    Rule(String),

    // Encrypt, decrypt, data keys
    #[error("missing plaintext to encrypt")]
    MissingPlaintext,
    #[error("failed to base64-decode plaintext")]
    PlaintextNotBase64,
    #[error("missing ciphertext to decrypt")]
    MissingCiphertext,
    #[error("invalid ciphertext: could not decode base64")]
    CiphertextNotBase64,
    #[error("Invalid path, must be 'plaintext' or 'wrapped'")]
    DataKeyKind,
    #[error("invalid bit length")]
    DataKeyBits,

    // Context keys
    #[error("missing 'context' to destroy")]
    MissingContextToDestroy,
    #[error("failed to base64-decode context")]
    ContextNotBase64,
    #[error("key {0} was not created with context_keys; its contexts have no keys of their own")]
    WithoutContextKeys(String),

    // Sign, verify, HMAC
    #[error("missing input")]
    MissingInput,
    #[error("missing input for HMAC")]
    MissingHmacInput,
    #[error("unable to decode input as base64")]
    InputNotBase64,
    #[error("invalid base64 signature value")]
    SignatureNotBase64,
    #[error("unable to decode verification HMAC as base64")]
    HmacNotBase64,
    #[error("invalid hash algorithm \"{0}\"")]
    InvalidHashAlgorithm(String),
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    #[error("unsupported rsa signature algorithm {0}")]
    RsaSignatureAlgorithm(String),
    #[error("invalid marshaling type \"{0}\"")]
    MarshalingType(String),
    #[error(
        "salt length {salt} is not supported: RSA-PSS signatures here use a salt as long as the hash ({digest_len} bytes); use 'auto' or 'hash'"
    )]
    SaltLength { salt: String, digest_len: i64 },
    #[error("key type {0} does not support signing")]
    CannotSign(KeyType),
    #[error("provide one of 'signature' or 'hmac'")]
    SignatureAndHmac,
    #[error("neither a 'signature' nor an 'hmac' were given to verify")]
    NothingToVerify,
    #[error("no batch_input elements have 'signature' or 'hmac'")]
    BatchWithoutValues,
    #[error("some elements of batch_input are missing 'signature'")]
    BatchMissingSignature,
    #[error("some elements of batch_input are missing 'hmac'")]
    BatchMissingHmac,
    #[error("elements of batch_input must all provide 'signature' or all provide 'hmac'")]
    BatchMixesValues,

    // Hash, random bytes, export
    #[error("input missing")]
    HashInputMissing,
    #[error("unsupported encoding format {0}; must be \"hex\" or \"base64\"")]
    EncodingFormat(String),
    #[error("unsupported entropy source \"{0}\"; must be \"platform\" or \"seal\", or \"all\"")]
    EntropySource(String),
    #[error("error parsing url-set byte count: {0}")]
    ByteCount(std::num::ParseIntError),
    #[error("'bytes' cannot be less than 1")]
    TooFewBytes,
    #[error("'bytes' should be less than {0}")]
    TooManyBytes(i64),
    #[error("private key material is not exportable from this service")]
    PrivateExport,
    #[error("invalid export type: {0}")]
    ExportType(String),
    #[error("signing not supported for the key")]
    NotAsymmetric,
    #[error("invalid key version")]
    InvalidKeyVersion,
    #[error("version does not exist or cannot be found")]
    NoSuchExportVersion,
}

impl From<Refusal> for VaultError {
    fn from(refusal: Refusal) -> Self {
        VaultError::bad_request(refusal.to_string())
    }
}

impl From<Refusal> for OpError {
    fn from(refusal: Refusal) -> Self {
        OpError::User(refusal.to_string())
    }
}
