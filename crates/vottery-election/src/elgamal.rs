//! Exponential ElGamal (α, β) = (g^r, g^m·K^r) with homomorphic addition, and the reference's
//! hashed ElGamal that carries the key ceremony's backups.

use crypto_bigint::U256;
use crypto_bigint::subtle::ConstantTimeEq;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::exp::{self, Mont};
use crate::group::{ElementModP, ElementModQ, SecretModQ, hex_of};
use crate::hash::{Hashable, hash_elems};

/// Bytes per block of the hashed ElGamal key stream.
const BLOCK_SIZE: usize = 32;
/// The reference reads hashed ElGamal data as at least this many bytes.
const PADDED_DATA_SIZE: usize = 512;

/// An exponential ElGamal ciphertext; field names as the reference serializes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElGamalCiphertext {
    /// α = g^r.
    pub pad: ElementModP,
    /// β = g^m · K^r.
    pub data: ElementModP,
}

/// The reference's `elgamal_encrypt`: `None` when the nonce is zero.
pub fn elgamal_encrypt(
    message: u64,
    nonce: &ElementModQ,
    public_key: &ElementModP,
) -> Option<ElGamalCiphertext> {
    if nonce.is_zero() {
        return None;
    }
    let pad = exp::g_pow_ct(&nonce.0);
    let g_m = exp::g_pow_ct(&U256::from_u64(message));
    let blinding = exp::pow_ct(&public_key.to_mont(), &nonce.0);
    Some(ElGamalCiphertext {
        pad: ElementModP::from_mont(&pad),
        data: ElementModP::from_mont(&g_m.mul(&blinding)),
    })
}

/// Homomorphic sum: the component-wise product; `None` for an empty slice.
pub fn elgamal_add(cts: &[ElGamalCiphertext]) -> Option<ElGamalCiphertext> {
    let (first, rest) = cts.split_first()?;
    let mut pad = first.pad.to_mont();
    let mut data = first.data.to_mont();
    for ct in rest {
        pad = pad.mul(&ct.pad.to_mont());
        data = data.mul(&ct.data.to_mont());
    }
    Some(ElGamalCiphertext {
        pad: ElementModP::from_mont(&pad),
        data: ElementModP::from_mont(&data),
    })
}

impl ElGamalCiphertext {
    /// Whether both components are in the order-q subgroup.
    pub fn is_valid_residue(&self) -> bool {
        self.pad.is_valid_residue() && self.data.is_valid_residue()
    }

    /// α^secret: a partial decryption without its proof (constant time in the secret).
    pub fn partial_decrypt(&self, secret: &SecretModQ) -> ElementModP {
        ElementModP::from_mont(&exp::pow_ct(&self.pad.to_mont(), &secret.0))
    }

    /// β / α^secret = g^m for the whole secret key.
    pub fn decrypt_to_g_m(&self, secret: &SecretModQ) -> Option<ElementModP> {
        let product = self.partial_decrypt(secret).inv()?;
        Some(self.data.mul(&product))
    }
}

/// A hashed ElGamal ciphertext; `data` and `mac` are the reference's hex (leading zero bytes
/// dropped, as its `bytes_to_hex` does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashedElGamalCiphertext {
    /// g^r.
    pub pad: ElementModP,
    /// The message XOR the HMAC key stream, as hex.
    pub data: String,
    /// HMAC-SHA256 over the pad and the data, as hex.
    pub mac: String,
}

/// The reference's `hashed_elgamal_encrypt`.
pub fn hashed_elgamal_encrypt(
    message: &[u8],
    nonce: &ElementModQ,
    public_key: &ElementModP,
    seed: &ElementModQ,
) -> HashedElGamalCiphertext {
    let pad = ElementModP::from_mont(&exp::g_pow_ct(&nonce.0));
    let shared = ElementModP::from_mont(&exp::pow_ct(&public_key.to_mont(), &nonce.0));
    let session_key = hash_elems(&[Hashable::P(&pad), Hashable::P(&shared)]);
    let stream = KeyStream::new(&session_key, seed);
    let (blocks, bit_length) = chunks(message);
    let mut data = Vec::with_capacity(blocks.len() * BLOCK_SIZE);
    for (i, block) in blocks.chunks(BLOCK_SIZE).enumerate() {
        let key = stream.block_key(bit_length, i + 1);
        data.extend(block.iter().zip(key.iter()).map(|(m, k)| m ^ k));
    }
    let mac = stream.mac(bit_length, &pad, &data);
    HashedElGamalCiphertext {
        pad,
        data: hex_of(&data),
        mac: hex_of(&mac),
    }
}

