//! Record signatures checked in user-svc with the public halves of the signing key.
//!
//! Checking a signature needs no secret: security-svc signs, and anyone holding the public key
//! verifies. user-svc reads the key's versions from security-svc (`GET /v1/transit/keys/:name`)
//! and checks Ed25519 signatures itself, so a read waits on one call to security-svc (decrypt)
//! instead of two. The rules are the ones security-svc's `verify` applies: the signature's
//! version must exist and be at least the key's `min_decryption_version`.
//!
//! The versions are read again when they are older than `refresh`, at once when a signature
//! names a version newer than the latest one known (a rotation; at most once a second for a
//! version that is still unknown), and when a check fails on versions read more than a second
//! ago (a key deleted and created again). Concurrent checks share one read. So a rotation is
//! picked up on first use, and a retired version or a deleted key stops verifying within
//! `refresh`. A key of another type, a derived key, a token that may not read the key, or a
//! `refresh` of zero leaves the checks to security-svc's `verify`.
//!
//! Valid signatures are remembered ([`RememberedChecks`]) under the SHA-256 of the public key,
//! the record digest and the signature.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use ring::digest::{Context, SHA256};
use ring::signature::{ED25519, UnparsedPublicKey};
use vottery_common::client::{Call, ClientError};
use vottery_common::remembered::{Digest, RememberedChecks};
use vottery_common::transit::{KeyInfo, KeyType, KeyVersionEntry};

/// How soon after a read of the versions a failed check may read them again.
const RECHECK_AFTER: Duration = Duration::from_secs(1);

/// What the signing key's versions allow.
#[derive(Debug)]
enum Versions {
    /// Ed25519 public keys by version, from `min_decryption_version` to `latest_version`.
    Ed25519 {
        latest: u32,
        keys: HashMap<u32, Vec<u8>>,
    },
    /// The key cannot be checked here; security-svc's `verify` does it.
    Remote,
}

#[derive(Debug)]
struct Snapshot {
    read_at: Instant,
    /// Read because a signature named a version newer than the latest known.
    for_newer_version: bool,
    versions: Versions,
}

impl Snapshot {
    fn age(&self) -> Duration {
        self.read_at.elapsed()
    }
}

/// Whether the versions must be read again, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reread {
    No,
    Due,
    /// A signature names a version newer than the latest known.
    ForNewerVersion,
}

/// A record signature as stored: `vault:v<N>:<base64 signature>`.
struct Signature {
    version: u32,
    bytes: Vec<u8>,
}

/// Read as security-svc reads it: `v0` means version 1, and the base64 may be unpadded.
fn parse(signature: &str) -> Option<Signature> {
    let (version, encoded) = signature.strip_prefix("vault:v")?.split_once(':')?;
    let version: u32 = version.parse().ok()?;
    Some(Signature {
        version: version.max(1),
        bytes: STANDARD
            .decode(encoded)
            .or_else(|_| STANDARD_NO_PAD.decode(encoded))
            .ok()?,
    })
}

fn versions_of(key: KeyInfo) -> Versions {
    if key.key_type != KeyType::Ed25519 || key.derived {
        return Versions::Remote;
    }
    let keys = key
        .keys
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(version, entry)| {
            let version: u32 = version.parse().ok()?;
            let KeyVersionEntry::Asymmetric(entry) = entry else {
                return None;
            };
            let public_key = STANDARD.decode(entry.public_key).ok()?;
            (version >= key.min_decryption_version && version <= key.latest_version)
                .then_some((version, public_key))
        })
        .collect();
    Versions::Ed25519 {
        latest: key.latest_version,
        keys,
    }
}

fn question(public_key: &[u8], digest: &[u8; 32], signature: &[u8]) -> Digest {
    let mut context = Context::new(&SHA256);
    for field in [public_key, digest, signature] {
        context.update(&(field.len() as u64).to_be_bytes());
        context.update(field);
    }
    let mut question = [0u8; 32];
    question.copy_from_slice(context.finish().as_ref());
    question
}

