//! Bodies of the Vault Transit routes (`/v1/transit/...`).
//!
//! Request types are lenient the way Vault is (numbers and booleans may arrive as strings,
//! unknown fields are ignored). Response types serialize exactly as Vault's do, including which
//! fields are omitted when empty. Binary values travel as standard padded base64.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::flex;

/// The key types a transit key ring can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    Aes256Gcm96,
    Chacha20Poly1305,
    Ed25519,
    EcdsaP256,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    Hmac,
}

impl KeyType {
    pub const ALL: [KeyType; 8] = [
        KeyType::Aes256Gcm96,
        KeyType::Chacha20Poly1305,
        KeyType::Ed25519,
        KeyType::EcdsaP256,
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
        KeyType::Hmac,
    ];

    /// The name Vault uses on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Aes256Gcm96 => "aes256-gcm96",
            KeyType::Chacha20Poly1305 => "chacha20-poly1305",
            KeyType::Ed25519 => "ed25519",
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
            KeyType::Hmac => "hmac",
        }
    }

    /// Symmetric authenticated encryption (takes `associated_data`, supports derivation).
    pub fn is_aead(self) -> bool {
        matches!(self, KeyType::Aes256Gcm96 | KeyType::Chacha20Poly1305)
    }

    pub fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }

    pub fn supports_encryption(self) -> bool {
        self.is_aead() || self.is_rsa()
    }

    pub fn supports_signing(self) -> bool {
        matches!(self, KeyType::Ed25519 | KeyType::EcdsaP256) || self.is_rsa()
    }

    pub fn supports_derivation(self) -> bool {
        self.is_aead() || self == KeyType::Ed25519
    }

    pub fn is_asymmetric(self) -> bool {
        self.supports_signing()
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not one of the key type names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKeyType(pub String);

impl fmt::Display for UnknownKeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown key type {}", self.0)
    }
}

impl std::error::Error for UnknownKeyType {}

impl FromStr for KeyType {
    type Err = UnknownKeyType;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        KeyType::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| UnknownKeyType(text.to_owned()))
    }
}

impl Serialize for KeyType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for KeyType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The schema of a key type: one of the wire names, kept in step with [`KeyType::ALL`].
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for KeyType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(KeyType::ALL.iter().map(|kind| kind.as_str())))
            .description(Some("A key type, by its Vault name."))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for KeyType {}

/// Declares the schema of a string request field that must match a pattern.
macro_rules! pattern_schema {
    ($(#[$doc:meta])* $name:ident, $pattern:literal, $description:literal) => {
        $(#[$doc])*
        #[cfg(feature = "openapi")]
        pub struct $name;

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some($pattern))
                    .description(Some($description))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}
    };
}

pattern_schema!(
    /// The schema of a base64 request field (standard alphabet, padded; unpadded is accepted too).
    Base64,
    "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$",
    "Bytes in base64."
);

pattern_schema!(
    /// The schema of a base64 request field that must not be empty (a context to destroy).
    NonEmptyBase64,
    "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{4}|[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)$",
    "At least one byte, in base64."
);

pattern_schema!(
    /// The schema of a `vault:v<N>:` value sent back to be checked (a signature or an HMAC).
    VersionedValue,
    "^vault:v[1-9][0-9]{0,8}:[A-Za-z0-9+/_-]+={0,2}$",
    "`vault:v<N>:` and the value in base64 (URL-safe for JWS)."
);

// ---------------------------------------------------------------------------------------------
// Key management

/// `POST /v1/transit/keys/:name`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateKeyRequest {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    #[serde(
        default,
        deserialize_with = "flex::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub derived: Option<bool>,
    #[serde(
        default,
        deserialize_with = "flex::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub convergent_encryption: Option<bool>,
    #[serde(
        default,
        deserialize_with = "flex::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub exportable: Option<bool>,
    #[serde(
        default,
        deserialize_with = "flex::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_plaintext_backup: Option<bool>,
    /// Seconds, or text such as `"24h"`.
    #[serde(
        default,
        deserialize_with = "flex::opt_duration_secs",
        skip_serializing_if = "Option::is_none"
    )]
    pub auto_rotate_period: Option<i64>,
    #[serde(
        default,
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub key_size: Option<i64>,
    /// Each distinct `context` gets its own random data key that can be destroyed on its own
    /// (`POST /v1/transit/keys/:name/contexts/destroy`). AEAD types only; not with `derived`.
    #[serde(
        default,
        deserialize_with = "flex::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub context_keys: Option<bool>,
}

/// `POST /v1/transit/keys/:name/config`: only the fields given change.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyConfigRequest {
    #[serde(
        default,
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_decryption_version: Option<i64>,
    #[serde(
        default,
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_encryption_version: Option<i64>,
    #[serde(
        default,
        deserialize_with = "flex::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub deletion_allowed: Option<bool>,
    #[serde(
        default,
        deserialize_with = "flex::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub exportable: Option<bool>,
    #[serde(
        default,
        deserialize_with = "flex::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_plaintext_backup: Option<bool>,
    #[serde(
        default,
        deserialize_with = "flex::opt_duration_secs",
        skip_serializing_if = "Option::is_none"
    )]
    pub auto_rotate_period: Option<i64>,
}

