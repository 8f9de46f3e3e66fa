//! RSA-OAEP(SHA-256) encryption with an RSA key version; no associated data.

use zeroize::Zeroizing;

use super::{CipherInputs, OpError};
use crate::keys::material::{Secret, VersionMaterial};

/// RSA keys take no associated data: Vault refuses it rather than ignore it.
fn refuse_associated_data(
    material: &VersionMaterial,
    inputs: CipherInputs<'_>,
) -> Result<(), OpError> {
    if inputs.associated_data.is_some_and(|ad| !ad.is_empty()) {
        return Err(OpError::user(format!(
            "'associated_data' provided for non-AEAD cipher suite {}",
            material.key_type
        )));
    }
    Ok(())
}

fn private_key(material: &VersionMaterial) -> Result<&rsa::RsaPrivateKey, OpError> {
    match &material.secret {
        Secret::Rsa { private, .. } => Ok(private),
        _ => Err(OpError::Internal("not an RSA key".into())),
    }
}

/// Encrypts `plaintext` to the version's public key.
pub(super) fn encrypt(
    material: &VersionMaterial,
    plaintext: &[u8],
    inputs: CipherInputs<'_>,
) -> Result<Vec<u8>, OpError> {
    refuse_associated_data(material, inputs)?;
    private_key(material)?
        .to_public_key()
        .encrypt(
            &mut rand::rngs::OsRng,
            rsa::Oaep::new::<sha2::Sha256>(),
            plaintext,
        )
        .map_err(|error| OpError::user(format!("failed to RSA encrypt the plaintext: {error}")))
}

/// Decrypts what [`encrypt`] produced with the same version.
pub(super) fn decrypt(
    material: &VersionMaterial,
    payload: &[u8],
    inputs: CipherInputs<'_>,
) -> Result<Zeroizing<Vec<u8>>, OpError> {
    refuse_associated_data(material, inputs)?;
    // One message for every OAEP failure, so the answer does not tell padding errors apart.
    private_key(material)?
        .decrypt_blinded(
            &mut rand::rngs::OsRng,
            rsa::Oaep::new::<sha2::Sha256>(),
            payload,
        )
        .map(Zeroizing::new)
        .map_err(|_| OpError::user("failed to RSA decrypt the ciphertext: decryption error"))
}
