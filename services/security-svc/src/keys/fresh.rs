//! A cached ring checked against what a request carries. Another instance sharing the database
//! may have rotated or reconfigured a key since this instance cached it: a request that names
//! a version the snapshot cannot judge reloads the ring first, so a stale cache never refuses
//! valid data or a version that exists.

use std::sync::Arc;

use super::KeyRing;
use super::store::{KeyStore, StoreError};

impl KeyStore {
    /// `ring`, or the stored ring when a value being opened or verified carries a version this
    /// snapshot may judge wrongly (see [`KeyRing::may_be_stale_for`]).
    pub async fn fresh_for_values(
        &self,
        ring: Arc<KeyRing>,
        versions: impl IntoIterator<Item = u32>,
    ) -> Result<Arc<KeyRing>, StoreError> {
        let mut versions = versions.into_iter();
        if versions.any(|version| ring.may_be_stale_for(version)) {
            return Ok(self.load(ring.name()).await?.unwrap_or(ring));
        }
        Ok(ring)
    }

    /// `ring`, or the stored ring when a request asks by number for a version newer than this
    /// snapshot's latest.
    pub async fn fresh_for_requested(
        &self,
        ring: Arc<KeyRing>,
        requested: impl IntoIterator<Item = Option<i64>>,
    ) -> Result<Arc<KeyRing>, StoreError> {
        let latest = i64::from(ring.config.latest_version);
        let mut requested = requested.into_iter();
        if requested.any(|version| version.is_some_and(|version| version > latest)) {
            return Ok(self.load(ring.name()).await?.unwrap_or(ring));
        }
        Ok(ring)
    }
}