/// `POST /v1/transit/keys/:name/trim`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrimRequest {
    #[serde(
        default,
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = i64, minimum = 1, required = true))]
    pub min_available_version: Option<i64>,
}

/// One version in a key read: its creation time for symmetric keys, or its public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum KeyVersionEntry {
    /// Unix seconds at which the version was created.
    Created(i64),
    Asymmetric(PublicKeyEntry),
}

/// A version of an asymmetric key as shown by a key read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicKeyEntry {
    /// `"ed25519"`, `"P-256"` or `"rsa-2048"`/`"rsa-3072"`/`"rsa-4096"`.
    pub name: String,
    /// Base64 raw key for ed25519, PKIX PEM for ECDSA and RSA.
    pub public_key: String,
    #[serde(default)]
    pub certificate_chain: String,
    /// RFC 3339 creation time.
    pub creation_time: String,
}

/// `GET /v1/transit/keys/:name`: a key ring's configuration and versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub key_type: KeyType,
    pub derived: bool,
    pub deletion_allowed: bool,
    pub exportable: bool,
    pub allow_plaintext_backup: bool,
    pub min_available_version: u32,
    pub min_decryption_version: u32,
    pub min_encryption_version: u32,
    pub latest_version: u32,
    pub supports_encryption: bool,
    pub supports_decryption: bool,
    pub supports_signing: bool,
    pub supports_derivation: bool,
    /// Seconds; 0 when automatic rotation is off.
    pub auto_rotate_period: i64,
    pub imported_key: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kdf: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_size: Option<u32>,
    #[serde(default)]
    pub convergent_encryption: bool,
    /// Whether each context has its own destroyable data key.
    #[serde(default)]
    pub context_keys: bool,
    /// Version number (as text) to its entry; absent for HMAC keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<BTreeMap<String, KeyVersionEntry>>,
}

/// `POST /v1/transit/keys/:name/contexts/destroy`: the context whose data key goes for good.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DestroyContextRequest {
    /// The context, base64, exactly as sent with encrypt and decrypt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = NonEmptyBase64, required = true)
    )]
    pub context: Option<String>,
}

/// The answer to a context's destruction (the same when it was destroyed before).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContextDestroyed {
    /// Always `true`: the context's data key no longer exists.
    pub destroyed: bool,
}

/// `LIST /v1/transit/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyList {
    pub keys: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Encrypt, decrypt, rewrap, data keys

/// `POST /v1/transit/encrypt/:name`: one `plaintext`, or `batch_input`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EncryptRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub plaintext: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub associated_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub context: Option<String>,
    #[serde(
        default,
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub key_version: Option<i64>,
    /// Key type to create when the key does not exist yet (upsert).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    #[serde(
        default,
        deserialize_with = "flex::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub convergent_encryption: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub batch_input: Option<Vec<EncryptItem>>,
    #[serde(
        default,
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub partial_failure_response_code: Option<i64>,
}

/// One item of an encrypt batch.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EncryptItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64, required = true))]
    pub plaintext: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub associated_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub context: Option<String>,
    #[serde(
        default,
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub key_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// A ciphertext and the key version that made it (single encrypt, rewrap and data key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ciphertext {
    pub ciphertext: String,
    pub key_version: u32,
}

/// One result of an encrypt or rewrap batch, in input order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EncryptResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub reference: String,
}

/// `POST /v1/transit/decrypt/:name`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecryptRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub associated_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub batch_input: Option<Vec<DecryptItem>>,
    #[serde(
        default,
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub partial_failure_response_code: Option<i64>,
}

/// One item of a decrypt batch.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecryptItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true))]
    pub ciphertext: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub associated_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// A single decrypt result: the base64 plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Plaintext {
    pub plaintext: String,
}

/// One result of a decrypt batch; `plaintext` is empty when `error` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecryptResult {
    #[serde(default)]
    pub plaintext: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub reference: String,
}

/// `POST /v1/transit/rewrap/:name`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RewrapRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub associated_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub context: Option<String>,
    #[serde(
        default,
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub key_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub batch_input: Option<Vec<RewrapItem>>,
}

/// One item of a rewrap batch.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RewrapItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true))]
    pub ciphertext: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub associated_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub context: Option<String>,
    #[serde(
        default,
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub key_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// `POST /v1/transit/datakey/{plaintext|wrapped}/:name`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DataKeyRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub context: Option<String>,
    #[serde(
        default,
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub bits: Option<i64>,
    #[serde(
        default,
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub key_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub associated_data: Option<String>,
}

