//! Per-context data keys that can be destroyed one context at a time (crypto-shredding).
//!
//! A key ring with `context_keys` gives each distinct `context` its own random 256-bit data key,
//! made on first encrypt and stored wrapped under the ring's version of the time. Values are
//! sealed with a key derived from both the version's key and the context's data key, so
//! rotation, rewrap and minimum versions work as for any key, and destroying the data key
//! makes every value under that context unreadable for good, wherever copies of it are.
//! Rows are found by a keyed hash of the context; the context itself is never stored.
//! A destroyed context leaves a tombstone, so a later encrypt cannot make it again.
//!
//! A request resolves each distinct context it names once: from this instance's cache, else
//! with one statement for all of them (reading them, or for encrypt making the missing ones).
//! Each context's sealing key is derived once per key version and kept with its cached data
//! key, not derived again per request or value.
//!
//! A destruction evicts only its context: at once on the instance that destroyed it, and on
//! the others at their next key refresh, which looks for contexts destroyed since the last.

mod cache;
pub(super) mod db;
mod destroyed;
mod making;
mod sealing;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use ring::hmac as ring_hmac;
use zeroize::Zeroizing;

pub use self::cache::{ContextKey, ContextKeyCache, Destructions};
use self::destroyed::DestroyedWatch;
pub use self::sealing::ContextDataKey;
use super::KeyRing;
use super::material::{KEY_LEN, random_bytes};
use super::ops::{self, CipherInputs, KeyFlags, OpError};
use super::store::{KeyStore, StoreError};
use super::wire::decode_optional;
use crate::seal::barrier::RootKey;

/// The answer under a context whose data key was destroyed.
pub const CONTEXT_DESTROYED: &str = "context destroyed";
/// The answer when a value names a context that never had a data key.
pub const NO_CONTEXT_KEY: &str = "no data key exists for this context";
/// The answer when a `context_keys` key is used without a context.
pub const MISSING_CONTEXT_KEY_CONTEXT: &str = "missing 'context': the key was created with context_keys, so every encrypt, decrypt and rewrap must include the context its data key belongs to";

const HASH_KEY_LABEL: &[u8] = b"vottery-security/context-hash-key";
const WRAP_AAD_LABEL: &[u8] = b"vottery-security/context-key";

/// A keyed hash (HMAC-SHA256) of a key name and a context: how a context's row is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContextHash(pub [u8; 32]);

impl ContextHash {
    /// A short hex form for logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }
}

/// Hashes contexts under a key derived from the root key, so the hash reveals nothing.
pub struct ContextHasher(ring_hmac::Key);

impl ContextHasher {
    pub fn new(root: &RootKey) -> Self {
        let root = ring_hmac::Key::new(ring_hmac::HMAC_SHA256, root.expose());
        let derived = ring_hmac::sign(&root, HASH_KEY_LABEL);
        Self(ring_hmac::Key::new(
            ring_hmac::HMAC_SHA256,
            derived.as_ref(),
        ))
    }

    pub fn hash(&self, name: &str, context: &[u8]) -> ContextHash {
        let mut mac = ring_hmac::Context::with_key(&self.0);
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(context);
        let mut hash = [0u8; 32];
        hash.copy_from_slice(mac.sign().as_ref());
        ContextHash(hash)
    }
}

/// An instance's context-key state: the hasher, the cache of unwrapped keys, and how far it
/// has looked for destructions made by other instances.
pub struct ContextState {
    pub hasher: ContextHasher,
    pub cache: ContextKeyCache,
    destroyed: DestroyedWatch,
    makers: making::Makers,
}

impl ContextState {
    pub fn new(root: &RootKey, cache_capacity: usize) -> Self {
        Self {
            hasher: ContextHasher::new(root),
            cache: ContextKeyCache::new(cache_capacity),
            destroyed: DestroyedWatch::default(),
            makers: making::Makers::default(),
        }
    }
}

/// What a request may do with a context that has no data key yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextUse {
    /// Encrypt: make one.
    Create,
    /// Decrypt and rewrap: there must be one.
    Read,
}

/// The data keys of the contexts one request uses, resolved before its items run.
#[derive(Default)]
pub struct ContextKeys {
    active: bool,
    keys: HashMap<Vec<u8>, Result<Arc<ContextDataKey>, OpError>>,
}

impl ContextKeys {
    /// The data key for an item's decoded context; `None` for keys without context keys.
    pub fn key_for(&self, context: Option<&[u8]>) -> Result<Option<Arc<ContextDataKey>>, OpError> {
        if !self.active {
            return Ok(None);
        }
        let context = context
            .filter(|context| !context.is_empty())
            .ok_or_else(|| OpError::user(MISSING_CONTEXT_KEY_CONTEXT))?;
        match self.keys.get(context) {
            Some(found) => found.clone().map(Some),
            None => Err(OpError::Internal("context key not resolved".into())),
        }
    }
}