/// The message padded with zeros to whole blocks, and its length in bits (`_get_chunks`).
fn chunks(message: &[u8]) -> (Zeroizing<Vec<u8>>, usize) {
    let length = message.len().div_ceil(BLOCK_SIZE) * BLOCK_SIZE;
    let mut padded = Zeroizing::new(Vec::with_capacity(length));
    padded.extend_from_slice(message);
    padded.resize(length, 0);
    let bits = length * 8;
    (padded, bits)
}

/// The reference's `get_hmac(key, message, length, start)`: a non-zero length frames the
/// message as start (4 bytes, little endian) ‖ message ‖ length (4 bytes, little endian).
fn get_hmac(key: &[u8], message: &[u8], length: usize, start: usize) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    if length != 0 {
        mac.update(&(start as u32).to_le_bytes());
        mac.update(message);
        mac.update(&(length as u32).to_le_bytes());
    } else {
        mac.update(message);
    }
    mac.finalize().into_bytes().into()
}

/// The session key and the seed, as the reference feeds them to its HMACs.
struct KeyStream {
    session_key: Zeroizing<Vec<u8>>,
    seed: Vec<u8>,
}

impl KeyStream {
    fn new(session_key: &ElementModQ, seed: &ElementModQ) -> Self {
        KeyStream {
            session_key: Zeroizing::new(session_key.hex_bytes()),
            seed: seed.hex_bytes(),
        }
    }

    /// The key for block `index` (counted from 1).
    fn block_key(&self, bit_length: usize, index: usize) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(get_hmac(&self.session_key, &self.seed, bit_length, index))
    }

    /// HMAC over pad ‖ data with the MAC key (block 0).
    fn mac(&self, bit_length: usize, pad: &ElementModP, data: &[u8]) -> [u8; 32] {
        let mac_key = Zeroizing::new(get_hmac(&self.session_key, &self.seed, bit_length, 0));
        let mut to_mac = pad.hex_bytes();
        to_mac.extend_from_slice(data);
        get_hmac(mac_key.as_ref(), &to_mac, 0, 0)
    }
}

impl HashedElGamalCiphertext {
    /// The reference's `decrypt`: `None` when the MAC does not match. Like the reference, the
    /// data is read as at least 512 bytes (the size of a padded backup). Unlike it, a pad outside
    /// the order-q subgroup is refused before the secret touches it.
    pub fn decrypt(&self, secret: &SecretModQ, seed: &ElementModQ) -> Option<Zeroizing<Vec<u8>>> {
        if !self.pad.is_valid_residue() {
            return None;
        }
        let mut data = hex::decode(&self.data).ok()?;
        if data.len() < PADDED_DATA_SIZE {
            let mut padded = vec![0u8; PADDED_DATA_SIZE - data.len()];
            padded.extend_from_slice(&data);
            data = padded;
        }
        let shared: Mont = exp::pow_ct(&self.pad.to_mont(), &secret.0);
        let shared = ElementModP::from_mont(&shared);
        let session_key = hash_elems(&[Hashable::P(&self.pad), Hashable::P(&shared)]);
        let stream = KeyStream::new(&session_key, seed);
        let (blocks, bit_length) = chunks(&data);
        let expected = hex_of(&stream.mac(bit_length, &self.pad, &data));
        if !bool::from(expected.as_bytes().ct_eq(self.mac.as_bytes())) {
            return None;
        }
        let mut plain = Zeroizing::new(Vec::with_capacity(blocks.len()));
        for (i, block) in blocks.chunks(BLOCK_SIZE).enumerate() {
            let key = stream.block_key(bit_length, i + 1);
            plain.extend(block.iter().zip(key.iter()).map(|(c, k)| c ^ k));
        }
        Some(plain)
    }
}
