//! Exponentiation in the integers mod p on crypto-bigint's Montgomery form: the fixed-base table
//! for g, constant-time windows and combs for secret exponents, and squaring chains that serve a
//! residue check and public exponents at once.
//!
//! Every multiplication is crypto-bigint's (`MontyForm::mul` / `square`); this module only
//! chooses which ones to do. Secret exponents never choose a branch or an address: table entries
//! are picked with `subtle`'s constant-time selection over the whole table.

use std::sync::LazyLock;

use crypto_bigint::modular::{MontyForm, MontyParams};
use crypto_bigint::subtle::{ConditionallySelectable, ConstantTimeEq};
use crypto_bigint::{U256, U4096};
use zeroize::Zeroizing;

use crate::constants::{G, P_ODD, Q_COMPLEMENT_U64};

/// An integer mod p in Montgomery form.
pub(crate) type Mont = MontyForm<{ U4096::LIMBS }>;

/// Bits in an exponent mod q.
const EXPONENT_BITS: usize = 256;
/// Window width of the fixed-base table and of the windowed exponentiation.
const WINDOW: usize = 4;
/// Windows in a 256-bit exponent.
const WINDOWS: usize = EXPONENT_BITS / WINDOW;
/// Teeth of the comb shared by two secret exponents of one base.
const TEETH: usize = 6;
/// Bits covered by each tooth: ⌈256 / 6⌉.
const SPACING: usize = EXPONENT_BITS.div_ceil(TEETH);

/// The group's Montgomery parameters and the fixed-base table of g.
pub(crate) struct Group {
    pub(crate) params: MontyParams<{ U4096::LIMBS }>,
    /// `g_table[i][j]` = g^(j·16^i).
    g_table: Vec<[Mont; 1 << WINDOW]>,
}

/// Built on first use (a few milliseconds: 64 windows of 16 entries).
pub(crate) static GROUP: LazyLock<Group> = LazyLock::new(|| {
    let params = MontyParams::new_vartime(P_ODD);
    let g = Mont::new(&G, params);
    let g_table = window_table(&g, params);
    Group { params, g_table }
});

/// 64 windows of 16 entries: `table[i][j]` = base^(j·16^i).
fn window_table(base: &Mont, params: MontyParams<{ U4096::LIMBS }>) -> Vec<[Mont; 1 << WINDOW]> {
    let one = Mont::one(params);
    let mut table = Vec::with_capacity(WINDOWS);
    let mut window_base = *base;
    for _ in 0..WINDOWS {
        let mut row = [one; 1 << WINDOW];
        row[1] = window_base;
        for j in 2..row.len() {
            row[j] = row[j - 1].mul(&window_base);
        }
        window_base = row[(1 << WINDOW) - 1].mul(&window_base);
        table.push(row);
    }
    table
}

/// The exponent's 4-bit digits, least significant first.
fn nibbles(exponent: &U256) -> Zeroizing<[u8; WINDOWS]> {
    let bytes = Zeroizing::new(be_bytes_256(exponent));
    let mut digits = Zeroizing::new([0u8; WINDOWS]);
    for (i, byte) in bytes.iter().rev().enumerate() {
        digits[2 * i] = byte & 0x0f;
        digits[2 * i + 1] = byte >> 4;
    }
    digits
}

