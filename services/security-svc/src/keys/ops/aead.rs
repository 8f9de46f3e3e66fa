//! AEAD encryption (AES-256-GCM, ChaCha20-Poly1305): `nonce || ciphertext || tag`, with keys
//! derived per context and convergent nonces when the key ring asks for them.

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hmac as ring_hmac;
use vottery_common::transit::KeyType;
use zeroize::Zeroizing;

use super::{CipherInputs, Key, KeyFlags, OpError, derive, require_context, rng_failed};
use crate::keys::material::{KEY_LEN, Secret, VersionMaterial};

const NONCE_LEN: usize = aead::NONCE_LEN;
const TAG_LEN: usize = 16;

fn aead_algorithm(key_type: KeyType) -> &'static aead::Algorithm {
    if key_type == KeyType::Chacha20Poly1305 {
        &aead::CHACHA20_POLY1305
    } else {
        &aead::AES_256_GCM
    }
}

fn authentication_failed(key_type: KeyType) -> OpError {
    OpError::user(if key_type == KeyType::Chacha20Poly1305 {
        "chacha20poly1305: message authentication failed"
    } else {
        "cipher: message authentication failed"
    })
}

/// The AEAD key of a version for one request: the stored key, one derived from the context's
/// data key, or one derived from the context (with the HMAC key convergent encryption draws its
/// nonce from).
fn aead_keys(
    material: &VersionMaterial,
    flags: KeyFlags,
    inputs: CipherInputs<'_>,
) -> Result<(Key, Option<Key>), OpError> {
    let Secret::Aead(key) = &material.secret else {
        return Err(OpError::Internal("not an AEAD key".into()));
    };
    if let Some(data_key) = inputs.data_key {
        return Ok((derive::<KEY_LEN>(data_key, key.as_ref())?, None));
    }
    match require_context(flags, inputs.context)? {
        None => Ok((key.clone(), None)),
        Some(context) if flags.convergent => {
            let both = derive::<{ 2 * KEY_LEN }>(key.as_ref(), context)?;
            let mut enc = Zeroizing::new([0u8; KEY_LEN]);
            let mut mac = Zeroizing::new([0u8; KEY_LEN]);
            enc.copy_from_slice(&both[..KEY_LEN]);
            mac.copy_from_slice(&both[KEY_LEN..]);
            Ok((enc, Some(mac)))
        }
        Some(context) => Ok((derive::<KEY_LEN>(key.as_ref(), context)?, None)),
    }
}

/// AEAD keys expanded once and reused for the items of one request. Only key versions used as
/// stored (no derivation context, not convergent) are kept, and they go with the request.
#[derive(Default)]
pub struct SealingKeys {
    expanded: Vec<(u32, LessSafeKey)>,
}

impl SealingKeys {
    fn for_version(
        &mut self,
        version: u32,
        key_type: KeyType,
        key: &[u8],
    ) -> Result<&LessSafeKey, OpError> {
        let index = match self
            .expanded
            .iter()
            .position(|(number, _)| *number == version)
        {
            Some(index) => index,
            None => {
                self.expanded
                    .push((version, expand_aead_key(key_type, key)?));
                self.expanded.len() - 1
            }
        };
        Ok(&self.expanded[index].1)
    }
}

fn expand_aead_key(key_type: KeyType, key: &[u8]) -> Result<LessSafeKey, OpError> {
    Ok(LessSafeKey::new(
        UnboundKey::new(aead_algorithm(key_type), key)
            .map_err(|_| OpError::Internal("bad AEAD key".into()))?,
    ))
}

/// Seals `plaintext` with an AEAD version (`version` labels it in `keys`).
pub(super) fn seal(
    keys: &mut SealingKeys,
    version: u32,
    material: &VersionMaterial,
    flags: KeyFlags,
    plaintext: &[u8],
    inputs: CipherInputs<'_>,
) -> Result<Vec<u8>, OpError> {
    let key_type = material.key_type;
    let (key, convergent_mac) = aead_keys(material, flags, inputs)?;
    let as_stored =
        convergent_mac.is_none() && inputs.context.is_none() && inputs.data_key.is_none();
    let nonce: [u8; NONCE_LEN] = match convergent_mac {
        Some(mac_key) => {
            let mac = ring_hmac::sign(
                &ring_hmac::Key::new(ring_hmac::HMAC_SHA256, mac_key.as_ref()),
                plaintext,
            );
            let mut nonce = [0u8; NONCE_LEN];
            nonce.copy_from_slice(&mac.as_ref()[..NONCE_LEN]);
            nonce
        }
        None => crate::keys::nonce::fresh::<NONCE_LEN>().map_err(|_| rng_failed())?,
    };
    let derived;
    let sealing = if as_stored {
        keys.for_version(version, key_type, key.as_ref())?
    } else {
        derived = expand_aead_key(key_type, key.as_ref())?;
        &derived
    };
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = sealing
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(inputs.associated_data.unwrap_or_default()),
            &mut out[NONCE_LEN..],
        )
        .map_err(|_| OpError::Internal("encryption failed".into()))?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens what [`seal`] produced with the same version, context and associated data.
pub(super) fn open(
    material: &VersionMaterial,
    flags: KeyFlags,
    payload: &[u8],
    inputs: CipherInputs<'_>,
) -> Result<Zeroizing<Vec<u8>>, OpError> {
    let key_type = material.key_type;
    if payload.len() < NONCE_LEN + TAG_LEN {
        return Err(OpError::user("invalid ciphertext length"));
    }
    let (key, _) = aead_keys(material, flags, inputs)?;
    let opening = LessSafeKey::new(
        UnboundKey::new(aead_algorithm(key_type), key.as_ref())
            .map_err(|_| OpError::Internal("bad AEAD key".into()))?,
    );
    let (nonce, sealed) = payload.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| OpError::user("invalid ciphertext length"))?;
    let mut buffer = Zeroizing::new(sealed.to_vec());
    let plain_len = opening
        .open_in_place(
            nonce,
            Aad::from(inputs.associated_data.unwrap_or_default()),
            &mut buffer,
        )
        .map_err(|_| authentication_failed(key_type))?
        .len();
    buffer.truncate(plain_len);
    Ok(buffer)
}
