//! Transit key rings: named, versioned keys and the rules for which version serves what.

pub mod contexts;
pub mod db;
mod fresh;
pub mod hash;
pub mod material;
pub mod nonce;
pub mod ops;
pub mod rules;
pub mod store;
pub mod verified;
pub mod wire;

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use vottery_common::transit::{KeyInfo, KeyType, KeyVersionEntry, PublicKeyEntry};

use self::material::VersionMaterial;
use self::ops::{KeyFlags, OpError};

/// A key ring's configuration, as stored.
#[derive(Debug, Clone)]
pub struct KeyConfig {
    pub name: String,
    pub key_type: KeyType,
    pub derived: bool,
    pub convergent_encryption: bool,
    pub exportable: bool,
    pub allow_plaintext_backup: bool,
    pub deletion_allowed: bool,
    pub key_size: Option<u32>,
    pub latest_version: u32,
    pub min_decryption_version: u32,
    pub min_encryption_version: u32,
    pub min_available_version: u32,
    pub auto_rotate_period_secs: i64,
    /// Each context gets its own destroyable data key (see [`contexts`]).
    pub context_keys: bool,
    /// Bumped by every stored change; caches compare it.
    pub generation: i64,
}

/// One unsealed version of a key ring.
#[derive(Debug)]
pub struct KeyVersion {
    pub number: u32,
    pub created_at: DateTime<Utc>,
    pub public_key: Option<String>,
    pub material: VersionMaterial,
}

/// A key ring with the versions still available, unsealed. Immutable: a change replaces it.
#[derive(Debug)]
pub struct KeyRing {
    pub config: KeyConfig,
    pub versions: BTreeMap<u32, KeyVersion>,
}

/// What a version is wanted for; decides the bounds and the error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Encryption,
    Signing,
    Hmac,
}

/// What kind of value carried a version number being checked on the way in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    Ciphertext,
    Signature,
    Hmac,
}

impl KeyRing {
    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn key_type(&self) -> KeyType {
        self.config.key_type
    }

    pub fn flags(&self) -> KeyFlags {
        KeyFlags {
            derived: self.config.derived,
            convergent: self.config.convergent_encryption,
        }
    }

    /// The version to encrypt, sign or HMAC with: `requested` (0 or absent = latest) checked
    /// against the latest and minimum encryption versions, with Vault's messages.
    pub fn version_for(
        &self,
        purpose: Purpose,
        requested: Option<i64>,
    ) -> Result<&KeyVersion, OpError> {
        let latest = i64::from(self.config.latest_version);
        let minimum = i64::from(self.config.min_encryption_version);
        let requested = requested.unwrap_or(0);
        let noun = if purpose == Purpose::Signing {
            "signing"
        } else {
            "encryption"
        };
        if requested < 0 {
            return Err(OpError::user(match purpose {
                Purpose::Hmac => "key version does not exist (cannot be negative)".to_owned(),
                _ => format!("requested version for {noun} is negative"),
            }));
        }
        if requested > latest {
            return Err(OpError::user(match purpose {
                Purpose::Hmac => {
                    format!("key version does not exist; latest key version is {latest}")
                }
                _ => format!("requested version for {noun} is higher than the latest key version"),
            }));
        }
        let version = if requested == 0 { latest } else { requested };
        if version < minimum {
            return Err(OpError::user(match purpose {
                Purpose::Hmac => {
                    "cannot generate HMAC: version is too old (disallowed by policy)".to_owned()
                }
                _ => format!(
                    "requested version for {noun} is less than the minimum {noun} key version"
                ),
            }));
        }
        // Versions below the minimum decryption version are archived: a value made with one
        // could not be opened again.
        if version < i64::from(self.config.min_decryption_version) {
            return Err(OpError::user(format!(
                "key version disallowed by policy (minimum is {})",
                self.config.min_decryption_version
            )));
        }
        self.versions
            .get(&(version as u32))
            .ok_or_else(|| OpError::user("no such key version"))
    }

