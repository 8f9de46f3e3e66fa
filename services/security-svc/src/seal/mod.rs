//! The seal: security-svc starts sealed and holds no key material until the root key is
//! rebuilt from a threshold of Shamir shares (or read from a development key file). Sealing
//! drops the key store, which zeroizes every key in memory.

pub mod barrier;
pub mod config;
pub mod shamir;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use base64::Engine;
use secrecy::SecretString;
use vottery_common::sys::{InitResponse, SealStatus};
use vottery_server::db::{DbPool, is_unavailable};
use zeroize::Zeroizing;

use self::barrier::RootKey;
use self::config::SealConfig;
use self::shamir::ShareError;
use crate::auth::token_digest;
use crate::keys::material::random_bytes;
use crate::keys::store::{KeyStore, StoreSettings};

/// Why a seal operation failed; the messages are Vault's where Vault has one.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("Vault is already initialized")]
    AlreadyInitialized,
    #[error("Vault is not initialized")]
    NotInitialized,
    #[error("invalid seal configuration: {0}")]
    InvalidConfig(ShareError),
    #[error("{0}")]
    BadShare(ShareError),
    #[error("vault is unsealed")]
    AlreadyUnsealed,
    /// The shares combined into a key that does not open the barrier.
    #[error("Unseal failed, invalid key")]
    WrongRootKey,
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// A lost database connection is an outage (503); anything else is unexpected.
impl From<diesel::result::Error> for SealError {
    fn from(error: diesel::result::Error) -> Self {
        if vottery_server::db::is_connection_lost(&error) {
            SealError::Unavailable(error.to_string())
        } else {
            SealError::Internal(error.to_string())
        }
    }
}

/// What `init` hands out, once.
pub struct Initialized {
    pub shares: Vec<Zeroizing<Vec<u8>>>,
    pub root_token: SecretString,
    /// The root key itself, for writing a development key file; dropped otherwise.
    pub root_key: RootKey,
}

impl Initialized {
    /// The shares (hex and base64) and the root token, as `init` answers them, once.
    pub fn handed_out(&self) -> InitResponse {
        let shares = || self.shares.iter().map(|share| share.as_slice());
        InitResponse {
            keys: shares().map(hex::encode).collect(),
            keys_base64: shares()
                .map(|share| base64::engine::general_purpose::STANDARD.encode(share))
                .collect(),
            root_token: secrecy::ExposeSecret::expose_secret(&self.root_token).to_owned(),
        }
    }
}

struct Progress {
    nonce: String,
    /// Verified shares by identifier.
    shares: BTreeMap<u8, Zeroizing<Vec<u8>>>,
}

impl Progress {
    fn new() -> Self {
        Self {
            nonce: String::new(),
            shares: BTreeMap::new(),
        }
    }
}

enum State {
    Uninitialized,
    Sealed {
        config: Arc<SealConfig>,
        progress: Progress,
    },
    Unsealed {
        config: Arc<SealConfig>,
        store: Arc<KeyStore>,
    },
}

/// The security-svc instance is sealed; crypto routes answer 503.
#[derive(Debug, Clone, Copy)]
pub struct Sealed;

/// The seal of one instance.
pub struct Seal {
    state: RwLock<State>,
    pool: DbPool,
    store_settings: StoreSettings,
}

