//! The relay's metrics in `/metrics`: the outbox depth, the relay lag, the publishes JetStream
//! dropped as duplicates and the publish errors.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use vottery_server::metrics::{Counter, Render};

/// What the relay last measured, and what went wrong.
#[derive(Debug, Default)]
pub struct RelayMetrics {
    depth: AtomicU64,
    lag_millis: AtomicU64,
    pub published: Counter,
    /// Acknowledged publishes JetStream had already stored under the same `Nats-Msg-Id`.
    pub duplicates: Counter,
    pub publish_errors: Counter,
}

impl RelayMetrics {
    /// Notes the unpublished rows and the age of the oldest, in ms.
    pub fn measured(&self, depth: u64, lag_millis: u64) {
        self.depth.store(depth, Ordering::Relaxed);
        self.lag_millis.store(lag_millis, Ordering::Relaxed);
    }

    pub fn depth(&self) -> u64 {
        self.depth.load(Ordering::Relaxed)
    }
}

impl Render for RelayMetrics {
    fn render(&self, out: &mut String) {
        let lag = self.lag_millis.load(Ordering::Relaxed) as f64 / 1000.0;
        let _ = write!(
            out,
            "# HELP user_events_outbox_depth User events not yet published to NATS.\n\
             # TYPE user_events_outbox_depth gauge\n\
             user_events_outbox_depth {}\n\
             # HELP user_events_relay_lag_seconds Age of the oldest unpublished user event.\n\
             # TYPE user_events_relay_lag_seconds gauge\n\
             user_events_relay_lag_seconds {lag}\n\
             # HELP user_events_published_total User events acknowledged by JetStream.\n\
             # TYPE user_events_published_total counter\n\
             user_events_published_total {}\n\
             # HELP user_events_duplicates_total Publishes JetStream dropped as repeats of an \
             event it holds.\n\
             # TYPE user_events_duplicates_total counter\n\
             user_events_duplicates_total {}\n\
             # HELP user_events_publish_errors_total Failed publishes and stream set-ups.\n\
             # TYPE user_events_publish_errors_total counter\n\
             user_events_publish_errors_total {}\n",
            self.depth(),
            self.published.get(),
            self.duplicates.get(),
            self.publish_errors.get(),
        );
    }
}
