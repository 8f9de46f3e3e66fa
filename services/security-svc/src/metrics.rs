//! Operation metrics: every transit and sys operation counted by outcome, its latency, and the
//! batch items it processed. Series are created up front so the hot path only touches atomics.

use std::sync::Arc;
use std::time::Duration;

use vottery_server::metrics::{Counter, Family, Histogram, Render};

use crate::auth::Operation;

/// How an operation ended, for the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    ClientError,
    Denied,
    Sealed,
    Unavailable,
    Error,
}

impl Outcome {
    const ALL: [Outcome; 6] = [
        Outcome::Ok,
        Outcome::ClientError,
        Outcome::Denied,
        Outcome::Sealed,
        Outcome::Unavailable,
        Outcome::Error,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ClientError => "client_error",
            Outcome::Denied => "denied",
            Outcome::Sealed => "sealed",
            Outcome::Unavailable => "unavailable",
            Outcome::Error => "error",
        }
    }

    /// The outcome an HTTP status stands for.
    pub fn of_status(status: u16, sealed: bool) -> Self {
        match status {
            200..=399 => Outcome::Ok,
            403 => Outcome::Denied,
            503 if sealed => Outcome::Sealed,
            503 => Outcome::Unavailable,
            400..=499 => Outcome::ClientError,
            _ => Outcome::Error,
        }
    }
}

struct OperationSeries {
    outcomes: Vec<Arc<Counter>>,
    duration: Arc<Histogram>,
    items: Arc<Counter>,
}

/// The operation metrics of one instance.
pub struct OperationMetrics {
    operations: Family<Counter>,
    durations: Family<Histogram>,
    items: Family<Counter>,
    series: Vec<OperationSeries>,
}

impl OperationMetrics {
    pub fn new() -> Self {
        let operations = Family::new(
            "vottery_security_operations_total",
            "security-svc operations by kind and outcome.",
            &["operation", "outcome"],
        );
        let durations = Family::new(
            "vottery_security_operation_duration_seconds",
            "security-svc operation latency by kind.",
            &["operation"],
        );
        let items = Family::new(
            "vottery_security_batch_items_total",
            "Items processed by security-svc operations (1 for a single request).",
            &["operation"],
        );
        let series = Operation::ALL
            .iter()
            .map(|operation| OperationSeries {
                outcomes: Outcome::ALL
                    .iter()
                    .map(|outcome| operations.with(&[operation.as_str(), outcome.as_str()]))
                    .collect(),
                duration: durations.with(&[operation.as_str()]),
                items: items.with(&[operation.as_str()]),
            })
            .collect();
        Self {
            operations,
            durations,
            items,
            series,
        }
    }

    pub fn record(&self, operation: Operation, outcome: Outcome, elapsed: Duration, items: usize) {
        let Some(series) = self.series.get(operation as usize) else {
            return;
        };
        if let Some(position) = Outcome::ALL
            .iter()
            .position(|candidate| *candidate == outcome)
        {
            series.outcomes[position].inc();
        }
        series.duration.observe(elapsed);
        series.items.add(items as u64);
    }
}

impl Default for OperationMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Render for OperationMetrics {
    fn render(&self, out: &mut String) {
        self.operations.render(out);
        self.durations.render(out);
        self.items.render(out);
    }
}