    /// Whether a value of `version` might be judged wrongly by this snapshot (a newer version,
    /// or a lowered minimum, may exist in storage): the caller reloads before refusing it.
    pub fn may_be_stale_for(&self, version: u32) -> bool {
        version > self.config.latest_version || version < self.config.min_decryption_version
    }

    /// The version that must open a value carrying `version`, with Vault's messages.
    pub fn version_to_open(
        &self,
        incoming: Incoming,
        version: u32,
    ) -> Result<&KeyVersion, OpError> {
        if version > self.config.latest_version {
            return Err(OpError::user(match incoming {
                Incoming::Ciphertext => "invalid ciphertext: version is too new",
                Incoming::Signature => "invalid signature: version is too new",
                Incoming::Hmac => "invalid HMAC: version is too new",
            }));
        }
        if version < self.config.min_decryption_version {
            return Err(OpError::user(match incoming {
                Incoming::Hmac => "cannot verify HMAC: version is too old (disallowed by policy)",
                _ => "ciphertext or signature version is disallowed by policy (too old)",
            }));
        }
        self.versions
            .get(&version)
            .ok_or_else(|| OpError::user("no such key version"))
    }

    /// The read view Vault clients expect.
    pub fn info(&self) -> KeyInfo {
        let config = &self.config;
        let key_type = config.key_type;
        let keys = (key_type != KeyType::Hmac).then(|| {
            self.versions
                .values()
                .filter(|version| version.number >= config.min_decryption_version)
                .map(|version| {
                    let entry = match &version.public_key {
                        Some(public_key) => KeyVersionEntry::Asymmetric(PublicKeyEntry {
                            name: version.material.public_key_name().to_owned(),
                            public_key: if config.derived {
                                String::new()
                            } else {
                                public_key.clone()
                            },
                            certificate_chain: String::new(),
                            creation_time: version
                                .created_at
                                .to_rfc3339_opts(SecondsFormat::Nanos, true),
                        }),
                        None => KeyVersionEntry::Created(version.created_at.timestamp()),
                    };
                    (version.number.to_string(), entry)
                })
                .collect::<BTreeMap<_, _>>()
        });
        KeyInfo {
            name: config.name.clone(),
            key_type,
            derived: config.derived,
            deletion_allowed: config.deletion_allowed,
            exportable: config.exportable,
            allow_plaintext_backup: config.allow_plaintext_backup,
            min_available_version: config.min_available_version,
            min_decryption_version: config.min_decryption_version,
            min_encryption_version: config.min_encryption_version,
            latest_version: config.latest_version,
            supports_encryption: key_type.supports_encryption(),
            supports_decryption: key_type.supports_encryption(),
            supports_signing: key_type.supports_signing(),
            supports_derivation: key_type.supports_derivation(),
            auto_rotate_period: config.auto_rotate_period_secs,
            imported_key: false,
            kdf: config.derived.then(|| "hkdf_sha256".to_owned()),
            key_size: config.key_size.filter(|_| key_type == KeyType::Hmac),
            convergent_encryption: config.convergent_encryption,
            context_keys: config.context_keys,
            keys,
        }
    }
}

/// Valid transit key names: Vault's `\w(([\w-.]+)?\w)?`, at most 128 characters.
pub fn is_valid_key_name(name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let inner = |c: char| word(c) || c == '-' || c == '.';
    !name.is_empty()
        && name.len() <= 128
        && name.chars().next().is_some_and(word)
        && name.chars().last().is_some_and(word)
        && name.chars().all(inner)
}