impl Seal {
    pub fn new(pool: DbPool, store_settings: StoreSettings) -> Self {
        Self {
            state: RwLock::new(State::Uninitialized),
            pool,
            store_settings,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn stored_config(&self) -> Result<Option<SealConfig>, SealError> {
        let mut conn = self.pool.get().await.map_err(|error| {
            if is_unavailable(&error) {
                SealError::Unavailable(error.to_string())
            } else {
                SealError::Internal(error.to_string())
            }
        })?;
        Ok(config::load(&mut conn).await?)
    }

    /// Picks up a seal configuration stored by `init` on this or another instance.
    pub async fn sync_config(&self) -> Result<(), SealError> {
        if !matches!(*self.read(), State::Uninitialized) {
            return Ok(());
        }
        if let Some(config) = self.stored_config().await? {
            let mut state = self.write();
            if matches!(*state, State::Uninitialized) {
                *state = State::Sealed {
                    config: Arc::new(config),
                    progress: Progress::new(),
                };
            }
        }
        Ok(())
    }

    /// The key store, or [`Sealed`]. The hot path of every crypto request.
    pub fn store(&self) -> Result<Arc<KeyStore>, Sealed> {
        match &*self.read() {
            State::Unsealed { store, .. } => Ok(store.clone()),
            _ => Err(Sealed),
        }
    }

    pub fn is_initialized(&self) -> bool {
        !matches!(*self.read(), State::Uninitialized)
    }

    pub fn is_sealed(&self) -> bool {
        !matches!(*self.read(), State::Unsealed { .. })
    }

    /// SHA-256 of the root token, once initialized.
    pub fn root_token_digest(&self) -> Option<Vec<u8>> {
        match &*self.read() {
            State::Uninitialized => None,
            State::Sealed { config, .. } | State::Unsealed { config, .. } => {
                Some(config.root_token_digest.clone())
            }
        }
    }

    /// Vault's seal-status body.
    pub fn status(&self) -> SealStatus {
        let (initialized, sealed, t, n, progress, nonce) = match &*self.read() {
            State::Uninitialized => (false, true, 0, 0, 0, String::new()),
            State::Sealed { config, progress } => (
                true,
                true,
                config.threshold(),
                config.shares(),
                progress.shares.len() as u8,
                progress.nonce.clone(),
            ),
            State::Unsealed { config, .. } => (
                true,
                false,
                config.threshold(),
                config.shares(),
                0,
                String::new(),
            ),
        };
        SealStatus {
            seal_type: "shamir".into(),
            initialized,
            sealed,
            t,
            n,
            progress,
            nonce,
            version: env!("CARGO_PKG_VERSION").into(),
            build_date: String::new(),
            migration: false,
            cluster_name: (!sealed).then(|| "vottery-security".to_owned()),
            cluster_id: None,
            recovery_seal: false,
            storage_type: "postgresql".into(),
        }
    }

    /// Makes a root key, splits it into `shares` with threshold `threshold`, stores the
    /// commitments and a check value, and stays sealed. The shares are returned once.
    pub async fn init(&self, shares: i64, threshold: i64) -> Result<Initialized, SealError> {
        let (count, threshold) =
            shamir::check_parameters(shares, threshold).map_err(SealError::InvalidConfig)?;
        self.sync_config().await?;
        if self.is_initialized() {
            return Err(SealError::AlreadyInitialized);
        }
        let split = shamir::split(count, threshold)
            .map_err(|error| SealError::Internal(error.to_string()))?;
        let root_key = RootKey::from_bytes(
            shamir::root_key_bytes(&split.secret)
                .map_err(|error| SealError::Internal(error.to_string()))?,
        );
        let token_bytes = random_bytes::<32>(&ring::rand::SystemRandom::new())
            .map_err(|error| SealError::Internal(error.to_string()))?;
        let root_token = format!(
            "vst.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token_bytes.as_ref())
        );
        let config = SealConfig {
            id: 1,
            secret_shares: i16::from(count),
            secret_threshold: i16::from(threshold),
            share_verifiers: split.verifiers,
            root_key_check: root_key
                .check_value()
                .map_err(|error| SealError::Internal(error.to_string()))?,
            root_token_digest: token_digest(&root_token).to_vec(),
            created_at: chrono::Utc::now(),
        };
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|error| SealError::Unavailable(error.to_string()))?;
        if !config::insert(&mut conn, &config).await? {
            drop(conn);
            self.sync_config().await?;
            return Err(SealError::AlreadyInitialized);
        }
        drop(conn);
        *self.write() = State::Sealed {
            config: Arc::new(config),
            progress: Progress::new(),
        };
        Ok(Initialized {
            shares: split.shares,
            root_token: SecretString::from(root_token),
            root_key,
        })
    }

    /// Accepts one unseal share. A share that fails verification is refused without losing the
    /// progress of the good ones; reaching the threshold rebuilds the root key and unseals.
    pub async fn submit_share(&self, share: &[u8]) -> Result<SealStatus, SealError> {
        self.sync_config().await?;
        let ready = {
            let mut state = self.write();
            match &mut *state {
                State::Uninitialized => return Err(SealError::NotInitialized),
                State::Unsealed { .. } => None,
                State::Sealed { config, progress } => {
                    let id = shamir::verify(&config.share_verifiers, share)
                        .map_err(SealError::BadShare)?;
                    if progress.shares.is_empty() {
                        progress.nonce = uuid::Uuid::new_v4().to_string();
                    }
                    progress
                        .shares
                        .entry(id)
                        .or_insert_with(|| Zeroizing::new(share.to_vec()));
                    if progress.shares.len() < usize::from(config.threshold()) {
                        None
                    } else {
                        let shares: Vec<_> =
                            std::mem::take(&mut progress.shares).into_values().collect();
                        progress.nonce.clear();
                        Some((config.clone(), shares))
                    }
                }
            }
        };
        if let Some((config, shares)) = ready {
            let secret =
                shamir::combine(&shares).map_err(|error| SealError::Internal(error.to_string()))?;
            let root_key = RootKey::from_bytes(
                shamir::root_key_bytes(&secret)
                    .map_err(|error| SealError::Internal(error.to_string()))?,
            );
            self.unseal_with(config, root_key)?;
        }
        Ok(self.status())
    }

    /// Unseals with a root key read from a development key file.
    pub async fn unseal_with_root_key(&self, root_key: RootKey) -> Result<(), SealError> {
        self.sync_config().await?;
        let config = match &*self.read() {
            State::Uninitialized => return Err(SealError::NotInitialized),
            State::Unsealed { .. } => return Ok(()),
            State::Sealed { config, .. } => config.clone(),
        };
        self.unseal_with(config, root_key)
    }

    fn unseal_with(&self, config: Arc<SealConfig>, root_key: RootKey) -> Result<(), SealError> {
        if !root_key.matches(&config.root_key_check) {
            return Err(SealError::WrongRootKey);
        }
        let store = Arc::new(KeyStore::new(
            root_key,
            self.pool.clone(),
            self.store_settings,
        ));
        let mut state = self.write();
        if matches!(*state, State::Sealed { .. }) {
            *state = State::Unsealed { config, store };
        }
        Ok(())
    }

    /// Discards the shares given so far.
    pub fn reset(&self) -> Result<SealStatus, SealError> {
        match &mut *self.write() {
            State::Uninitialized => return Err(SealError::NotInitialized),
            State::Unsealed { .. } => return Err(SealError::AlreadyUnsealed),
            State::Sealed { progress, .. } => *progress = Progress::new(),
        }
        Ok(self.status())
    }

    /// Seals: forgets the root key and every unsealed key.
    pub fn seal(&self) {
        let mut state = self.write();
        if let State::Unsealed { config, .. } = &*state {
            let config = config.clone();
            *state = State::Sealed {
                config,
                progress: Progress::new(),
            };
        }
    }
}

/// Reads a development root-key file (base64 of the 32-byte key, surrounding space ignored).
pub fn read_root_key_file(path: &std::path::Path) -> Result<RootKey, String> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?,
    );
    let bytes = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| format!("{} does not hold a base64 root key", path.display()))?,
    );
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != key.len() {
        return Err(format!(
            "{} does not hold a 32-byte root key",
            path.display()
        ));
    }
    key.copy_from_slice(&bytes);
    Ok(RootKey::from_bytes(key))
}

/// The text of a development root-key file for `root_key`.
pub fn root_key_file_text(root_key: &RootKey) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "{}\n",
        base64::engine::general_purpose::STANDARD.encode(root_key.expose())
    ))
}