/// The signing key's public versions, as last read, and the signatures found valid.
#[derive(Debug)]
pub struct RecordKeys {
    name: String,
    refresh: Duration,
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    /// One read of the versions at a time; the others wait for its result. Holds when the
    /// last read failed, and why, so that the waiters share the failure instead of each
    /// trying again in turn.
    reading: tokio::sync::Mutex<Option<(Instant, ClientError)>>,
    remembered: RememberedChecks,
}

impl RecordKeys {
    pub fn new(name: &str, refresh: Duration, remembered: usize) -> Self {
        Self {
            name: name.to_owned(),
            refresh,
            snapshot: RwLock::new(None),
            reading: tokio::sync::Mutex::new(None),
            remembered: RememberedChecks::new(remembered),
        }
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        self.snapshot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The versions, read again when `reread` says the current ones will not do.
    async fn snapshot(
        &self,
        call: Call<'_>,
        reread: impl Fn(&Snapshot) -> Reread,
    ) -> Result<Arc<Snapshot>, ClientError> {
        let usable = |current: &Arc<Snapshot>| reread(current) == Reread::No;
        if let Some(current) = self.current().filter(usable) {
            return Ok(current);
        }
        let waited_from = Instant::now();
        let mut last_failure = self.reading.lock().await;
        // Another request may have read them, or failed to, while this one waited.
        let current = self.current();
        if let Some(current) = current.clone().filter(usable) {
            return Ok(current);
        }
        let for_newer_version =
            current.is_some_and(|current| reread(&current) == Reread::ForNewerVersion);
        if let Some((at, error)) = last_failure.as_ref()
            && *at >= waited_from
        {
            return Err(error.clone());
        }
        // Counted from before the read, so that a rotation during it is not taken as seen.
        let read_at = Instant::now();
        let versions = match self.read_versions(call).await {
            Ok(versions) => versions,
            Err(error) => {
                *last_failure = Some((Instant::now(), error.clone()));
                return Err(error);
            }
        };
        *last_failure = None;
        let snapshot = Arc::new(Snapshot {
            read_at,
            for_newer_version,
            versions,
        });
        *self
            .snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(snapshot.clone());
        Ok(snapshot)
    }

    /// Reads the signing key's public versions; [`Versions::Remote`] when user-svc's token may
    /// not read them.
    async fn read_versions(&self, call: Call<'_>) -> Result<Versions, ClientError> {
        match call.read_key(&self.name).await {
            Ok(key) => Ok(versions_of(key)),
            Err(ClientError::Forbidden) => {
                tracing::warn!(
                    key = %self.name,
                    "user-svc's token may not read the signing key; record signatures are checked by security-svc"
                );
                Ok(Versions::Remote)
            }
            Err(error) => Err(error),
        }
    }

    /// Checks record signatures over their digests; `None` when security-svc must check them
    /// (always, when `refresh` is zero).
    pub async fn verify(
        &self,
        call: Call<'_>,
        items: &[([u8; 32], &str)],
    ) -> Result<Option<Vec<bool>>, ClientError> {
        if self.refresh.is_zero() {
            return Ok(None);
        }
        let signatures: Vec<Option<Signature>> = items
            .iter()
            .map(|(_, signature)| parse(signature))
            .collect();
        let newest = signatures.iter().flatten().map(|s| s.version).max();
        let started = Instant::now();
        // A version newer than the latest known means a rotation since the last read, unless
        // the versions were read while this check waited, or were read less than a second ago
        // for a newer version (a forged version number asks for at most one read a second).
        let snapshot = self
            .snapshot(call, |snapshot| self.reread_for(snapshot, newest, started))
            .await?;
        let Some(valid) = self.check(&snapshot, items, &signatures) else {
            return Ok(None);
        };
        if !valid.contains(&false) || snapshot.age() < RECHECK_AFTER {
            return Ok(Some(valid));
        }
        // A failure on versions over a second old: read them again once (a key deleted and
        // created again). If that read fails, the answers already found stand.
        match self
            .snapshot(call, |snapshot| {
                if snapshot.age() >= RECHECK_AFTER {
                    Reread::Due
                } else {
                    Reread::No
                }
            })
            .await
        {
            Ok(fresh) => Ok(self.check(&fresh, items, &signatures)),
            Err(_) => Ok(Some(valid)),
        }
    }

    /// Whether versions must be read again to check signatures naming `newest`, for a check
    /// that started at `started`.
    fn reread_for(&self, snapshot: &Snapshot, newest: Option<u32>, started: Instant) -> Reread {
        let names_newer = match (&snapshot.versions, newest) {
            (Versions::Ed25519 { latest, .. }, Some(newest)) => {
                newest > *latest
                    && snapshot.read_at < started
                    && !(snapshot.for_newer_version && snapshot.age() < RECHECK_AFTER)
            }
            _ => false,
        };
        if names_newer {
            Reread::ForNewerVersion
        } else if snapshot.age() >= self.refresh {
            Reread::Due
        } else {
            Reread::No
        }
    }

    fn check(
        &self,
        snapshot: &Snapshot,
        items: &[([u8; 32], &str)],
        signatures: &[Option<Signature>],
    ) -> Option<Vec<bool>> {
        let Versions::Ed25519 { keys, .. } = &snapshot.versions else {
            return None;
        };
        let valid = items
            .iter()
            .zip(signatures)
            .map(|((digest, _), signature)| {
                let Some(signature) = signature else {
                    return false;
                };
                let Some(public_key) = keys.get(&signature.version) else {
                    return false;
                };
                self.remembered
                    .check(
                        || question(public_key, digest, &signature.bytes),
                        || {
                            Ok::<_, std::convert::Infallible>(
                                UnparsedPublicKey::new(&ED25519, public_key)
                                    .verify(digest, &signature.bytes)
                                    .is_ok(),
                            )
                        },
                    )
                    .unwrap_or(false)
            })
            .collect();
        Some(valid)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ring::rand::SystemRandom;
    use ring::signature::{Ed25519KeyPair, KeyPair};
    use vottery_common::transit::PublicKeyEntry;

    use super::*;

    fn pair() -> Ed25519KeyPair {
        let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(document.as_ref()).unwrap()
    }

    fn key_info(key_type: KeyType, pairs: &[&Ed25519KeyPair], min_decryption: u32) -> KeyInfo {
        let keys: BTreeMap<String, KeyVersionEntry> = pairs
            .iter()
            .enumerate()
            .map(|(index, pair)| {
                (
                    (index + 1).to_string(),
                    KeyVersionEntry::Asymmetric(PublicKeyEntry {
                        name: "ed25519".into(),
                        public_key: STANDARD.encode(pair.public_key().as_ref()),
                        certificate_chain: String::new(),
                        creation_time: "2026-01-01T00:00:00Z".into(),
                    }),
                )
            })
            .collect();
        serde_json::from_value::<KeyInfo>(serde_json::json!({
            "name": "vottery-users-records",
            "type": key_type.as_str(),
            "derived": false,
            "deletion_allowed": false,
            "exportable": false,
            "allow_plaintext_backup": false,
            "min_available_version": 0,
            "min_decryption_version": min_decryption,
            "min_encryption_version": 0,
            "latest_version": pairs.len(),
            "supports_encryption": false,
            "supports_decryption": false,
            "supports_signing": true,
            "supports_derivation": false,
            "auto_rotate_period": 0,
            "imported_key": false,
            "keys": keys,
        }))
        .unwrap()
    }

    fn signed(pair: &Ed25519KeyPair, version: u32, digest: &[u8; 32]) -> String {
        format!(
            "vault:v{version}:{}",
            STANDARD.encode(pair.sign(digest).as_ref())
        )
    }

    fn snapshot(versions: Versions) -> Snapshot {
        Snapshot {
            read_at: Instant::now(),
            for_newer_version: false,
            versions,
        }
    }

    fn check(keys: &RecordKeys, snapshot: &Snapshot, items: &[([u8; 32], &str)]) -> Vec<bool> {
        let signatures: Vec<_> = items.iter().map(|(_, s)| parse(s)).collect();
        keys.check(snapshot, items, &signatures).unwrap()
    }

    #[test]
    fn signatures_check_against_the_version_they_name() {
        let (first, second) = (pair(), pair());
        let versions = snapshot(versions_of(key_info(
            KeyType::Ed25519,
            &[&first, &second],
            1,
        )));
        let keys = RecordKeys::new("vottery-users-records", Duration::from_secs(5), 100);
        let digest = [7u8; 32];
        let by_first = signed(&first, 1, &digest);
        let by_second = signed(&second, 2, &digest);
        let mislabelled = signed(&first, 2, &digest);
        let unknown = signed(&second, 3, &digest);
        let tampered_digest = [8u8; 32];
        // As security-svc reads them: version 0 is version 1, base64 may be unpadded.
        let as_v0 = by_first.replacen("vault:v1:", "vault:v0:", 1);
        let unpadded = by_first.trim_end_matches('=').to_owned();
        let items = [
            (digest, as_v0.as_str()),
            (digest, unpadded.as_str()),
            (digest, by_first.as_str()),
            (digest, by_second.as_str()),
            (digest, mislabelled.as_str()),
            (digest, unknown.as_str()),
            (tampered_digest, by_first.as_str()),
            (digest, "vault:v1:not-base64!"),
            (digest, "v1:AAAA"),
        ];
        let expected = [true, true, true, true, false, false, false, false, false];
        assert_eq!(check(&keys, &versions, &items), expected);
        // Answered again from memory, with the same outcome.
        assert_eq!(keys.remembered.len(), 2);
        assert_eq!(check(&keys, &versions, &items), expected);
    }

    #[test]
    fn versions_below_min_decryption_version_do_not_verify() {
        let (first, second) = (pair(), pair());
        let keys = RecordKeys::new("vottery-users-records", Duration::from_secs(5), 100);
        let digest = [1u8; 32];
        let old = signed(&first, 1, &digest);
        let open = snapshot(versions_of(key_info(
            KeyType::Ed25519,
            &[&first, &second],
            1,
        )));
        assert_eq!(check(&keys, &open, &[(digest, old.as_str())]), [true]);
        // Remembered, yet refused once the version is retired.
        let retired = snapshot(versions_of(key_info(
            KeyType::Ed25519,
            &[&first, &second],
            2,
        )));
        assert_eq!(check(&keys, &retired, &[(digest, old.as_str())]), [false]);
    }

    #[test]
    fn a_remembered_signature_does_not_vouch_for_another_public_key() {
        let (first, impostor) = (pair(), pair());
        let keys = RecordKeys::new("vottery-users-records", Duration::from_secs(5), 100);
        let digest = [3u8; 32];
        let signature = signed(&first, 1, &digest);
        let genuine = snapshot(versions_of(key_info(KeyType::Ed25519, &[&first], 1)));
        assert_eq!(
            check(&keys, &genuine, &[(digest, signature.as_str())]),
            [true]
        );
        // The key deleted and created again under the same name: version 1 is another key.
        let recreated = snapshot(versions_of(key_info(KeyType::Ed25519, &[&impostor], 1)));
        assert_eq!(
            check(&keys, &recreated, &[(digest, signature.as_str())]),
            [false]
        );
    }

    #[test]
    fn other_key_types_are_left_to_security_svc() {
        let keys = RecordKeys::new("vottery-users-records", Duration::from_secs(5), 100);
        let other = snapshot(versions_of(key_info(KeyType::EcdsaP256, &[], 1)));
        assert!(matches!(other.versions, Versions::Remote));
        assert!(
            keys.check(&other, &[([0u8; 32], "vault:v1:AAAA")], &[None])
                .is_none()
        );
    }
}
