//! The root key and the barrier it forms: every stored key version is AES-256-GCM encrypted
//! under it, bound by associated data to the key's name and version.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::SystemRandom;
use zeroize::Zeroizing;

use crate::keys::material::{KEY_LEN, random_bytes};

/// Associated data of the value that proves a candidate root key is the right one.
const CHECK_AAD: &[u8] = b"vottery-security/root-key-check";
const CHECK_PLAINTEXT: &[u8] = b"vottery-security root key check v1";

/// The barrier could not seal or open a value.
#[derive(Debug, thiserror::Error)]
pub enum BarrierError {
    #[error("the system random number generator failed")]
    Random,
    /// Wrong root key, wrong associated data, or a tampered value.
    #[error("stored value failed authentication under the root key")]
    Authentication,
}

/// The 256-bit root key. Zeroized when dropped.
pub struct RootKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey(..)")
    }
}

impl RootKey {
    pub fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        Self(bytes)
    }

    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    fn cipher(&self) -> Result<LessSafeKey, BarrierError> {
        UnboundKey::new(&AES_256_GCM, self.0.as_ref())
            .map(LessSafeKey::new)
            .map_err(|_| BarrierError::Authentication)
    }

    /// Encrypts `plaintext` bound to `aad`: `nonce || ciphertext || tag`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, BarrierError> {
        let nonce =
            random_bytes::<NONCE_LEN>(&SystemRandom::new()).map_err(|_| BarrierError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(plaintext);
        let tag = self
            .cipher()?
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                &mut out[NONCE_LEN..],
            )
            .map_err(|_| BarrierError::Authentication)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens what [`RootKey::seal`] produced with the same associated data.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, BarrierError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(BarrierError::Authentication);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| BarrierError::Authentication)?;
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        let len = self
            .cipher()?
            .open_in_place(nonce, Aad::from(aad), &mut buffer)
            .map_err(|_| BarrierError::Authentication)?
            .len();
        buffer.truncate(len);
        Ok(buffer)
    }

    /// A value stored at init that only the right root key opens.
    pub fn check_value(&self) -> Result<Vec<u8>, BarrierError> {
        self.seal(CHECK_AAD, CHECK_PLAINTEXT)
    }

    /// Whether this key opens the stored check value.
    pub fn matches(&self, check_value: &[u8]) -> bool {
        self.open(CHECK_AAD, check_value)
            .is_ok_and(|plain| plain.as_slice() == CHECK_PLAINTEXT)
    }
}

/// The associated data binding a sealed key version to its key name and version number.
pub fn version_aad(key_name: &str, version: u32) -> Vec<u8> {
    format!("vottery-security/key/{key_name}/v{version}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> RootKey {
        RootKey::from_bytes(Zeroizing::new([byte; KEY_LEN]))
    }

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_aad() {
        let root = key(7);
        let sealed = root.seal(&version_aad("users", 1), b"material").unwrap();
        assert_eq!(
            root.open(&version_aad("users", 1), &sealed)
                .unwrap()
                .as_slice(),
            b"material"
        );
        assert!(root.open(&version_aad("users", 2), &sealed).is_err());
        assert!(root.open(&version_aad("other", 1), &sealed).is_err());
        assert!(key(8).open(&version_aad("users", 1), &sealed).is_err());
        let mut tampered = sealed.clone();
        tampered[NONCE_LEN] ^= 1;
        assert!(root.open(&version_aad("users", 1), &tampered).is_err());
    }

    #[test]
    fn the_check_value_recognises_the_root_key() {
        let check = key(1).check_value().unwrap();
        assert!(key(1).matches(&check));
        assert!(!key(2).matches(&check));
    }
}
