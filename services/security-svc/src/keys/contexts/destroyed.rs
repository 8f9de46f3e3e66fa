//! How far an instance has looked for contexts destroyed through other instances, so that each
//! destruction evicts its one cached key rather than all of them.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};

use super::ContextHash;
use super::db::Destroyed;

#[derive(Default)]
struct Seen {
    /// The database's clock at the last look.
    since: Option<DateTime<Utc>>,
    /// The destructions that look reported (those still inside its window).
    hashes: HashSet<ContextHash>,
}

/// The destructions an instance has already evicted, and where its next look starts.
#[derive(Default)]
pub(super) struct DestroyedWatch(Mutex<Seen>);

impl DestroyedWatch {
    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where the next look starts (`None`: never looked).
    pub(super) fn since(&self) -> Option<DateTime<Utc>> {
        self.lock().since
    }

    /// Records a look's answer and returns the destructions it is the first to report. A
    /// window overlaps the one before it, so a destruction is reported by several looks.
    pub(super) fn saw(&self, answer: &[Destroyed]) -> Vec<ContextHash> {
        let reported: HashSet<ContextHash> = answer
            .iter()
            .filter_map(|row| row.context_hash.as_deref())
            .filter_map(|hash| hash.try_into().ok().map(ContextHash))
            .collect();
        let mut seen = self.lock();
        let new = reported.difference(&seen.hashes).copied().collect();
        if let Some(polled_at) = answer.iter().map(|row| row.polled_at).max() {
            seen.since = Some(polled_at);
        }
        seen.hashes = reported;
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(at: i64, hashes: &[u8]) -> Vec<Destroyed> {
        let polled_at = DateTime::from_timestamp(at, 0).unwrap();
        if hashes.is_empty() {
            return vec![Destroyed {
                polled_at,
                context_hash: None,
            }];
        }
        hashes
            .iter()
            .map(|byte| Destroyed {
                polled_at,
                context_hash: Some(vec![*byte; 32]),
            })
            .collect()
    }

    #[test]
    fn each_destruction_is_reported_once_while_the_windows_overlap() {
        let watch = DestroyedWatch::default();
        assert_eq!(watch.since(), None);
        assert!(watch.saw(&answer(10, &[])).is_empty());
        assert_eq!(watch.since(), DateTime::from_timestamp(10, 0));
        assert_eq!(watch.saw(&answer(11, &[1])), vec![ContextHash([1; 32])]);
        let mut again = watch.saw(&answer(12, &[1, 2]));
        again.sort_by_key(|hash| hash.0);
        assert_eq!(again, vec![ContextHash([2; 32])]);
        assert!(watch.saw(&answer(13, &[2])).is_empty());
        assert_eq!(watch.since(), DateTime::from_timestamp(13, 0));
    }
}
