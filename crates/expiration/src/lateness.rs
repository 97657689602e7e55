//! How late jobs fire, kept in Redis so every replica's firings count: one small hash per
//! minute (`<ns>:expiration:lateness:<minute since the epoch>`) of log-scale bucket counts
//! plus the exact maximum, written by the ack of each fired job and expiring after
//! [`KEEP_MINUTES`]. This module holds the bucket arithmetic and the percentiles; it knows
//! nothing of Redis.
//!
//! Buckets: below 32 ms one per millisecond (exact); above, 16 per power of two, so a bucket
//! spans at most 1/16 of its lower bound and its midpoint is within 3.2% of any value in it.
//! Percentiles (nearest rank) are that midpoint, never above the exact maximum; so p50 and
//! p99 are within 3.2% of the true values. A minute holds at most a few hundred fields
//! whatever the load (a lateness of a day is bucket 400 or so).

use std::collections::{BTreeMap, HashMap};

/// How long a minute's counts are kept: the longest chart (3 hours) and a little more.
pub const KEEP_MINUTES: u64 = 185;
/// The longest chart, in minutes.
pub const MAX_CHART_MINUTES: u32 = 180;
/// The summary covers the current minute and the four before it: the last 4 to 5 minutes.
pub const SUMMARY_MINUTES: u32 = 5;

/// Values below this have a bucket each.
const EXACT: u64 = 32;
/// Buckets per power of two above [`EXACT`] (2^`SUB_BITS`).
const SUB_BITS: u32 = 4;

/// The hash field holding a minute's exact maximum.
pub const MAX_FIELD: &str = "max";

