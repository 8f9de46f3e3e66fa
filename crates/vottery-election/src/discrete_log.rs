//! Discrete logarithms base g of small exponents (a decrypted tally), by baby-step giant-step
//! with a table of √max entries.

use std::collections::HashMap;

use crypto_bigint::Word;

use crate::exp::{self, GROUP, Mont};
use crate::group::{ElementModP, ElementModQ};

/// A baby-step giant-step table for exponents in [0, max].
pub struct DiscreteLog {
    max: u64,
    /// Baby steps per giant step (⌈√(max + 1)⌉).
    step: u64,
    /// The lowest Montgomery word of g^j → j, for j < step.
    baby: HashMap<Word, u64>,
    /// g^(−step).
    giant: Mont,
}

/// The table key of a value: its lowest Montgomery word (a hit is confirmed with g^m).
fn key(value: &Mont) -> Word {
    value.as_montgomery().as_words()[0]
}

impl DiscreteLog {
    /// A table for exponents up to `max`; memory and set-up time grow with √max
    /// (about 3,200 entries for 10^7).
    pub fn new(max: u64) -> Self {
        let step = (max.saturating_add(1) as f64).sqrt().ceil().max(1.0) as u64;
        let g = ElementModP::generator().to_mont();
        let mut baby = HashMap::with_capacity(step as usize);
        let mut value = Mont::one(GROUP.params);
        for j in 0..step {
            baby.entry(key(&value)).or_insert(j);
            value = value.mul(&g);
        }
        let giant = exp::g_pow_vartime(&ElementModQ::from_u64(step).neg().0);
        DiscreteLog {
            max,
            step,
            baby,
            giant,
        }
    }

    /// m with g^m = `g_m`, if m ≤ max.
    pub fn find(&self, g_m: &ElementModP) -> Option<u64> {
        let target = g_m.to_mont();
        let mut gamma = target;
        for i in 0..=self.max / self.step {
            if let Some(j) = self.baby.get(&key(&gamma)) {
                let m = i * self.step + j;
                if m <= self.max && exp::g_pow_vartime(&ElementModQ::from_u64(m).0) == target {
                    return Some(m);
                }
            }
            gamma = gamma.mul(&self.giant);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::g_pow_p;

    #[test]
    fn small_exponents_are_found_and_larger_ones_are_not() {
        let table = DiscreteLog::new(1000);
        for m in [0u64, 1, 2, 31, 32, 33, 999, 1000] {
            assert_eq!(
                table.find(&g_pow_p(&ElementModQ::from_u64(m))),
                Some(m),
                "{m}"
            );
        }
        assert_eq!(table.find(&g_pow_p(&ElementModQ::from_u64(1001))), None);
        assert_eq!(table.find(&g_pow_p(&ElementModQ::from_u64(123_456))), None);
    }
}
