//! The unsealed key store: key rings cached in memory over the database, opened with the root
//! key. Present only while unsealed; dropping it drops (and zeroizes) every key in memory.
//!
//! Several instances may share one database. Each change bumps the key's `generation`; a
//! background refresh reloads cached rings whose generation moved, and any value carrying a
//! version this snapshot does not know makes the caller reload the ring before refusing it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use chrono::Utc;
use diesel_async::AsyncConnection;
use vottery_common::transit::{KeyConfigRequest, KeyType};
use vottery_server::db::{DbPool, is_unavailable};
use zeroize::Zeroizing;

use super::contexts::{self, ContextState};
use super::db::{self, KeyRow, VersionRow};
use super::material::{MaterialError, VersionMaterial};
use super::rules::{self, NewKey};
use super::verified::VerifiedSignatures;
use super::{KeyConfig, KeyRing, KeyVersion};
use crate::seal::barrier::{RootKey, version_aad};

/// Why a key store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached right now (pool timeout, connection refused).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("key not found")]
    NotFound,
    /// The request breaks a rule (Vault's message).
    #[error("{0}")]
    Rejected(String),
    #[error("{0}")]
    Internal(String),
}

impl From<diesel::result::Error> for StoreError {
    fn from(error: diesel::result::Error) -> Self {
        if vottery_server::db::is_connection_lost(&error) {
            StoreError::Unavailable(error.to_string())
        } else {
            StoreError::Internal(error.to_string())
        }
    }
}

impl From<MaterialError> for StoreError {
    fn from(error: MaterialError) -> Self {
        StoreError::Internal(error.to_string())
    }
}

/// Tuning of the store.
#[derive(Debug, Clone, Copy)]
pub struct StoreSettings {
    /// Most key rings kept unsealed in memory; beyond it the cache is cleared and refilled.
    pub max_cached_keys: usize,
    /// Most valid signatures remembered per generation (see [`VerifiedSignatures`]); 0: none.
    pub remembered_signatures: usize,
    /// Most unwrapped context data keys kept in memory (see [`super::contexts`]); 0: none.
    pub context_key_cache: usize,
}

/// The unsealed keys of one instance.
pub struct KeyStore {
    root: Arc<RootKey>,
    pool: DbPool,
    settings: StoreSettings,
    rings: RwLock<HashMap<String, Arc<KeyRing>>>,
    verified: VerifiedSignatures,
    contexts: ContextState,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore").finish_non_exhaustive()
    }
}

fn key_config(row: &KeyRow) -> Result<KeyConfig, StoreError> {
    Ok(KeyConfig {
        name: row.name.clone(),
        key_type: row
            .key_type
            .parse()
            .map_err(|_| StoreError::Internal(format!("key {} has an unknown type", row.name)))?,
        derived: row.derived,
        convergent_encryption: row.convergent_encryption,
        exportable: row.exportable,
        allow_plaintext_backup: row.allow_plaintext_backup,
        deletion_allowed: row.deletion_allowed,
        key_size: row.key_size.map(|size| size as u32),
        latest_version: row.latest_version as u32,
        min_decryption_version: row.min_decryption_version as u32,
        min_encryption_version: row.min_encryption_version as u32,
        min_available_version: row.min_available_version as u32,
        auto_rotate_period_secs: row.auto_rotate_period_secs,
        context_keys: row.context_keys,
        generation: row.generation,
    })
}

/// Opens every stored version of a ring under the root key (CPU-bound for RSA).
fn unseal_ring(
    root: &RootKey,
    row: &KeyRow,
    version_rows: &[VersionRow],
) -> Result<KeyRing, StoreError> {
    let config = key_config(row)?;
    let mut versions = BTreeMap::new();
    for stored in version_rows {
        let number = stored.version as u32;
        let plain = root
            .open(&version_aad(&config.name, number), &stored.sealed_material)
            .map_err(|_| {
                StoreError::Internal(format!(
                    "version {number} of key {} fails authentication under the root key",
                    config.name
                ))
            })?;
        let material = VersionMaterial::decode(config.key_type, &plain)?;
        versions.insert(
            number,
            KeyVersion {
                number,
                created_at: stored.created_at,
                public_key: stored.public_key.clone(),
                material,
            },
        );
    }
    Ok(KeyRing { config, versions })
}