fn wrap_aad(name: &str, hash: ContextHash) -> Vec<u8> {
    [WRAP_AAD_LABEL, &[0], name.as_bytes(), &[0], &hash.0].concat()
}

const AS_STORED: KeyFlags = KeyFlags {
    derived: false,
    convergent: false,
};

/// A fresh data key and the same wrapped under the ring's latest version (`wrapped_under`).
struct FreshKey {
    key: ContextKey,
    wrapped: Vec<u8>,
}

fn fresh_key(
    ring: &KeyRing,
    rng: &ring::rand::SystemRandom,
    hash: ContextHash,
) -> Result<FreshKey, StoreError> {
    let version = wrapped_under(ring)?;
    let key = random_bytes::<KEY_LEN>(rng)?;
    let aad = wrap_aad(ring.name(), hash);
    let inputs = CipherInputs {
        associated_data: Some(&aad),
        ..CipherInputs::default()
    };
    let wrapped = ops::encrypt(&version.material, AS_STORED, key.as_ref(), inputs)
        .map_err(|error| StoreError::Internal(error.message().to_owned()))?;
    Ok(FreshKey {
        key: Arc::new(key),
        wrapped,
    })
}

/// The version new data keys are wrapped under: the latest.
fn wrapped_under(ring: &KeyRing) -> Result<&super::KeyVersion, StoreError> {
    ring.versions
        .get(&ring.config.latest_version)
        .ok_or_else(|| StoreError::Internal("latest version missing".into()))
}

/// A context's row as read, by hash: its version and wrapped key (`None`: destroyed).
type StoredRows = HashMap<ContextHash, (u32, Option<Vec<u8>>)>;

fn context_hash(bytes: &[u8]) -> Option<ContextHash> {
    bytes.try_into().ok().map(ContextHash)
}

/// Opens a data key wrapped under `version` of the ring.
fn unwrap_key(
    ring: &KeyRing,
    hash: ContextHash,
    version: u32,
    wrapped: &[u8],
) -> Result<ContextKey, StoreError> {
    let failed = || {
        StoreError::Internal(format!(
            "the data key of context {} of key {} cannot be opened with version {version}",
            hash.short(),
            ring.name()
        ))
    };
    let material = &ring.versions.get(&version).ok_or_else(failed)?.material;
    let aad = wrap_aad(ring.name(), hash);
    let inputs = CipherInputs {
        associated_data: Some(&aad),
        ..CipherInputs::default()
    };
    let plain = ops::decrypt(material, AS_STORED, wrapped, inputs).map_err(|_| failed())?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if plain.len() != KEY_LEN {
        return Err(failed());
    }
    key.copy_from_slice(&plain);
    Ok(Arc::new(key))
}

