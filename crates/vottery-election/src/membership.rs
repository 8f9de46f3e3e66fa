//! Membership of the order-q subgroup for many public elements at once, for what a batch of
//! ciphertexts carries but the secret never touches (β).
//!
//! x is a member when φ(x) = x^q is 1, and φ is multiplicative. The batch is checked in rounds:
//! each multiplies a random half of the elements (each element in or out by a fair coin) and
//! checks the product with one exponentiation by q. If some φ(x_j) ≠ 1, a subset and the same
//! subset with x_j flipped cannot both give 1, so each round misses with a chance of at most
//! one half, whatever the elements: a batch with a non-member passes all [`ROUNDS`] with a
//! chance of at most 2^−40. Each round costs half a multiplication per element and one check,
//! against one check per element one by one.
//!
//! A batch that fails says only that some element is not a member: check them one by one to
//! name it.

use crypto_bigint::U4096;
use rand::RngCore;
use rand::rngs::OsRng;

use crate::exp::{GROUP, Mont, SquareChain};
use crate::group::ElementModP;
use crate::parallel::in_parallel;

/// Rounds of the batch check: a batch with a non-member passes with a chance of at most
/// 2^−ROUNDS.
const ROUNDS: usize = 40;
/// Below this many elements, one check each costs no more than the rounds.
const MIN_BATCH: usize = 48;

/// Whether every element is a non-zero member of the order-q subgroup (a false "yes" has a
/// chance of at most 2^−40, whatever the elements), on every core.
pub fn all_members(elements: &[&ElementModP]) -> bool {
    if elements.len() < MIN_BATCH {
        return elements.iter().all(|element| element.is_valid_residue());
    }
    if elements.iter().any(|element| element.0 == U4096::ZERO) {
        return false;
    }
    let bases: Vec<Mont> = elements.iter().map(|element| element.to_mont()).collect();
    let rounds: Vec<usize> = (0..ROUNDS).collect();
    in_parallel(&rounds, |_, chunk| {
        chunk
            .iter()
            .all(|_| SquareChain::new(&random_subset_product(&bases)).is_residue())
    })
    .into_iter()
    .all(|passed| passed)
}

/// The product of the elements a fair coin picks (1 when it picks none).
fn random_subset_product(bases: &[Mont]) -> Mont {
    let mut coins = vec![0u8; bases.len().div_ceil(8)];
    OsRng.fill_bytes(&mut coins);
    bases
        .iter()
        .enumerate()
        .filter(|(i, _)| coins[i / 8] >> (i % 8) & 1 == 1)
        .fold(Mont::one(GROUP.params), |product, (_, base)| {
            product.mul(base)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::{g_pow_p, rand_q};

    fn members(count: usize) -> Vec<ElementModP> {
        (0..count).map(|_| g_pow_p(&rand_q())).collect()
    }

    #[test]
    fn members_pass_and_any_non_member_fails_the_batch() {
        for count in [1, 3, 47, 48, 120] {
            let elements = members(count);
            let refs: Vec<&ElementModP> = elements.iter().collect();
            assert!(all_members(&refs), "{count} members");
        }
        let minus_one = ElementModP::from_mont(&Mont::one(GROUP.params).neg());
        let two = ElementModP::from_be_bytes(&[2]).unwrap();
        let zero = ElementModP::from_be_bytes(&[0]).unwrap();
        let elements = members(60);
        for bad in [&minus_one, &two, &zero] {
            // −g (order-2 part), 2 (a residue or not, but outside the subgroup), 0; and the
            // order-2 part twice, which a product alone would cancel.
            let mut refs: Vec<&ElementModP> = elements.iter().collect();
            refs[17] = bad;
            assert!(!all_members(&refs));
            let negated = elements[3].mul(&minus_one);
            let negated_again = elements[4].mul(&minus_one);
            let mut twice: Vec<&ElementModP> = elements.iter().collect();
            twice[3] = &negated;
            twice[4] = &negated_again;
            assert!(!all_members(&twice));
        }
        // A square outside the subgroup: 4 = 2² has no order-2 part.
        let four = ElementModP::from_be_bytes(&[4]).unwrap();
        let mut refs: Vec<&ElementModP> = elements.iter().collect();
        refs[0] = &four;
        assert!(!all_members(&refs));
    }
}