/// The bucket of a lateness of `ms` milliseconds.
pub fn bucket(ms: u64) -> u32 {
    if ms < EXACT {
        return ms as u32;
    }
    let exponent = 63 - ms.leading_zeros(); // >= 5
    let sub = (ms >> (exponent - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    EXACT as u32 + (exponent - 5) * (1 << SUB_BITS) + sub as u32
}

/// The values a bucket holds: `lower..upper` (upper exclusive).
pub fn bounds(bucket: u32) -> (u64, u64) {
    let bucket = u64::from(bucket);
    if bucket < EXACT {
        return (bucket, bucket + 1);
    }
    let step = 1u64 << SUB_BITS;
    let exponent = (bucket - EXACT) / step + 5;
    let sub = (bucket - EXACT) % step;
    let width = 1u64 << (exponent - u64::from(SUB_BITS));
    let lower = (step + sub) * width;
    (lower, lower + width)
}

/// What a percentile reports for a bucket: the middle of its values.
fn midpoint(bucket: u32) -> u64 {
    let (lower, upper) = bounds(bucket);
    lower + (upper - 1 - lower) / 2
}

/// Counts of lateness by bucket, and the exact maximum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    buckets: BTreeMap<u32, u64>,
    max: Option<u64>,
}

impl Histogram {
    /// Counts one firing `ms` late.
    pub fn record(&mut self, ms: u64) {
        *self.buckets.entry(bucket(ms)).or_default() += 1;
        self.max = Some(self.max.map_or(ms, |max| max.max(ms)));
    }

    /// A minute's hash as Redis holds it (bucket → count, `max` → ms); fields that are not
    /// numbers are ignored.
    pub fn from_fields(fields: &HashMap<String, String>) -> Histogram {
        let mut histogram = Histogram::default();
        for (field, value) in fields {
            let Ok(value) = value.parse::<u64>() else {
                continue;
            };
            if field == MAX_FIELD {
                histogram.max = Some(value);
            } else if let Ok(bucket) = field.parse::<u32>() {
                *histogram.buckets.entry(bucket).or_default() += value;
            }
        }
        histogram
    }

    /// Adds another histogram's counts to this one.
    pub fn merge(&mut self, other: &Histogram) {
        for (bucket, count) in &other.buckets {
            *self.buckets.entry(*bucket).or_default() += count;
        }
        self.max = match (self.max, other.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// How many firings it counts.
    pub fn count(&self) -> u64 {
        self.buckets.values().sum()
    }

    /// The exact maximum, `None` when nothing fired.
    pub fn max(&self) -> Option<u64> {
        self.max.filter(|_| self.count() > 0)
    }

    /// The `q`-quantile (0 < q ≤ 1) by nearest rank, as its bucket's midpoint capped at the
    /// maximum; `None` when nothing fired.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
        let mut seen = 0;
        for (bucket, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                let value = midpoint(*bucket);
                return Some(self.max.map_or(value, |max| value.min(max)));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exact_below_32_ms_and_cover_every_value_once_above() {
        for ms in 0..32 {
            assert_eq!(bounds(bucket(ms)), (ms, ms + 1));
        }
        let mut previous_upper = 32;
        for b in 32..400 {
            let (lower, upper) = bounds(b);
            assert_eq!(
                lower,
                previous_upper,
                "bucket {b} starts where {} ends",
                b - 1
            );
            assert!(upper > lower);
            assert!(
                (upper - lower) * 16 <= lower,
                "bucket {b} spans at most 1/16 of its lower bound"
            );
            assert_eq!(bucket(lower), b);
            assert_eq!(bucket(upper - 1), b);
            previous_upper = upper;
        }
        assert!(
            bucket(24 * 3600 * 1000) < 450,
            "a day late is a few hundred buckets in"
        );
        assert!(bucket(u64::MAX) < 1024);
    }

    #[test]
    fn percentiles_are_within_a_few_percent_and_never_above_the_maximum() {
        let mut histogram = Histogram::default();
        // 1..=10,000 ms: p50 is 5,000, p99 is 9,900.
        for ms in 1..=10_000 {
            histogram.record(ms);
        }
        let p50 = histogram.quantile(0.5).unwrap() as f64;
        let p99 = histogram.quantile(0.99).unwrap() as f64;
        assert!((p50 - 5_000.0).abs() / 5_000.0 < 0.032, "p50 {p50}");
        assert!((p99 - 9_900.0).abs() / 9_900.0 < 0.032, "p99 {p99}");
        assert_eq!(histogram.max(), Some(10_000));
        assert_eq!(histogram.count(), 10_000);

        let mut one = Histogram::default();
        one.record(2_001);
        assert_eq!(one.quantile(0.99), Some(one.quantile(0.5).unwrap()));
        assert!(
            one.quantile(0.99).unwrap() <= 2_001,
            "capped at the maximum"
        );
        assert!(one.quantile(0.5).unwrap() >= 1_938, "within its bucket");

        let mut exact = Histogram::default();
        for ms in [3, 3, 3, 7] {
            exact.record(ms);
        }
        assert_eq!(exact.quantile(0.5), Some(3));
        assert_eq!(exact.quantile(0.99), Some(7));
    }

    #[test]
    fn nothing_fired_has_no_percentiles_and_no_maximum() {
        let empty = Histogram::default();
        assert_eq!(
            (empty.quantile(0.5), empty.max(), empty.count()),
            (None, None, 0)
        );
        let only_max = Histogram::from_fields(&HashMap::from([("max".into(), "12".into())]));
        assert_eq!(only_max.max(), None);
    }

    #[test]
    fn minutes_read_from_redis_merge_like_one_histogram() {
        let mut direct = Histogram::default();
        let mut merged = Histogram::default();
        for minute in [[5u64, 900, 40_000], [7, 7, 1_200]] {
            let mut counts: HashMap<u32, u64> = HashMap::new();
            for ms in minute {
                direct.record(ms);
                *counts.entry(bucket(ms)).or_default() += 1;
            }
            let mut fields: HashMap<String, String> = counts
                .iter()
                .map(|(bucket, n)| (bucket.to_string(), n.to_string()))
                .collect();
            let max = minute.iter().max().unwrap();
            fields.insert(MAX_FIELD.into(), max.to_string());
            fields.insert("junk".into(), "x".into());
            merged.merge(&Histogram::from_fields(&fields));
        }
        assert_eq!(merged, direct);
        assert_eq!(merged.max(), Some(40_000));
    }
}