impl KeyStore {
    /// The data keys of the distinct contexts a request names (undecodable ones are left to
    /// the items to refuse). Empty and inactive for keys without `context_keys`.
    pub async fn context_keys<'a>(
        &self,
        ring: &Arc<KeyRing>,
        contexts: impl IntoIterator<Item = Option<&'a str>>,
        usage: ContextUse,
    ) -> Result<ContextKeys, StoreError> {
        if !ring.config.context_keys {
            return Ok(ContextKeys::default());
        }
        let state = self.context_state();
        let mut named = HashSet::new();
        for context in contexts.into_iter().flatten() {
            if let Ok(Some(context)) = decode_optional(Some(context))
                && !context.is_empty()
            {
                named.insert(context);
            }
        }
        let mut keys = HashMap::with_capacity(named.len());
        let mut missing = BTreeMap::new();
        for context in named {
            let hash = state.hasher.hash(ring.name(), &context);
            match state.cache.get(hash, ring.config.generation) {
                Some(key) => {
                    keys.insert(context, Ok(key));
                }
                None => {
                    missing.insert(hash, context);
                }
            }
        }
        if !missing.is_empty() {
            let mut found = self.stored_context_keys(ring, &missing, usage).await?;
            for (hash, context) in missing {
                let key = found
                    .remove(&hash)
                    .unwrap_or_else(|| Err(OpError::user(NO_CONTEXT_KEY)));
                keys.insert(context, key);
            }
        }
        Ok(ContextKeys { active: true, keys })
    }

    /// The data keys of contexts not in the cache: read in one statement, and for
    /// [`ContextUse::Create`] the missing ones made in the same statement. Those absent (for
    /// `Read`) are left out; destroyed ones answer [`CONTEXT_DESTROYED`].
    async fn stored_context_keys(
        &self,
        ring: &Arc<KeyRing>,
        missing: &BTreeMap<ContextHash, Vec<u8>>,
        usage: ContextUse,
    ) -> Result<HashMap<ContextHash, Result<Arc<ContextDataKey>, OpError>>, StoreError> {
        let state = self.context_state();
        let read_after = state.cache.destructions();
        let generation = ring.config.generation;
        let hashes: Vec<Vec<u8>> = missing.keys().map(|hash| hash.0.to_vec()).collect();
        let mut keys = HashMap::with_capacity(missing.len());
        let mut stored = StoredRows::new();
        match usage {
            ContextUse::Read => {
                let mut conn = self.connection().await?;
                for row in db::find_many(&mut conn, ring.name(), &hashes).await? {
                    if let Some(hash) = context_hash(&row.context_hash) {
                        stored.insert(hash, (row.version as u32, row.wrapped_key));
                    }
                }
            }
            ContextUse::Create => {
                let rng = ring::rand::SystemRandom::new();
                let mut fresh = HashMap::with_capacity(missing.len());
                for hash in missing.keys() {
                    fresh.insert(*hash, fresh_key(ring, &rng, *hash)?);
                }
                let wrapped: Vec<(ContextHash, Vec<u8>)> = fresh
                    .iter()
                    .map(|(hash, fresh)| (*hash, fresh.wrapped.clone()))
                    .collect();
                let version = wrapped_under(ring)?.number as i32;
                let answer = self.make_contexts(ring.name(), version, wrapped).await?;
                for row in answer {
                    let Some(hash) = context_hash(&row.context_hash) else {
                        continue;
                    };
                    match fresh.remove(&hash) {
                        Some(made) if row.made => {
                            let key = ContextDataKey::new(made.key);
                            state.cache.put(hash, key.clone(), generation, read_after);
                            keys.insert(hash, Ok(key));
                        }
                        _ => {
                            stored.insert(hash, (row.version as u32, row.wrapped_key));
                        }
                    }
                }
                // Made by a concurrent request after this statement began: read it now.
                let raced: Vec<Vec<u8>> = missing
                    .keys()
                    .filter(|hash| !keys.contains_key(*hash) && !stored.contains_key(*hash))
                    .map(|hash| hash.0.to_vec())
                    .collect();
                if !raced.is_empty() {
                    let mut conn = self.connection().await?;
                    for row in db::find_many(&mut conn, ring.name(), &raced).await? {
                        if let Some(hash) = context_hash(&row.context_hash) {
                            stored.insert(hash, (row.version as u32, row.wrapped_key));
                        }
                    }
                }
            }
        }
        if stored.is_empty() {
            return Ok(keys);
        }
        let versions = stored.values().map(|(version, _)| *version);
        let opening = self.fresh_for_values(ring.clone(), versions).await?;
        for (hash, (version, wrapped)) in stored {
            let Some(wrapped) = wrapped else {
                keys.insert(hash, Err(OpError::user(CONTEXT_DESTROYED)));
                continue;
            };
            let key = ContextDataKey::new(unwrap_key(&opening, hash, version, &wrapped)?);
            state.cache.put(hash, key.clone(), generation, read_after);
            keys.insert(hash, Ok(key));
        }
        Ok(keys)
    }

    /// Destroys a context's data key for good (a tombstone stays): here at once, on every
    /// other instance at its next key refresh. Destroying it again changes nothing.
    pub async fn destroy_context(
        &self,
        ring: &KeyRing,
        context: &[u8],
    ) -> Result<ContextHash, StoreError> {
        let name = ring.name();
        let state = self.context_state();
        let hash = state.hasher.hash(name, context);
        let version = ring.config.latest_version as i32;
        let mut conn = self.connection().await?;
        db::tombstone(&mut conn, name, &hash.0, version).await?;
        drop(conn);
        state.cache.destroyed([hash]);
        Ok(hash)
    }

    /// Evicts the cached keys of contexts other instances destroyed since the last look;
    /// answers how many were new. Runs with the key refresh.
    pub async fn evict_destroyed_contexts(&self) -> Result<usize, StoreError> {
        let state = self.context_state();
        let since = state.destroyed.since();
        let mut conn = self.connection().await?;
        let answer = db::destroyed_since(&mut conn, since).await?;
        drop(conn);
        let newly = state.destroyed.saw(&answer);
        let count = newly.len();
        if count > 0 {
            state.cache.destroyed(newly);
        }
        Ok(count)
    }
}
