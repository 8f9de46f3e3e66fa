//! A guardian's secrets under the instance's barrier: its polynomial and the coordinates other
//! guardians sent it, sealed with the root key (AES-256-GCM) and bound by associated data to the
//! guardian, its ceremony and, for a coordinate, its sender. Opened only for the step that needs
//! them; every plain form is zeroized when dropped.

use vottery_election::{ElectionPolynomial, SecretModQ};
use zeroize::Zeroizing;

use super::error::GuardianError;
use crate::seal::barrier::RootKey;

/// Where a guardian's secrets belong: guardian names and ceremony ids contain no `/`.
#[derive(Debug, Clone, Copy)]
pub struct SecretOwner<'a> {
    pub guardian: &'a str,
    pub ceremony_id: &'a str,
}

impl SecretOwner<'_> {
    fn polynomial_aad(&self) -> Vec<u8> {
        format!(
            "vottery-security/guardian/{}/{}/polynomial",
            self.guardian, self.ceremony_id
        )
        .into_bytes()
    }

    fn coordinate_aad(&self, sender: &str) -> Vec<u8> {
        format!(
            "vottery-security/guardian/{}/{}/coordinate/{sender}",
            self.guardian, self.ceremony_id
        )
        .into_bytes()
    }

    pub fn seal_polynomial(
        &self,
        root: &RootKey,
        polynomial: &ElectionPolynomial,
    ) -> Result<Vec<u8>, GuardianError> {
        Ok(root.seal(&self.polynomial_aad(), &polynomial.to_secret_bytes())?)
    }

    pub fn open_polynomial(
        &self,
        root: &RootKey,
        sealed: &[u8],
    ) -> Result<ElectionPolynomial, GuardianError> {
        let plain = root.open(&self.polynomial_aad(), sealed)?;
        ElectionPolynomial::from_secret_bytes(&plain).map_err(|error| {
            GuardianError::Internal(format!(
                "the stored polynomial of guardian {} does not decode: {error}",
                self.guardian
            ))
        })
    }

    /// Seals the coordinate P_sender(this guardian) that `sender`'s backup carried.
    pub fn seal_coordinate(
        &self,
        root: &RootKey,
        sender: &str,
        coordinate: &SecretModQ,
    ) -> Result<Vec<u8>, GuardianError> {
        let bytes: Zeroizing<[u8; 32]> = coordinate.to_be_bytes();
        Ok(root.seal(&self.coordinate_aad(sender), bytes.as_ref())?)
    }

    pub fn open_coordinate(
        &self,
        root: &RootKey,
        sender: &str,
        sealed: &[u8],
    ) -> Result<SecretModQ, GuardianError> {
        let plain = root.open(&self.coordinate_aad(sender), sealed)?;
        let bytes: Zeroizing<[u8; 32]> =
            Zeroizing::new(plain.as_slice().try_into().map_err(|_| {
                GuardianError::Internal(format!(
                    "the stored coordinate from {sender} has the wrong length"
                ))
            })?);
        SecretModQ::from_be_bytes(&bytes).map_err(|error| {
            GuardianError::Internal(format!(
                "the stored coordinate from {sender} does not decode: {error}"
            ))
        })
    }
}
