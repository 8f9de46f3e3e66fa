//! A bounded memory of successful checks, keyed by a 32-byte digest of everything a check's
//! outcome depends on.
//!
//! Both services use it for signatures: verifying one is a pure function of the public key,
//! the options, the input and the signature, and its public-key arithmetic (tens of
//! microseconds) is most of what reading a page of signed records costs. Only successes are
//! remembered, so nothing passes that has not passed once in full; any changed byte of what
//! was checked gives another digest, which is checked in full.
//!
//! The memory holds two generations of at most `capacity` digests each. When the current one
//! fills up, it becomes the previous one and the previous one is dropped. A digest found in the
//! previous generation moves to the current one, so values read often stay and values read
//! once age out.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// What a remembered check is known by.
pub type Digest = [u8; 32];

#[derive(Default)]
struct Generations {
    current: HashSet<Digest>,
    previous: HashSet<Digest>,
}

/// Digests of checks that succeeded.
pub struct RememberedChecks {
    capacity: usize,
    generations: Mutex<Generations>,
}

impl RememberedChecks {
    /// Remembers up to `capacity` checks per generation; 0 remembers none.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            generations: Mutex::new(Generations::default()),
        }
    }

    fn generations(&self) -> MutexGuard<'_, Generations> {
        self.generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the check known by `digest` succeeds: from memory when it succeeded before,
    /// else by `check`, whose success is then remembered. `digest` is only computed when the
    /// memory is on.
    pub fn check<E>(
        &self,
        digest: impl FnOnce() -> Digest,
        check: impl FnOnce() -> Result<bool, E>,
    ) -> Result<bool, E> {
        if self.capacity == 0 {
            return check();
        }
        let digest = digest();
        if self.recall(&digest) {
            return Ok(true);
        }
        let valid = check()?;
        if valid {
            self.remember(digest);
        }
        Ok(valid)
    }

    /// Whether `digest` is remembered (keeping it in the current generation).
    pub fn recall(&self, digest: &Digest) -> bool {
        let mut generations = self.generations();
        if generations.current.contains(digest) {
            return true;
        }
        if generations.previous.remove(digest) {
            Self::insert(self.capacity, &mut generations, *digest);
            return true;
        }
        false
    }

    /// Remembers a check known by `digest` as successful.
    pub fn remember(&self, digest: Digest) {
        if self.capacity > 0 {
            Self::insert(self.capacity, &mut self.generations(), digest);
        }
    }

    fn insert(capacity: usize, generations: &mut Generations, digest: Digest) {
        if generations.current.len() >= capacity {
            generations.previous = std::mem::take(&mut generations.current);
        }
        generations.current.insert(digest);
    }

    /// How many checks are remembered.
    pub fn len(&self) -> usize {
        let generations = self.generations();
        generations.current.len() + generations.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for RememberedChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RememberedChecks")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::convert::Infallible;

    use super::*;

    fn digest(n: u8) -> Digest {
        [n; 32]
    }

    /// Runs `check` with a checker that answers `outcome` and counts its calls.
    fn ask(memory: &RememberedChecks, n: u8, outcome: bool, calls: &Cell<u32>) -> bool {
        memory
            .check(
                || digest(n),
                || {
                    calls.set(calls.get() + 1);
                    Ok::<_, Infallible>(outcome)
                },
            )
            .unwrap_or(false)
    }

    #[test]
    fn a_success_is_checked_once_and_then_remembered() {
        let memory = RememberedChecks::new(8);
        let calls = Cell::new(0);
        assert!(ask(&memory, 1, true, &calls));
        assert!(ask(&memory, 1, true, &calls));
        assert!(ask(&memory, 1, false, &calls), "answered from memory");
        assert_eq!(calls.get(), 1);
        assert!(!ask(&memory, 2, false, &calls), "another digest is checked");
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn failures_and_errors_are_never_remembered() {
        let memory = RememberedChecks::new(8);
        let calls = Cell::new(0);
        assert!(!ask(&memory, 1, false, &calls));
        assert!(!ask(&memory, 1, false, &calls));
        assert_eq!(calls.get(), 2);
        assert!(memory.is_empty());
        let error = memory.check(|| digest(1), || Err("bad input"));
        assert_eq!(error, Err("bad input"));
        assert!(memory.is_empty());
    }

    #[test]
    fn memory_is_bounded_to_two_generations_and_keeps_what_is_read_again() {
        let memory = RememberedChecks::new(4);
        let calls = Cell::new(0);
        for n in 0u8..20 {
            ask(&memory, n, true, &calls);
            ask(&memory, 200, true, &calls);
            assert!(memory.len() <= 8);
        }
        assert_eq!(
            calls.get(),
            21,
            "every digest once, the often-read one once"
        );
        // The first digests aged out and are checked again.
        ask(&memory, 0, true, &calls);
        assert_eq!(calls.get(), 22);
    }

    #[test]
    fn zero_capacity_remembers_nothing() {
        let memory = RememberedChecks::new(0);
        let calls = Cell::new(0);
        ask(&memory, 1, true, &calls);
        ask(&memory, 1, true, &calls);
        memory.remember(digest(1));
        assert_eq!(calls.get(), 2);
        assert!(memory.is_empty());
    }
}