/// Big-endian bytes of a 256-bit exponent.
pub(crate) fn be_bytes_256(value: &U256) -> [u8; 32] {
    let mut out = [0u8; 32];
    let word_bytes = size_of::<crypto_bigint::Word>();
    for (i, word) in value.as_words().iter().rev().enumerate() {
        out[i * word_bytes..(i + 1) * word_bytes].copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// Bit `index` of the exponent (zero beyond 256).
fn bit(bytes: &[u8; 32], index: usize) -> u8 {
    if index >= EXPONENT_BITS {
        return 0;
    }
    (bytes[31 - index / 8] >> (index % 8)) & 1
}

/// The entry at `index`, reading every entry so the index leaves no trace in time or address.
/// Only the numbers are selected: every entry shares the group's parameters.
fn ct_lookup(table: &[Mont], index: u8) -> Mont {
    let mut selected = *table[0].as_montgomery();
    for (j, entry) in table.iter().enumerate().skip(1) {
        let hit = (j as u8).ct_eq(&index);
        selected.conditional_assign(entry.as_montgomery(), hit);
    }
    Mont::from_montgomery(selected, GROUP.params)
}

/// g^e for a secret e: one constant-time lookup and multiplication per window.
pub(crate) fn g_pow_ct(exponent: &U256) -> Mont {
    let group = &*GROUP;
    let digits = nibbles(exponent);
    let mut acc = ct_lookup(&group.g_table[0], digits[0]);
    for (row, digit) in group.g_table.iter().zip(digits.iter()).skip(1) {
        acc = acc.mul(&ct_lookup(row, *digit));
    }
    acc
}

/// g^e for a public e: zero digits are skipped and entries read directly.
pub(crate) fn g_pow_vartime(exponent: &U256) -> Mont {
    let group = &*GROUP;
    let digits = nibbles(exponent);
    let mut acc: Option<Mont> = None;
    for (row, digit) in group.g_table.iter().zip(digits.iter()) {
        if *digit != 0 {
            let entry = &row[usize::from(*digit)];
            acc = Some(match acc {
                Some(value) => value.mul(entry),
                None => *entry,
            });
        }
    }
    acc.unwrap_or_else(|| Mont::one(group.params))
}

/// base^e for a secret e: fixed 4-bit windows with constant-time lookups.
pub(crate) fn pow_ct(base: &Mont, exponent: &U256) -> Mont {
    let params = GROUP.params;
    let mut table = [Mont::one(params); 1 << WINDOW];
    table[1] = *base;
    for j in 2..table.len() {
        table[j] = table[j - 1].mul(base);
    }
    let digits = nibbles(exponent);
    let mut acc = ct_lookup(&table, digits[WINDOWS - 1]);
    for digit in digits.iter().rev().skip(1) {
        for _ in 0..WINDOW {
            acc = acc.square();
        }
        acc = acc.mul(&ct_lookup(&table, *digit));
    }
    acc
}

/// (base^e1, base^e2) for secret exponents of a public base, sharing one comb table of the
/// base (6 teeth, 43 bits apart): 215 squarings and 57 multiplications for the table, then 43
/// squarings and 43 constant-time lookups and multiplications per exponent. The squarings go on
/// to base^(2^256) so that the base is checked to be in the order-q subgroup (x^q = 1) for 53
/// more operations; `None` when it is not, before either secret exponent is used.
pub(crate) fn pow_pair_ct(base: &Mont, e1: &U256, e2: &U256) -> Option<(Mont, Mont)> {
    let params = GROUP.params;
    let mut teeth = [*base; TEETH];
    for j in 1..TEETH {
        let mut value = teeth[j - 1];
        for _ in 0..SPACING {
            value = value.square();
        }
        teeth[j] = value;
    }
    let mut top = teeth[TEETH - 1];
    for _ in SPACING * (TEETH - 1)..EXPONENT_BITS {
        top = top.square();
    }
    if *base == Mont::zero(params) || top != small_power(base, Q_COMPLEMENT_U64) {
        return None;
    }
    let mut table = vec![Mont::one(params); 1 << TEETH];
    for index in 1..table.len() {
        let low = index.trailing_zeros() as usize;
        let rest = index & (index - 1);
        table[index] = if rest == 0 {
            teeth[low]
        } else {
            table[rest].mul(&teeth[low])
        };
    }
    let comb = |exponent: &U256| -> Mont {
        let bytes = Zeroizing::new(be_bytes_256(exponent));
        let mut acc = Mont::one(params);
        for i in (0..SPACING).rev() {
            if i != SPACING - 1 {
                acc = acc.square();
            }
            let mut index = 0u8;
            for j in 0..TEETH {
                index |= bit(&bytes, SPACING * j + i) << j;
            }
            acc = acc.mul(&ct_lookup(&table, index));
        }
        acc
    };
    Some((comb(e1), comb(e2)))
}

/// x^n for a small public n, by binary exponentiation.
fn small_power(x: &Mont, n: u64) -> Mont {
    let mut result = *x;
    let top = 63 - n.leading_zeros();
    for position in (0..top).rev() {
        result = result.square();
        if (n >> position) & 1 == 1 {
            result = result.mul(x);
        }
    }
    result
}

/// x^(16^i) for i = 0..=64: the squarings a residue check needs, kept so that public
/// exponents of x cost only multiplications (Yao's method).
pub(crate) struct SquareChain {
    /// `powers[i]` = x^(16^i); `powers[64]` = x^(2^256).
    powers: Vec<Mont>,
}

impl SquareChain {
    /// 256 squarings of x.
    pub(crate) fn new(x: &Mont) -> Self {
        let mut powers = Vec::with_capacity(WINDOWS + 1);
        let mut value = *x;
        powers.push(value);
        for _ in 0..WINDOWS {
            for _ in 0..WINDOW {
                value = value.square();
            }
            powers.push(value);
        }
        SquareChain { powers }
    }

    /// Whether x^q = 1, that is x^(2^256) = x^189 (q = 2^256 − 189); x must not be zero.
    pub(crate) fn is_residue(&self) -> bool {
        self.powers[WINDOWS] == small_power(&self.powers[0], Q_COMPLEMENT_U64)
    }

    /// x^e for a public e, from the chain: Σ over digits d of (∏ x^(16^i) with digit d)^d.
    pub(crate) fn pow_vartime(&self, exponent: &U256) -> Mont {
        let digits = nibbles(exponent);
        let mut buckets: [Option<Mont>; 1 << WINDOW] = [None; 1 << WINDOW];
        for (power, digit) in self.powers.iter().zip(digits.iter()) {
            let slot = &mut buckets[usize::from(*digit)];
            *slot = Some(match slot {
                Some(value) => value.mul(power),
                None => *power,
            });
        }
        let mut running: Option<Mont> = None;
        let mut acc: Option<Mont> = None;
        for bucket in buckets.iter().skip(1).rev() {
            if let Some(value) = bucket {
                running = Some(match running {
                    Some(r) => r.mul(value),
                    None => *value,
                });
            }
            if let Some(r) = &running {
                acc = Some(match acc {
                    Some(a) => a.mul(r),
                    None => *r,
                });
            }
        }
        acc.unwrap_or_else(|| Mont::one(GROUP.params))
    }
}

/// a^e1 · b^e2 for public exponents, the squarings shared (Shamir's trick, 4-bit windows): 256
/// squarings and at most 128 multiplications, against twice that for the two apart.
pub(crate) fn pow2_vartime(a: &Mont, e1: &U256, b: &Mont, e2: &U256) -> Mont {
    let one = Mont::one(GROUP.params);
    let powers = |x: &Mont| {
        let mut table = [one; 1 << WINDOW];
        table[1] = *x;
        for j in 2..table.len() {
            table[j] = table[j - 1].mul(x);
        }
        table
    };
    let (a_powers, b_powers) = (powers(a), powers(b));
    let (a_digits, b_digits) = (nibbles(e1), nibbles(e2));
    let mut acc: Option<Mont> = None;
    for i in (0..WINDOWS).rev() {
        if let Some(value) = acc.as_mut() {
            for _ in 0..WINDOW {
                *value = value.square();
            }
        }
        for (table, digit) in [(&a_powers, a_digits[i]), (&b_powers, b_digits[i])] {
            if digit != 0 {
                let entry = &table[usize::from(digit)];
                acc = Some(acc.map_or(*entry, |value| value.mul(entry)));
            }
        }
    }
    acc.unwrap_or(one)
}

/// base^e for a public e by sliding windows of 5 bits.
pub(crate) fn pow_vartime(base: &Mont, exponent: &U256) -> Mont {
    let params = GROUP.params;
    let bytes = be_bytes_256(exponent);
    // odd[k] = base^(2k+1)
    let square = base.square();
    let mut odd = Vec::with_capacity(16);
    odd.push(*base);
    for k in 1..16 {
        let next: Mont = odd[k - 1];
        odd.push(next.mul(&square));
    }
    let mut acc: Option<Mont> = None;
    let mut i = EXPONENT_BITS as isize - 1;
    while i >= 0 {
        if bit(&bytes, i as usize) == 0 {
            acc = acc.map(|a| a.square());
            i -= 1;
            continue;
        }
        let mut low = (i - 4).max(0);
        while bit(&bytes, low as usize) == 0 {
            low += 1;
        }
        let mut value = 0usize;
        for position in (low..=i).rev() {
            value = (value << 1) | usize::from(bit(&bytes, position as usize));
        }
        let width = (i - low + 1) as usize;
        acc = Some(match acc {
            Some(mut a) => {
                for _ in 0..width {
                    a = a.square();
                }
                a.mul(&odd[value >> 1])
            }
            None => odd[value >> 1],
        });
        i = low - 1;
    }
    acc.unwrap_or_else(|| Mont::one(params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_exponents() -> Vec<U256> {
        vec![
            U256::ZERO,
            U256::ONE,
            U256::from_u64(189),
            U256::from_be_hex("8000000000000000000000000000000000000000000000000000000000000001"),
            U256::from_be_hex("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF42"),
            U256::from_be_hex("0123456789ABCDEF0FEDCBA9876543210123456789ABCDEF0FEDCBA987654321"),
        ]
    }

    #[test]
    fn every_exponentiation_agrees_with_the_crates_own() {
        let group = &*GROUP;
        let base = Mont::new(&U4096::from_u64(0x1234_5678_9abc_def1), group.params);
        let g = Mont::new(&G, group.params);
        let chain = SquareChain::new(&base);
        for e in sample_exponents() {
            let expected = base.pow(&e);
            assert_eq!(pow_ct(&base, &e), expected);
            assert_eq!(pow_vartime(&base, &e), expected);
            assert_eq!(chain.pow_vartime(&e), expected);
            assert_eq!(
                pow2_vartime(&base, &e, &g, &U256::from_u64(12345)),
                expected.mul(&g.pow(&U256::from_u64(12345)))
            );
            let (a, b) = pow_pair_ct(&g, &e, &U256::from_u64(7)).unwrap();
            assert_eq!(a, g.pow(&e));
            assert_eq!(b, g.pow(&U256::from_u64(7)));
            assert_eq!(g_pow_ct(&e), g.pow(&e));
            assert_eq!(g_pow_vartime(&e), g.pow(&e));
        }
    }

    #[test]
    fn the_residue_test_accepts_g_and_refuses_a_non_residue() {
        let group = &*GROUP;
        assert!(SquareChain::new(&Mont::new(&G, group.params)).is_residue());
        assert!(SquareChain::new(&Mont::one(group.params)).is_residue());
        // p − 1 has order 2.
        let minus_one = Mont::one(group.params).neg();
        assert!(!SquareChain::new(&minus_one).is_residue());
        assert!(pow_pair_ct(&minus_one, &U256::ONE, &U256::ONE).is_none());
        assert!(pow_pair_ct(&Mont::zero(group.params), &U256::ONE, &U256::ONE).is_none());
    }
}
