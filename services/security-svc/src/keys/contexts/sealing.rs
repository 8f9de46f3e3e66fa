//! The key that seals one context's values under one key version: derived from the version's
//! key and the context's data key once per cached data key, not once per request or value.

use std::sync::{Arc, Mutex, PoisonError};

use ring::hkdf;
use zeroize::Zeroizing;

use super::ContextKey;
use crate::keys::KeyVersion;
use crate::keys::material::{KEY_LEN, Secret, VersionMaterial};
use crate::keys::ops::OpError;

/// A context's data key, with the sealing keys derived from it so far (one per key version).
pub struct ContextDataKey {
    key: ContextKey,
    derived: Mutex<Vec<(u32, Arc<VersionMaterial>)>>,
}

impl std::fmt::Debug for ContextDataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextDataKey").finish_non_exhaustive()
    }
}

struct Len;

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        KEY_LEN
    }
}

impl ContextDataKey {
    pub fn new(key: ContextKey) -> Arc<Self> {
        Arc::new(Self {
            key,
            derived: Mutex::new(Vec::new()),
        })
    }

    /// The data key itself.
    pub fn key(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    /// The material that seals and opens this context's values under `version`, used as
    /// stored: an AEAD key HKDF-SHA256(data key, info = the version's key), exactly what
    /// [`crate::keys::ops`] derives from a [`crate::keys::ops::CipherInputs::data_key`].
    pub fn sealing(&self, version: &KeyVersion) -> Result<Arc<VersionMaterial>, OpError> {
        let mut derived = self.derived.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, material)) = derived.iter().find(|(number, _)| *number == version.number) {
            return Ok(material.clone());
        }
        let Secret::Aead(version_key) = &version.material.secret else {
            return Err(OpError::Internal("not an AEAD key".into()));
        };
        let failed = || OpError::Internal("key derivation failed".into());
        let info = [version_key.as_ref()];
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(&self.key[..]);
        let okm = prk.expand(&info, Len).map_err(|_| failed())?;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        okm.fill(key.as_mut()).map_err(|_| failed())?;
        let material = Arc::new(VersionMaterial {
            key_type: version.material.key_type,
            hmac_key: Zeroizing::new(Vec::new()),
            secret: Secret::Aead(key),
        });
        derived.push((version.number, material.clone()));
        Ok(material)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use vottery_common::transit::KeyType;

    use super::*;
    use crate::keys::ops::{self, CipherInputs, KeyFlags};

    const AS_STORED: KeyFlags = KeyFlags {
        derived: false,
        convergent: false,
    };

    #[test]
    fn the_derived_sealing_key_opens_what_the_data_key_sealed_and_the_reverse() {
        for key_type in [KeyType::Aes256Gcm96, KeyType::Chacha20Poly1305] {
            let encoded = VersionMaterial::generate(key_type, 32).unwrap();
            let version = KeyVersion {
                number: 3,
                created_at: Utc::now(),
                public_key: None,
                material: VersionMaterial::decode(key_type, &encoded).unwrap(),
            };
            let data_key = ContextDataKey::new(Arc::new(Zeroizing::new([9u8; KEY_LEN])));
            let with_data_key = CipherInputs {
                associated_data: Some(b"aad"),
                context: Some(b"user-1"),
                data_key: Some(data_key.key()),
            };
            let as_stored = CipherInputs {
                associated_data: Some(b"aad"),
                ..CipherInputs::default()
            };
            let sealing = data_key.sealing(&version).unwrap();
            assert!(Arc::ptr_eq(&sealing, &data_key.sealing(&version).unwrap()));
            let sealed =
                ops::encrypt(&version.material, AS_STORED, b"alice", with_data_key).unwrap();
            let opened = ops::decrypt(&sealing, AS_STORED, &sealed, as_stored).unwrap();
            assert_eq!(opened.as_slice(), b"alice");
            let sealed = ops::encrypt(&sealing, AS_STORED, b"bob", as_stored).unwrap();
            let opened =
                ops::decrypt(&version.material, AS_STORED, &sealed, with_data_key).unwrap();
            assert_eq!(opened.as_slice(), b"bob");
            assert!(ops::decrypt(&version.material, AS_STORED, &sealed, as_stored).is_err());
        }
    }
}
