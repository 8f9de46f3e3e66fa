//! Encryption to the joint key and homomorphic accumulation: no guardian involved.

use vottery_election::{ElGamalCiphertext, ElementModP, elgamal_add, elgamal_encrypt, rand_q};

use super::MediatorError;

/// Encrypts each value to the joint key, each with a fresh random nonce.
pub fn encrypt(
    values: &[u64],
    joint_key: &ElementModP,
) -> Result<Vec<ElGamalCiphertext>, MediatorError> {
    values
        .iter()
        .map(|value| {
            // A zero nonce (probability 2^-256) is refused; a second draw is enough.
            (0..2)
                .find_map(|_| elgamal_encrypt(*value, &rand_q(), joint_key))
                .ok_or_else(|| MediatorError::InvalidInput("the joint key is unusable".into()))
        })
        .collect()
}

/// The homomorphic sum of `ciphertexts`: their component-wise product.
pub fn accumulate(ciphertexts: &[ElGamalCiphertext]) -> Result<ElGamalCiphertext, MediatorError> {
    elgamal_add(ciphertexts).ok_or_else(|| MediatorError::InvalidInput("nothing to add up".into()))
}

#[cfg(test)]
mod tests {
    use vottery_election::{ElementModQ, SecretModQ, g_pow_p};

    use super::*;

    #[test]
    fn the_sum_of_encryptions_decrypts_to_the_sum() {
        let secret = SecretModQ::random();
        let key = secret.g_pow();
        let ciphertexts = encrypt(&[1, 0, 1, 1], &key).unwrap();
        assert_ne!(ciphertexts[0], ciphertexts[2], "fresh nonces");
        let sum = accumulate(&ciphertexts).unwrap();
        assert_eq!(
            sum.decrypt_to_g_m(&secret),
            Some(g_pow_p(&ElementModQ::from_u64(3)))
        );
        assert!(accumulate(&[]).is_err());
    }
}
