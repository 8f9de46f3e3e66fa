//! Context keys made ahead of the users that need them. A new user's PII is sealed under a
//! data key of its own (see [`super::subjects`]), which security-svc stores the first time the
//! user's context is used: one durable insert per create. Ids come from a sequence, so the
//! next ones are known: once a create reserves id `n`, one background call asks security-svc
//! for the contexts of the ids after it, a block at a time, and the creates that follow find
//! their keys made (one statement and one commit per block instead of one per user).
//!
//! Nothing depends on it: a create whose key was not made ahead makes it itself, and a key made
//! for an id that no user ends up with (another instance took it, or the create failed) is
//! a data key nobody's data is sealed under.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use vottery_common::client::SecurityClient;
use vottery_common::transit::EncryptItem;

use super::PiiScope;

/// What is encrypted to make a context: security-svc stores a context's key when a value is
/// first encrypted under it, and the ciphertext is thrown away.
const PLACEHOLDER: &[u8] = &[0];

/// The contexts made ahead of the ids reserved so far.
#[derive(Debug)]
pub struct ContextsAhead {
    /// How many ids after a reserved one get their contexts made; 0 makes none.
    block: i64,
    /// The highest id whose context is known to be made.
    made_through: AtomicI64,
    /// Whether a call making contexts is under way (one at a time).
    making: AtomicBool,
}

impl ContextsAhead {
    pub fn new(block: usize) -> Self {
        Self {
            block: i64::try_from(block).unwrap_or(i64::MAX),
            made_through: AtomicI64::new(0),
            making: AtomicBool::new(false),
        }
    }

    /// The ids to make contexts for after `reserved` was reserved, claiming the one call that
    /// makes them; `None` when enough are made ahead or a call is already under way.
    fn claim(&self, reserved: i32) -> Option<(i64, i64)> {
        let reserved = i64::from(reserved);
        let made = self.made_through.load(Ordering::Acquire);
        // A new block once less than half of one is left.
        if self.block == 0 || made >= reserved + self.block / 2 {
            return None;
        }
        if self.making.swap(true, Ordering::AcqRel) {
            return None;
        }
        let first = made.max(reserved) + 1;
        let last = (reserved + self.block).min(i64::from(i32::MAX));
        if first > last {
            self.making.store(false, Ordering::Release);
            return None;
        }
        Some((first, last))
    }

    /// Records the end of the call that made `first..=last`.
    fn made(&self, last: Option<i64>) {
        if let Some(last) = last {
            self.made_through.fetch_max(last, Ordering::AcqRel);
        }
        self.making.store(false, Ordering::Release);
    }

    /// After id `reserved` was reserved: makes, in the background, the contexts of the ids after
    /// it under the PII key `key` when fewer than half a block are made.
    pub fn after_reserved(self: &Arc<Self>, client: &SecurityClient, key: &str, reserved: i32) {
        let Some((first, last)) = self.claim(reserved) else {
            return;
        };
        let (ahead, client, key) = (Arc::clone(self), client.clone(), key.to_owned());
        tokio::spawn(async move {
            let items = (first..=last)
                .map(|id| EncryptItem {
                    plaintext: Some(STANDARD.encode(PLACEHOLDER)),
                    context: i32::try_from(id)
                        .ok()
                        .and_then(|id| PiiScope::PerUser.context(id)),
                    ..Default::default()
                })
                .collect();
            // An item refused (a context already destroyed: its user was created elsewhere
            // and erased) has nothing to make; only a call that failed is tried again.
            let made = match client.call(None).encrypt_batch(&key, items).await {
                Ok(_) => Some(last),
                Err(error) => {
                    tracing::debug!(%error, first, last, "context keys not made ahead");
                    None
                }
            };
            ahead.made(made);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_claimed_once_until_it_ends_and_again_when_half_is_used() {
        let ahead = ContextsAhead::new(8);
        assert_eq!(ahead.claim(10), Some((11, 18)));
        assert_eq!(ahead.claim(11), None, "one call at a time");
        ahead.made(Some(18));
        assert_eq!(ahead.claim(13), None, "five are still ahead");
        assert_eq!(ahead.claim(15), Some((19, 23)));
        ahead.made(None);
        assert_eq!(
            ahead.claim(15),
            Some((19, 23)),
            "a failed call is tried again"
        );
        ahead.made(Some(23));
        assert_eq!(
            ahead.claim(100),
            Some((101, 108)),
            "ids taken elsewhere are skipped"
        );
    }

    #[test]
    fn a_block_of_zero_makes_nothing() {
        assert_eq!(ContextsAhead::new(0).claim(1), None);
    }

    #[test]
    fn ids_stop_at_the_sequences_end() {
        let ahead = ContextsAhead::new(8);
        assert_eq!(
            ahead.claim(i32::MAX - 2),
            Some((i64::from(i32::MAX) - 1, i64::from(i32::MAX)))
        );
        ahead.made(Some(i64::from(i32::MAX)));
        assert_eq!(ahead.claim(i32::MAX), None);
    }
}