/// A new data key: always wrapped, and in plaintext too when asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DataKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<String>,
    pub ciphertext: String,
    pub key_version: u32,
}

// ---------------------------------------------------------------------------------------------
// Sign, verify, HMAC

/// `POST /v1/transit/sign/:name(/:hash_algorithm)`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub context: Option<String>,
    #[serde(
        default,
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub key_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_algorithm: Option<String>,
    /// Deprecated spelling of `hash_algorithm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    #[serde(
        default,
        deserialize_with = "flex::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub prehashed: Option<bool>,
    /// `pss` (default) or `pkcs1v15`, RSA keys only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_algorithm: Option<String>,
    /// `asn1` (default) or `jws`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marshaling_algorithm: Option<String>,
    /// `auto`, `hash`, or a number of bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt_length: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub batch_input: Option<Vec<SignItem>>,
}

/// One item of a sign batch.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64, required = true))]
    pub input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// A single signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Signature {
    pub signature: String,
    pub key_version: u32,
    /// The derived public key, for derived ed25519 keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// One result of a sign batch (`key_version` is 0 on error, as in Vault).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default)]
    pub key_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publickey: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub reference: String,
}

/// `POST /v1/transit/verify/:name(/:hash_algorithm)`: a `signature` or an `hmac` to check.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = VersionedValue))]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = VersionedValue))]
    pub hmac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_algorithm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    #[serde(
        default,
        deserialize_with = "flex::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub prehashed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_algorithm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marshaling_algorithm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt_length: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub batch_input: Option<Vec<VerifyItem>>,
}

/// One item of a verify batch.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = VersionedValue))]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = VersionedValue))]
    pub hmac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// A single verification result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Verification {
    pub valid: bool,
}

/// One result of a verify batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyResult {
    #[serde(default)]
    pub valid: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub reference: String,
}

/// `POST /v1/transit/hmac/:name(/:algorithm)`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HmacRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64))]
    pub input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^(sha2-(224|256|384|512)|sha3-(224|256|384|512))$")
    )]
    pub algorithm: Option<String>,
    #[serde(
        default,
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub key_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub batch_input: Option<Vec<HmacItem>>,
}

/// One item of an HMAC batch.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HmacItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64, required = true))]
    pub input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// A single HMAC, `vault:v<N>:<base64>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Hmac {
    pub hmac: String,
}

/// One result of an HMAC batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HmacResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub reference: String,
}

/// Results of any batch operation, in input order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchResults<T> {
    pub batch_results: Vec<T>,
}

// ---------------------------------------------------------------------------------------------
// Hash and random bytes

/// `POST /v1/transit/hash(/:algorithm)`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HashRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Base64, required = true))]
    pub input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^(sha2-(224|256|384|512)|sha3-(224|256|384|512))$")
    )]
    pub algorithm: Option<String>,
    /// `hex` (default) or `base64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^(hex|base64)$"))]
    pub format: Option<String>,
}

/// A digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HashSum {
    pub sum: String,
}

/// `POST /v1/transit/random(/:source)(/:bytes)`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RandomRequest {
    #[serde(
        default,
        deserialize_with = "flex::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub bytes: Option<i64>,
    /// `base64` (default) or `hex`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^(hex|base64)$"))]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Random bytes in the requested encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RandomBytes {
    pub random_bytes: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_types_round_trip_through_their_wire_names() {
        for kind in KeyType::ALL {
            assert_eq!(kind.as_str().parse::<KeyType>(), Ok(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(serde_json::from_str::<KeyType>(&json).unwrap(), kind);
        }
        assert_eq!(
            "aes128-gcm96".parse::<KeyType>().unwrap_err().to_string(),
            "unknown key type aes128-gcm96"
        );
    }

    #[test]
    fn batch_results_keep_vaults_field_presence() {
        let ok = EncryptResult {
            ciphertext: Some("vault:v1:AA==".into()),
            key_version: Some(1),
            error: None,
            reference: String::new(),
        };
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"ciphertext":"vault:v1:AA==","key_version":1,"reference":""}"#
        );
        let failed = DecryptResult {
            error: Some("bad".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&failed).unwrap(),
            r#"{"plaintext":"","error":"bad","reference":""}"#
        );
    }

    #[test]
    fn key_versions_read_as_timestamps_or_public_keys() {
        let json = r#"{"1":1442851412,"2":{"name":"ed25519","public_key":"AAA=","creation_time":"2024-01-01T00:00:00Z"}}"#;
        let keys: BTreeMap<String, KeyVersionEntry> = serde_json::from_str(json).unwrap();
        assert_eq!(keys["1"], KeyVersionEntry::Created(1_442_851_412));
        assert!(matches!(keys["2"], KeyVersionEntry::Asymmetric(_)));
    }
}