#[cfg(test)]
impl KeyConfig {
    /// An AES-256-GCM key named `k` at version `latest`, every option off.
    pub(crate) fn aes_for_tests(latest: u32) -> Self {
        KeyConfig {
            name: "k".into(),
            key_type: KeyType::Aes256Gcm96,
            derived: false,
            convergent_encryption: false,
            exportable: false,
            allow_plaintext_backup: false,
            deletion_allowed: false,
            key_size: None,
            latest_version: latest,
            min_decryption_version: 1,
            min_encryption_version: 0,
            min_available_version: 0,
            auto_rotate_period_secs: 0,
            context_keys: false,
            generation: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(latest: u32, min_dec: u32, min_enc: u32) -> KeyRing {
        let mut ring = ring_with_archive(latest, min_dec);
        ring.versions.retain(|number, _| *number >= min_dec);
        ring.config.min_encryption_version = min_enc;
        ring
    }

    /// A ring holding every version from 1, archived ones included (as loaded from storage).
    fn ring_with_archive(latest: u32, min_dec: u32) -> KeyRing {
        let mut versions = BTreeMap::new();
        for number in 1..=latest {
            let encoded = VersionMaterial::generate(KeyType::Aes256Gcm96, 32).unwrap();
            versions.insert(
                number,
                KeyVersion {
                    number,
                    created_at: Utc::now(),
                    public_key: None,
                    material: VersionMaterial::decode(KeyType::Aes256Gcm96, &encoded).unwrap(),
                },
            );
        }
        KeyRing {
            config: KeyConfig {
                min_decryption_version: min_dec,
                ..KeyConfig::aes_for_tests(latest)
            },
            versions,
        }
    }

    #[test]
    fn encryption_uses_the_latest_unless_a_version_is_asked_for() {
        let ring = ring(3, 1, 0);
        assert_eq!(
            ring.version_for(Purpose::Encryption, None).unwrap().number,
            3
        );
        assert_eq!(
            ring.version_for(Purpose::Encryption, Some(2))
                .unwrap()
                .number,
            2
        );
        let err = |requested| {
            ring.version_for(Purpose::Encryption, Some(requested))
                .unwrap_err()
        };
        assert_eq!(
            err(4).message(),
            "requested version for encryption is higher than the latest key version"
        );
        assert_eq!(
            err(-1).message(),
            "requested version for encryption is negative"
        );
    }

    #[test]
    fn minimum_versions_refuse_old_values() {
        let ring = ring(4, 3, 4);
        assert!(ring.version_for(Purpose::Encryption, Some(3)).is_err());
        assert!(ring.version_for(Purpose::Hmac, Some(3)).is_err());
        assert_eq!(
            ring.version_to_open(Incoming::Ciphertext, 2)
                .unwrap_err()
                .message(),
            "ciphertext or signature version is disallowed by policy (too old)"
        );
        assert_eq!(
            ring.version_to_open(Incoming::Ciphertext, 5)
                .unwrap_err()
                .message(),
            "invalid ciphertext: version is too new"
        );
        assert_eq!(
            ring.version_to_open(Incoming::Ciphertext, 3)
                .unwrap()
                .number,
            3
        );
        assert!(ring.may_be_stale_for(5) && ring.may_be_stale_for(2) && !ring.may_be_stale_for(4));
        // Without a minimum encryption version, archived versions still cannot make values.
        let ring = ring_with_archive(3, 2);
        for purpose in [Purpose::Encryption, Purpose::Signing, Purpose::Hmac] {
            assert_eq!(
                ring.version_for(purpose, Some(1)).unwrap_err().message(),
                "key version disallowed by policy (minimum is 2)"
            );
            assert_eq!(ring.version_for(purpose, Some(2)).unwrap().number, 2);
        }
    }

    #[test]
    fn key_names_follow_vaults_pattern() {
        for good in ["a", "users", "vottery-users.pii_v1", "A_1"] {
            assert!(is_valid_key_name(good), "{good}");
        }
        for bad in ["", "-a", "a-", "a/b", "a b", "ü"] {
            assert!(!is_valid_key_name(bad), "{bad}");
        }
    }
}
