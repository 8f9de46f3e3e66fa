//! Random AEAD nonces, drawn from the operating system's generator in blocks.
//!
//! A nonce is public (it travels in the ciphertext) and must never repeat under one key; it
//! need not be secret. Asking the kernel for 12 bytes on every encryption costs a system call
//! each, which shows at tens of thousands of encryptions a second, so each thread keeps a block
//! of OS randomness and hands it out 12 bytes at a time, each slice once.

use std::cell::RefCell;

use ring::rand::{SecureRandom, SystemRandom};

/// Bytes fetched from the OS per refill: 341 nonces of 12 bytes.
const BLOCK: usize = 4096;

struct Pool {
    bytes: [u8; BLOCK],
    /// How much of `bytes` has been handed out.
    used: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { bytes: [0; BLOCK], used: BLOCK }) };
}

/// The OS generator failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomUnavailable;

/// A fresh random nonce of `N` bytes (`N` at most one block).
pub fn fresh<const N: usize>() -> Result<[u8; N], RandomUnavailable> {
    const { assert!(N <= BLOCK) };
    POOL.with_borrow_mut(|pool| {
        if BLOCK - pool.used < N {
            SystemRandom::new()
                .fill(&mut pool.bytes)
                .map_err(|_| RandomUnavailable)?;
            pool.used = 0;
        }
        let mut nonce = [0u8; N];
        let slice = &mut pool.bytes[pool.used..pool.used + N];
        nonce.copy_from_slice(slice);
        // Handed out once: the slice is cleared and never read again before the next refill.
        slice.fill(0);
        pool.used += N;
        Ok(nonce)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn nonces_do_not_repeat_across_refills_and_threads() {
        let draw = || {
            (0..2_000)
                .map(|_| fresh::<12>().unwrap())
                .collect::<Vec<_>>()
        };
        let here = draw();
        let there = std::thread::spawn(draw).join().unwrap();
        let all: HashSet<[u8; 12]> = here.iter().chain(&there).copied().collect();
        assert_eq!(all.len(), 4_000);
        assert!(!all.contains(&[0u8; 12]));
    }
}
