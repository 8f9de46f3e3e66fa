//! Data keys for `/datakey`: fresh random keys the caller wraps under a key ring.

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::{OpError, rng_failed};

/// A fresh random key of `bits` for `/datakey`.
pub fn data_key(bits: usize) -> Result<Zeroizing<Vec<u8>>, OpError> {
    let mut key = Zeroizing::new(vec![0u8; bits / 8]);
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| rng_failed())?;
    Ok(key)
}
