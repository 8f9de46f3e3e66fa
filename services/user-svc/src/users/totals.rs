//! List totals that stay cheap at any size, and recent ones remembered so that paging through
//! a list does not total it again on every page.
//!
//! A total is counted only up to [`EXACT_TOTAL_CAP`] matching users (an index range scan that
//! stops there). A list within the cap gets its exact count. A larger one gets the planner's
//! estimate from the table statistics, marked as such: counting a million rows takes most of a
//! second, more than every other part of the request together, and under writes it would be
//! counted again and again.
//!
//! An exact total is reused for a short while (`application.list_total_cache_ms`), keyed by
//! the filters. Every write this instance makes moves a generation on, which retires every exact
//! total counted before it, so a client sees its own creations and deletions in the next total.
//! Writes made elsewhere (another instance, another service on the same tables) show within
//! that short while. An estimate is not retired by writes (one write does not move it) and is
//! kept for [`ESTIMATE_LIFETIME`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vottery_common::users::TotalKind;

use super::db::Filters;

/// Lists up to this many users are counted exactly; larger ones are estimated.
pub const EXACT_TOTAL_CAP: i64 = 10_000;

/// How long an estimated total is reused, whatever is written meanwhile.
pub const ESTIMATE_LIFETIME: Duration = Duration::from_secs(30);

/// At most this many filter sets are remembered; beyond it, all are forgotten.
const MAX_ENTRIES: usize = 1024;

/// A list's total and how it was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListTotal {
    pub value: i64,
    pub kind: TotalKind,
}

impl ListTotal {
    /// The total from a count bounded at [`EXACT_TOTAL_CAP`] (`counted`) and, past the cap,
    /// the planner's `estimate` of the list; an estimate is never below the rows counted.
    pub fn from_count(counted: i64, estimate: Option<i64>) -> Self {
        match estimate {
            Some(estimate) if counted > EXACT_TOTAL_CAP => Self {
                value: estimate.max(counted),
                kind: TotalKind::Estimate,
            },
            _ => Self {
                value: counted,
                kind: TotalKind::Exact,
            },
        }
    }
}

struct Counted {
    total: ListTotal,
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
    /// Exact totals kept for `lifetime`; zero keeps no total at all.
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

    /// The total for `filters`: remembered if one is still current, else from `count`, which
    /// is then remembered.
    pub async fn get_or_count<E>(
        &self,
        filters: &Filters,
        count: impl Future<Output = Result<ListTotal, E>>,
    ) -> Result<ListTotal, E> {
        match self.get(filters) {
            Ok(total) => Ok(total),
            Err(asked) => {
                let total = count.await?;
                self.store(filters, asked, total);
                Ok(total)
            }
        }
    }

    /// The total for `filters` if one is still current: an exact one counted lately with no
    /// write of this instance after it, or an estimate made lately; else what
    /// [`ListTotals::store`] needs once it has been counted.
    fn get(&self, filters: &Filters) -> Result<ListTotal, Asked> {
        // Read before the count is made: a write that lands meanwhile retires that count.
        let generation = self.generation.load(Ordering::Acquire);
        if self.lifetime.is_zero() {
            return Err(Asked(generation));
        }
        match self.counted().get(filters) {
            Some(counted) if self.is_current(counted, generation) => Ok(counted.total),
            _ => Err(Asked(generation)),
        }
    }

    fn is_current(&self, counted: &Counted, generation: u64) -> bool {
        match counted.total.kind {
            TotalKind::Exact => {
                counted.generation == generation && counted.at.elapsed() < self.lifetime
            }
            TotalKind::Estimate => counted.at.elapsed() < ESTIMATE_LIFETIME.max(self.lifetime),
        }
    }

    /// Remembers a total counted after `asked`.
    fn store(&self, filters: &Filters, asked: Asked, total: ListTotal) {
        let overtaken = asked.0 != self.generation.load(Ordering::Acquire);
        if self.lifetime.is_zero() || (overtaken && total.kind == TotalKind::Exact) {
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

    /// Retires every exact total counted so far: called after each write of this instance.
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

    fn exact(value: i64) -> ListTotal {
        ListTotal::from_count(value, None)
    }

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
        totals.store(&Filters::default(), asked, exact(42));
        assert_eq!(totals.get(&Filters::default()), Ok(exact(42)));
        assert!(totals.get(&active()).is_err());
    }

    #[test]
    fn a_write_retires_every_total_counted_before_it() {
        let totals = ListTotals::new(Duration::from_secs(60));
        let asked = totals.get(&Filters::default()).unwrap_err();
        totals.store(&Filters::default(), asked, exact(42));
        totals.changed();
        assert!(totals.get(&Filters::default()).is_err());
    }

    #[test]
    fn a_count_overtaken_by_a_write_is_not_kept() {
        let totals = ListTotals::new(Duration::from_secs(60));
        let asked = totals.get(&Filters::default()).unwrap_err();
        // The count runs; a write lands before it is stored.
        totals.changed();
        totals.store(&Filters::default(), asked, exact(42));
        assert!(totals.get(&Filters::default()).is_err());
    }

    #[test]
    fn totals_expire() {
        let totals = ListTotals::new(Duration::from_millis(20));
        let asked = totals.get(&Filters::default()).unwrap_err();
        totals.store(&Filters::default(), asked, exact(42));
        std::thread::sleep(Duration::from_millis(40));
        assert!(totals.get(&Filters::default()).is_err());
    }

    #[test]
    fn zero_lifetime_keeps_nothing() {
        let totals = ListTotals::new(Duration::ZERO);
        let asked = totals.get(&Filters::default()).unwrap_err();
        totals.store(&Filters::default(), asked, exact(42));
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
            totals.store(&filters, asked, exact(n));
        }
        assert!(totals.counted().len() <= MAX_ENTRIES);
    }

    #[test]
    fn an_estimate_outlives_writes_and_exact_totals_do_not() {
        let totals = ListTotals::new(Duration::from_secs(60));
        let large = ListTotal::from_count(EXACT_TOTAL_CAP + 1, Some(1_000_000));
        assert_eq!(large.kind, TotalKind::Estimate);
        let asked = totals.get(&Filters::default()).unwrap_err();
        totals.changed();
        totals.store(&Filters::default(), asked, large);
        totals.changed();
        assert_eq!(totals.get(&Filters::default()), Ok(large));
    }

    #[test]
    fn a_list_within_the_cap_is_exact_and_an_estimate_never_undercounts() {
        assert_eq!(
            ListTotal::from_count(EXACT_TOTAL_CAP, Some(3)),
            ListTotal {
                value: EXACT_TOTAL_CAP,
                kind: TotalKind::Exact
            }
        );
        assert_eq!(
            ListTotal::from_count(EXACT_TOTAL_CAP + 1, Some(3)).value,
            EXACT_TOTAL_CAP + 1
        );
    }
}
