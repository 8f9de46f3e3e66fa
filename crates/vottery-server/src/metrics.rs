//! Prometheus counters and histograms without a metrics framework: atomics per series, a
//! read-mostly map from label values to series, and the text exposition format.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Latency bucket bounds, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, amount: u64) {
        self.0.fetch_add(amount, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A latency histogram with [`LATENCY_BUCKETS`].
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(index) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[index].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            elapsed.as_nanos().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// The label values of a series, and the series.
type Series<T> = (Vec<String>, Arc<T>);

/// One metric name with its series, keyed by label values.
#[derive(Debug)]
pub struct Family<T> {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    /// Label values joined by U+001F, to the values and the series.
    series: RwLock<HashMap<String, Series<T>>>,
}

impl<T: Default> Family<T> {
    pub fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Self {
            name,
            help,
            labels,
            series: RwLock::new(HashMap::new()),
        }
    }

    /// The series for these label values (in the order of the family's label names).
    pub fn with(&self, values: &[&str]) -> Arc<T> {
        let key = values.join("\u{1f}");
        if let Ok(series) = self.series.read()
            && let Some((_, found)) = series.get(&key)
        {
            return found.clone();
        }
        let mut series = self
            .series
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = series.entry(key).or_insert_with(|| {
            (
                values.iter().map(|value| (*value).to_owned()).collect(),
                Arc::default(),
            )
        });
        entry.1.clone()
    }

    fn snapshot(&self) -> Vec<(Vec<String>, Arc<T>)> {
        let series = self
            .series
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut rows: Vec<_> = series
            .values()
            .map(|(values, series)| (values.clone(), series.clone()))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    }

    fn label_text(&self, values: &[String], extra: Option<(&str, &str)>) -> String {
        let mut pairs: Vec<String> = self
            .labels
            .iter()
            .zip(values)
            .map(|(name, value)| format!("{name}=\"{}\"", escape(value)))
            .collect();
        if let Some((name, value)) = extra {
            pairs.push(format!("{name}=\"{value}\""));
        }
        if pairs.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", pairs.join(","))
        }
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Something that writes itself in the Prometheus text format.
pub trait Render {
    fn render(&self, out: &mut String);
}

impl Render for Family<Counter> {
    fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} counter",
            self.name, self.help, self.name
        );
        for (values, counter) in self.snapshot() {
            let _ = writeln!(
                out,
                "{}{} {}",
                self.name,
                self.label_text(&values, None),
                counter.get()
            );
        }
    }
}

impl Render for Family<Histogram> {
    fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} histogram",
            self.name, self.help, self.name
        );
        for (values, histogram) in self.snapshot() {
            let mut cumulative = 0;
            for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&histogram.buckets) {
                cumulative += bucket.load(Ordering::Relaxed);
                let le = bound.to_string();
                let _ = writeln!(
                    out,
                    "{}_bucket{} {cumulative}",
                    self.name,
                    self.label_text(&values, Some(("le", &le)))
                );
            }
            let count = histogram.count();
            let _ = writeln!(
                out,
                "{}_bucket{} {count}",
                self.name,
                self.label_text(&values, Some(("le", "+Inf")))
            );
            let sum = histogram.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(
                out,
                "{}_sum{} {sum}",
                self.name,
                self.label_text(&values, None)
            );
            let _ = writeln!(
                out,
                "{}_count{} {count}",
                self.name,
                self.label_text(&values, None)
            );
        }
    }
}

/// HTTP request metrics every service exposes.
#[derive(Debug)]
pub struct HttpMetrics {
    pub requests: Family<Counter>,
    pub duration: Family<Histogram>,
}

impl HttpMetrics {
    pub fn new() -> Self {
        Self {
            requests: Family::new(
                "http_requests_total",
                "HTTP requests by route pattern, method and status code.",
                &["route", "method", "status"],
            ),
            duration: Family::new(
                "http_request_duration_seconds",
                "HTTP request latency by route pattern.",
                &["route"],
            ),
        }
    }
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Render for HttpMetrics {
    fn render(&self, out: &mut String) {
        self.requests.render(out);
        self.duration.render(out);
    }
}

/// The media type of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_counters_and_cumulative_buckets() {
        let metrics = HttpMetrics::new();
        metrics.requests.with(&["/a", "GET", "200"]).inc();
        metrics.requests.with(&["/a", "GET", "200"]).inc();
        metrics
            .duration
            .with(&["/a"])
            .observe(Duration::from_micros(300));
        metrics
            .duration
            .with(&["/a"])
            .observe(Duration::from_millis(30));
        let mut text = String::new();
        metrics.render(&mut text);
        assert!(text.contains("http_requests_total{route=\"/a\",method=\"GET\",status=\"200\"} 2"));
        assert!(
            text.contains("http_request_duration_seconds_bucket{route=\"/a\",le=\"0.0005\"} 1")
        );
        assert!(text.contains("http_request_duration_seconds_bucket{route=\"/a\",le=\"0.05\"} 2"));
        assert!(text.contains("http_request_duration_seconds_count{route=\"/a\"} 2"));
    }
}
