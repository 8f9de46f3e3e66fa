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
//! Destruction bumps the ring's generation: other instances reload the ring within the
//! refresh interval, and cached data keys read under an older generation are read again.

mod cache;
pub(super) mod db;

use std::collections::HashMap;
use std::sync::Arc;

use diesel_async::AsyncConnection;
use ring::hmac as ring_hmac;
use zeroize::Zeroizing;

pub use self::cache::{ContextKey, ContextKeyCache};
use self::db::ContextRow;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// An instance's context-key state: the hasher and the cache of unwrapped keys.
pub struct ContextState {
    pub hasher: ContextHasher,
    pub cache: ContextKeyCache,
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
    keys: HashMap<Vec<u8>, Result<ContextKey, OpError>>,
}

impl ContextKeys {
    /// The data key for an item's decoded context; `None` for keys without context keys.
    pub fn key_for(&self, context: Option<&[u8]>) -> Result<Option<ContextKey>, OpError> {
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

/// A fresh data key wrapped under the ring's latest version.
fn new_row(ring: &KeyRing, hash: ContextHash) -> Result<ContextRow, StoreError> {
    let latest = ring.config.latest_version;
    let version = ring
        .versions
        .get(&latest)
        .ok_or_else(|| StoreError::Internal("latest version missing".into()))?;
    let key = random_bytes::<KEY_LEN>(&ring::rand::SystemRandom::new())?;
    let aad = wrap_aad(ring.name(), hash);
    let inputs = CipherInputs {
        associated_data: Some(&aad),
        ..CipherInputs::default()
    };
    let wrapped = ops::encrypt(&version.material, AS_STORED, key.as_ref(), inputs)
        .map_err(|error| StoreError::Internal(error.message().to_owned()))?;
    Ok(ContextRow {
        key_name: ring.name().to_owned(),
        context_hash: hash.0.to_vec(),
        version: latest as i32,
        wrapped_key: Some(wrapped),
    })
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
        let mut keys = HashMap::new();
        for context in contexts.into_iter().flatten() {
            let Ok(Some(context)) = decode_optional(Some(context)) else {
                continue;
            };
            if context.is_empty() || keys.contains_key(&context) {
                continue;
            }
            let key = self.context_key(ring, &context, usage).await?;
            keys.insert(context, key);
        }
        Ok(ContextKeys { active: true, keys })
    }

    /// One context's data key: cached, stored, or (for [`ContextUse::Create`]) made now.
    async fn context_key(
        &self,
        ring: &Arc<KeyRing>,
        context: &[u8],
        usage: ContextUse,
    ) -> Result<Result<ContextKey, OpError>, StoreError> {
        let state = self.context_state();
        let hash = state.hasher.hash(ring.name(), context);
        if let Some(key) = state.cache.get(hash, ring.config.generation) {
            return Ok(Ok(key));
        }
        let Some(row) = self.stored_context(ring, hash, usage).await? else {
            return Ok(Err(OpError::user(NO_CONTEXT_KEY)));
        };
        let Some(wrapped) = row.wrapped_key else {
            return Ok(Err(OpError::user(CONTEXT_DESTROYED)));
        };
        let version = row.version as u32;
        let ring = self.fresh_for_values(ring.clone(), [version]).await?;
        let key = unwrap_key(&ring, hash, version, &wrapped)?;
        state.cache.put(hash, key.clone(), ring.config.generation);
        Ok(Ok(key))
    }

    /// The context's stored row, inserting a new data key first when `usage` allows.
    async fn stored_context(
        &self,
        ring: &KeyRing,
        hash: ContextHash,
        usage: ContextUse,
    ) -> Result<Option<ContextRow>, StoreError> {
        let mut conn = self.connection().await?;
        let found = db::find(&mut conn, ring.name(), &hash.0).await?;
        if found.is_some() || usage == ContextUse::Read {
            return Ok(found);
        }
        let row = new_row(ring, hash)?;
        db::insert_if_absent(&mut conn, &row).await?;
        // Another request may have made (or destroyed) it first: the stored row wins.
        Ok(db::find(&mut conn, ring.name(), &hash.0).await?)
    }

    /// Destroys a context's data key for good (a tombstone stays), on every instance within
    /// the refresh interval and here at once. Destroying it again changes nothing.
    pub async fn destroy_context(
        &self,
        ring: &KeyRing,
        context: &[u8],
    ) -> Result<ContextHash, StoreError> {
        let name = ring.name();
        let hash = self.context_state().hasher.hash(name, context);
        let version = ring.config.latest_version as i32;
        let mut conn = self.connection().await?;
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            db::tombstone(conn, name, &hash.0, version).await?;
            db::bump_generation(conn, name).await
        })
        .await?;
        drop(conn);
        self.context_state().cache.remove(&hash);
        self.load(name).await?;
        Ok(hash)
    }
}