/// Generated material for a new version, sealed for storage under its final number.
struct FreshVersion {
    encoded: Zeroizing<Vec<u8>>,
    public_key: Option<String>,
}

async fn generate(key_type: KeyType, hmac_key_size: u32) -> Result<FreshVersion, StoreError> {
    tokio::task::spawn_blocking(move || -> Result<FreshVersion, StoreError> {
        let encoded = VersionMaterial::generate(key_type, hmac_key_size)?;
        let public_key = VersionMaterial::decode(key_type, &encoded)?.public_key();
        Ok(FreshVersion {
            encoded,
            public_key,
        })
    })
    .await
    .map_err(|error| StoreError::Internal(error.to_string()))?
}

impl FreshVersion {
    fn row(&self, root: &RootKey, name: &str, version: u32) -> Result<VersionRow, StoreError> {
        let sealed = root
            .seal(&version_aad(name, version), &self.encoded)
            .map_err(|error| StoreError::Internal(error.to_string()))?;
        Ok(VersionRow {
            key_name: name.to_owned(),
            version: version as i32,
            sealed_material: sealed,
            public_key: self.public_key.clone(),
            created_at: Utc::now(),
        })
    }
}

impl KeyStore {
    pub fn new(root: RootKey, pool: DbPool, settings: StoreSettings) -> Self {
        let contexts = ContextState::new(&root, settings.context_key_cache);
        Self {
            root: Arc::new(root),
            pool,
            settings,
            rings: RwLock::new(HashMap::new()),
            verified: VerifiedSignatures::new(settings.remembered_signatures),
            contexts,
        }
    }

    /// The context-key hasher and cache of this instance.
    pub fn context_state(&self) -> &ContextState {
        &self.contexts
    }

    /// The signatures this instance has found valid while unsealed.
    pub fn verified(&self) -> &VerifiedSignatures {
        &self.verified
    }

    /// The root key, for other values stored under the same barrier (guardian secrets).
    pub fn barrier(&self) -> Arc<RootKey> {
        self.root.clone()
    }

    /// A connection from the pool; 503-worthy when none can be had.
    pub async fn connection(&self) -> Result<vottery_server::db::DbConn, StoreError> {
        self.pool.get().await.map_err(|error| {
            if is_unavailable(&error) {
                StoreError::Unavailable(error.to_string())
            } else {
                StoreError::Internal(error.to_string())
            }
        })
    }

    /// The cached ring, without touching the database.
    pub fn cached(&self, name: &str) -> Option<Arc<KeyRing>> {
        self.rings.read().ok()?.get(name).cloned()
    }

    fn remember(&self, ring: KeyRing) -> Arc<KeyRing> {
        let ring = Arc::new(ring);
        let mut rings = self
            .rings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if rings.len() >= self.settings.max_cached_keys && !rings.contains_key(ring.name()) {
            rings.clear();
        }
        rings.insert(ring.name().to_owned(), ring.clone());
        ring
    }

