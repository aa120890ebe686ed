//! A cumulative latency histogram: filled by the runtime, carried in the status snapshot,
//! exported by the metrics endpoint.

use std::time::Duration;

/// A cumulative histogram with fixed bucket bounds (seconds).
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket, *not* cumulative; one extra for `+Inf`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// Bounds for detection and recovery latencies: 100 ms to 10 min, covering a
    /// heartbeat-miss detection (~15 s) and backoff-capped recoveries (minutes).
    pub const LATENCY_BOUNDS: &'static [f64] = &[
        0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    ];

    /// An empty histogram with `bounds` (ascending).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    /// An empty histogram with [`Histogram::LATENCY_BOUNDS`].
    pub fn latency() -> Histogram {
        Histogram::new(Histogram::LATENCY_BOUNDS)
    }

    /// Records one observation.
    pub fn observe(&mut self, d: Duration) {
        let v = d.as_secs_f64();
        let i = self.bounds.partition_point(|b| *b < v);
        self.counts[i] += 1;
        self.sum += v;
        self.count += 1;
    }

    /// Observations recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the observations, seconds.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// `(upper bound, cumulative count)` per bucket, ending with `+Inf`.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut acc = 0;
        self.bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(&self.counts)
            .map(|(b, c)| {
                acc += c;
                (b, acc)
            })
            .collect()
    }
}
