//! Recent list totals, so that paging through a list does not count it again on every page.
//!
//! Counting the users that match a filter walks an index over the whole table, which costs
//! more than reading and rendering the page itself. A total is reused for a short while
//! (`application.list_total_cache_ms`), keyed by the filters. Every write this instance makes
//! moves a generation on, which retires every total counted before it, so a client sees its
//! own creations and deletions in the next total. Writes made elsewhere (another instance,
//! another service on the same tables) show within that short while.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::db::Filters;

/// At most this many filter sets are remembered; beyond it, all are forgotten.
const MAX_ENTRIES: usize = 1024;

struct Counted {
    total: i64,
    at: Instant,
    generation: u64,
}

/// Totals of the lists read lately, by filters.
pub struct ListTotals {
    lifetime: Duration,
    generation: AtomicU64,
    counted: Mutex<HashMap<Filters, Counted>>,
}

/// Where a total to be counted was asked: the generation it must be stored under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Asked(u64);

impl ListTotals {
    /// Totals kept for `lifetime`; zero keeps none.
    pub fn new(lifetime: Duration) -> Self {
        Self {
            lifetime,
            generation: AtomicU64::new(0),
            counted: Mutex::new(HashMap::new()),
        }
    }

    fn counted(&self) -> std::sync::MutexGuard<'_, HashMap<Filters, Counted>> {
        self.counted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The total for `filters`: remembered if one was counted lately and no write of this
    /// instance came after it, else from `count`, which is then remembered.
    pub async fn get_or_count<E>(
        &self,
        filters: &Filters,
        count: impl Future<Output = Result<i64, E>>,
    ) -> Result<i64, E> {
        match self.get(filters) {
            Ok(total) => Ok(total),
            Err(asked) => {
                let total = count.await?;
                self.store(filters, asked, total);
                Ok(total)
            }
        }
    }

    /// The total for `filters` if one was counted lately and no write of this instance came
    /// after it; else what [`ListTotals::store`] needs once it has been counted.
    fn get(&self, filters: &Filters) -> Result<i64, Asked> {
        // Read before the count is made: a write that lands meanwhile retires that count.
        let generation = self.generation.load(Ordering::Acquire);
        if self.lifetime.is_zero() {
            return Err(Asked(generation));
        }
        match self.counted().get(filters) {
            Some(counted)
                if counted.generation == generation && counted.at.elapsed() < self.lifetime =>
            {
                Ok(counted.total)
            }
            _ => Err(Asked(generation)),
        }
    }

    /// Remembers a total counted after `asked`.
    fn store(&self, filters: &Filters, asked: Asked, total: i64) {
        if self.lifetime.is_zero() || asked.0 != self.generation.load(Ordering::Acquire) {
            return;
        }
        let mut counted = self.counted();
        if counted.len() >= MAX_ENTRIES && !counted.contains_key(filters) {
            counted.clear();
        }
        counted.insert(
            filters.clone(),
            Counted {
                total,
                at: Instant::now(),
                generation: asked.0,
            },
        );
    }

    /// Retires every total counted so far: called after each write of this instance.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for ListTotals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListTotals")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active() -> Filters {
        Filters {
            status: Some(crate::domain::status::Status::Active),
            ..Filters::default()
        }
    }

    #[test]
    fn a_total_is_reused_for_the_same_filters_only() {
        let totals = ListTotals::new(Duration::from_secs(60));
        let asked = totals.get(&Filters::default()).unwrap_err();
        totals.store(&Filters::default(), asked, 42);
        assert_eq!(totals.get(&Filters::default()), Ok(42));
        assert!(totals.get(&active()).is_err());
    }

    #[test]
    fn a_write_retires_every_total_counted_before_it() {
        let totals = ListTotals::new(Duration::from_secs(60));
        let asked = totals.get(&Filters::default()).unwrap_err();
        totals.store(&Filters::default(), asked, 42);
        totals.changed();
        assert!(totals.get(&Filters::default()).is_err());
    }

    #[test]
    fn a_count_overtaken_by_a_write_is_not_kept() {
        let totals = ListTotals::new(Duration::from_secs(60));
        let asked = totals.get(&Filters::default()).unwrap_err();
        // The count runs; a write lands before it is stored.
        totals.changed();
        totals.store(&Filters::default(), asked, 42);
        assert!(totals.get(&Filters::default()).is_err());
    }

    #[test]
    fn totals_expire() {
        let totals = ListTotals::new(Duration::from_millis(20));
        let asked = totals.get(&Filters::default()).unwrap_err();
        totals.store(&Filters::default(), asked, 42);
        std::thread::sleep(Duration::from_millis(40));
        assert!(totals.get(&Filters::default()).is_err());
    }

    #[test]
    fn zero_lifetime_keeps_nothing() {
        let totals = ListTotals::new(Duration::ZERO);
        let asked = totals.get(&Filters::default()).unwrap_err();
        totals.store(&Filters::default(), asked, 42);
        assert!(totals.get(&Filters::default()).is_err());
    }

    #[test]
    fn the_remembered_filter_sets_are_bounded() {
        let totals = ListTotals::new(Duration::from_secs(60));
        for n in 0..(MAX_ENTRIES as i64 + 10) {
            let filters = Filters {
                country: Some(format!("C{n}")),
                ..Filters::default()
            };
            let asked = totals.get(&filters).unwrap_err();
            totals.store(&filters, asked, n);
        }
        assert!(totals.counted().len() <= MAX_ENTRIES);
    }
}