    fn forget(&self, name: &str) {
        self.rings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name);
    }

    /// The ring: from the cache, else from the database.
    pub async fn get(&self, name: &str) -> Result<Option<Arc<KeyRing>>, StoreError> {
        match self.cached(name) {
            Some(ring) => Ok(Some(ring)),
            None => self.load(name).await,
        }
    }

    /// Reads the ring from the database, replacing the cached one.
    pub async fn load(&self, name: &str) -> Result<Option<Arc<KeyRing>>, StoreError> {
        let mut conn = self.connection().await?;
        let Some(row) = db::find_key(&mut conn, name).await? else {
            self.forget(name);
            return Ok(None);
        };
        let versions = db::key_versions(&mut conn, name, row.min_available_version).await?;
        drop(conn);
        let root = self.root.clone();
        let ring = tokio::task::spawn_blocking(move || unseal_ring(&root, &row, &versions))
            .await
            .map_err(|error| StoreError::Internal(error.to_string()))??;
        Ok(Some(self.remember(ring)))
    }

    /// Creates a key; an existing key of that name is returned unchanged (Vault's behaviour).
    pub async fn create(&self, name: &str, spec: NewKey) -> Result<Arc<KeyRing>, StoreError> {
        if let Some(existing) = self.get(name).await? {
            return Ok(existing);
        }
        let fresh = generate(spec.key_type, spec.hmac_key_size()).await?;
        let now = Utc::now();
        let key = KeyRow {
            name: name.to_owned(),
            key_type: spec.key_type.as_str().to_owned(),
            derived: spec.derived,
            convergent_encryption: spec.convergent_encryption,
            exportable: spec.exportable,
            allow_plaintext_backup: spec.allow_plaintext_backup,
            deletion_allowed: false,
            key_size: spec.key_size.map(|size| size as i32),
            latest_version: 1,
            min_decryption_version: 1,
            min_encryption_version: 0,
            min_available_version: 0,
            auto_rotate_period_secs: spec.auto_rotate_period_secs,
            // Not 1: a key deleted and created again under the same name must not repeat the
            // generations other instances cached for the old key, or they would never reload.
            generation: now.timestamp_micros(),
            created_at: now,
            updated_at: now,
            context_keys: spec.context_keys,
        };
        let first = fresh.row(&self.root, name, 1)?;
        let mut conn = self.connection().await?;
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            db::insert_key(conn, &key, &first).await
        })
        .await?;
        drop(conn);
        self.load(name).await?.ok_or(StoreError::NotFound)
    }

    /// Adds a version and makes it the latest, in one transaction: an interrupted rotation
    /// leaves the key exactly as it was.
    pub async fn rotate(&self, name: &str) -> Result<Arc<KeyRing>, StoreError> {
        // The stored row, not the cache: the key may have been replaced through another instance.
        let stored = {
            let mut conn = self.connection().await?;
            db::find_key(&mut conn, name)
                .await?
                .ok_or(StoreError::NotFound)?
        };
        let config = key_config(&stored)?;
        let fresh = generate(config.key_type, config.key_size.unwrap_or(32)).await?;
        let root = self.root.clone();
        let mut conn = self.connection().await?;
        conn.transaction::<_, StoreError, _>(async |conn| {
            let locked = db::lock_key(conn, name)
                .await?
                .ok_or(StoreError::NotFound)?;
            if locked.key_type != stored.key_type || locked.key_size != stored.key_size {
                return Err(StoreError::Rejected(format!(
                    "key {name} was replaced while it was being rotated; retry"
                )));
            }
            let version = db::advance_latest_version(conn, name).await? as u32;
            db::insert_version(conn, &fresh.row(&root, name, version)?).await?;
            Ok(())
        })
        .await?;
        drop(conn);
        self.load(name).await?.ok_or(StoreError::NotFound)
    }

    /// Applies a config change to the stored (locked) settings.
    pub async fn configure(
        &self,
        name: &str,
        request: &KeyConfigRequest,
    ) -> Result<(Arc<KeyRing>, Vec<String>), StoreError> {
        let mut conn = self.connection().await?;
        let warnings = conn
            .transaction::<_, StoreError, _>(async |conn| {
                let row = db::lock_key(conn, name)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let (change, warnings) =
                    rules::configure(&key_config(&row)?, request).map_err(StoreError::Rejected)?;
                db::update_settings(conn, name, &change).await?;
                Ok(warnings)
            })
            .await?;
        drop(conn);
        let ring = self.load(name).await?.ok_or(StoreError::NotFound)?;
        Ok((ring, warnings))
    }

    /// Deletes versions below `min_available` for good.
    pub async fn trim(
        &self,
        name: &str,
        min_available: Option<i64>,
    ) -> Result<Arc<KeyRing>, StoreError> {
        let mut conn = self.connection().await?;
        conn.transaction::<_, StoreError, _>(async |conn| {
            let row = db::lock_key(conn, name)
                .await?
                .ok_or(StoreError::NotFound)?;
            let change =
                rules::trim(&key_config(&row)?, min_available).map_err(StoreError::Rejected)?;
            let min_available = change.min_available_version;
            let still_wrapped = contexts::db::wrapped_below(conn, name, min_available).await?;
            if still_wrapped > 0 {
                return Err(StoreError::Rejected(format!(
                    "cannot trim below version {min_available}: {still_wrapped} context keys are wrapped under older versions"
                )));
            }
            db::delete_versions_below(conn, name, change.min_available_version).await?;
            db::update_settings(conn, name, &change).await?;
            Ok(())
        })
        .await?;
        drop(conn);
        self.load(name).await?.ok_or(StoreError::NotFound)
    }

    /// Deletes a key whose config allows deletion.
    pub async fn delete(&self, name: &str) -> Result<(), StoreError> {
        let mut conn = self.connection().await?;
        conn.transaction::<_, StoreError, _>(async |conn| {
            let row = db::lock_key(conn, name).await?.ok_or_else(|| {
                StoreError::Rejected(format!(
                    "error deleting policy {name}: could not delete key; not found"
                ))
            })?;
            if !row.deletion_allowed {
                return Err(StoreError::Rejected(format!(
                    "error deleting policy {name}: deletion is not allowed for this key"
                )));
            }
            db::delete_key(conn, name).await?;
            Ok(())
        })
        .await?;
        self.forget(name);
        Ok(())
    }

    /// Creates each of `keys` that does not exist yet (existing keys are left as they are).
    pub async fn ensure(&self, keys: &[(String, NewKey)]) -> Result<(), StoreError> {
        for (name, key) in keys {
            if self.load(name).await?.is_none() {
                self.create(name, *key).await?;
                tracing::info!(key = %name, key_type = %key.key_type, context_keys = key.context_keys, "bootstrap key created");
            }
        }
        Ok(())
    }

    pub async fn list(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.connection().await?;
        Ok(db::key_names(&mut conn).await?)
    }

    /// Reloads cached rings changed by any instance and drops deleted ones, and evicts the
    /// cached data keys of contexts destroyed through other instances; returns how many rings
    /// changed.
    pub async fn refresh(&self) -> Result<usize, StoreError> {
        let evicted = self.evict_destroyed_contexts().await?;
        if evicted > 0 {
            tracing::debug!(evicted, "destroyed context keys evicted");
        }
        let cached: Vec<(String, i64)> = match self.rings.read() {
            Ok(rings) => rings
                .values()
                .map(|ring| (ring.config.name.clone(), ring.config.generation))
                .collect(),
            Err(_) => return Ok(0),
        };
        if cached.is_empty() {
            return Ok(0);
        }
        let names: Vec<String> = cached.iter().map(|(name, _)| name.clone()).collect();
        let mut conn = self.connection().await?;
        let current: HashMap<String, i64> = db::generations(&mut conn, &names)
            .await?
            .into_iter()
            .collect();
        drop(conn);
        let mut changed = 0;
        for (name, generation) in cached {
            match current.get(&name) {
                None => {
                    self.forget(&name);
                    changed += 1;
                }
                Some(now) if *now != generation => {
                    self.load(&name).await?;
                    changed += 1;
                }
                Some(_) => {}
            }
        }
        Ok(changed)
    }

    /// Rotates every key whose automatic rotation period has passed. Each rotation re-checks
    /// under the row lock, so instances running this together rotate a key once.
    pub async fn rotate_due_keys(&self) -> Result<Vec<String>, StoreError> {
        let due = {
            let mut conn = self.connection().await?;
            db::keys_due_for_rotation(&mut conn).await?
        };
        let mut rotated = Vec::new();
        for name in due {
            let Some(ring) = self.load(&name).await? else {
                continue;
            };
            let config = ring.config.clone();
            let fresh = generate(config.key_type, config.key_size.unwrap_or(32)).await?;
            let root = self.root.clone();
            let mut conn = self.connection().await?;
            let done = conn
                .transaction::<_, StoreError, _>(async |conn| {
                    let Some(row) = db::lock_key(conn, &name).await? else {
                        return Ok(false);
                    };
                    let created =
                        db::latest_version_created(conn, &name, row.latest_version).await?;
                    let due = created.is_some_and(|created| {
                        row.auto_rotate_period_secs > 0
                            && (Utc::now() - created).num_seconds() >= row.auto_rotate_period_secs
                    });
                    if !due {
                        return Ok(false);
                    }
                    let version = db::advance_latest_version(conn, &name).await? as u32;
                    db::insert_version(conn, &fresh.row(&root, &name, version)?).await?;
                    Ok(true)
                })
                .await?;
            drop(conn);
            if done {
                self.load(&name).await?;
                rotated.push(name);
            }
        }
        Ok(rotated)
    }
}
