//! Publishing through the `metrics` facade (feature `metrics`): the report's headline numbers
//! and one gauge per owner, so any exporter serves them.

use crate::pressure::PressureLevel;
use crate::report::Report;
use parking_lot::Mutex;
use std::collections::BTreeSet;

/// The metric names [`Report::publish_metrics`] sets, all gauges. Sizes are in bytes.
///
/// | name | labels | value |
/// |------|--------|-------|
/// | `heapscope_owner_live_bytes` | `owner` | live bytes, children included |
/// | `heapscope_owner_peak_bytes` | `owner` | peak bytes |
/// | `heapscope_owner_allocated_bytes` | `owner` | bytes ever allocated (a gauge: it goes down when [`transfer_to`](crate::Retained::transfer_to) takes a child's history to another parent) |
/// | `heapscope_tracked_live_bytes` | | every owner together |
/// | `heapscope_untracked_bytes` | | resident minus tracked |
/// | `heapscope_process_rss_bytes` | | `VmRSS` |
/// | `heapscope_process_tree_rss_bytes` | | RSS with descendants |
/// | `heapscope_jemalloc_bytes` | `stat` (`allocated`, `active`, `resident`, `mapped`, `retained`, `metadata`) | jemalloc's statistic |
/// | `heapscope_limit_bytes` | | effective limit |
/// | `heapscope_pressure_ratio` | | used / limit |
/// | `heapscope_pressure_level` | | 0 normal, 1 elevated, 2 high, 3 critical |
///
/// A value the report does not know (every gauge without `owner` but
/// `heapscope_tracked_live_bytes`: no limit found, RSS or jemalloc unreadable) is absent until
/// first known, and NaN once it was known and is no longer: the `metrics` facade cannot
/// remove a gauge, and NaN fails every threshold (an alert on the level or the ratio does not
/// fire). The `owner` gauges are set for top-level owners (see
/// [`Report::publish_metrics_to_depth`] for children); one gone since the previous publish
/// (retired holding nothing) reads 0 on its three gauges, which are then no longer written.
pub const METRIC_NAMES: [&str; 11] = [
    "heapscope_owner_live_bytes",
    "heapscope_owner_peak_bytes",
    "heapscope_owner_allocated_bytes",
    "heapscope_tracked_live_bytes",
    "heapscope_untracked_bytes",
    "heapscope_process_rss_bytes",
    "heapscope_process_tree_rss_bytes",
    "heapscope_jemalloc_bytes",
    "heapscope_limit_bytes",
    "heapscope_pressure_ratio",
    "heapscope_pressure_level",
];

/// What the previous [`Report::publish_metrics`] set, so that this one can clear what has gone
/// since: the `metrics` facade (0.24) cannot remove a gauge, and an exporter serves a gauge's
/// last value until it is set again. Not the allocator path, so a lock is fine; sets, not
/// hash sets, because their `new` is `const`.
struct Published {
    /// Owners whose gauges were set. One missing from the next report is set to 0 there, once,
    /// and forgotten, so retired owners (millions of dropped `Retained` items) are not kept.
    owners: BTreeSet<String>,
    /// Gauges of values a report may not know, as (name, `stat` label or ""), that were set.
    known: BTreeSet<(&'static str, &'static str)>,
}

static PUBLISHED: Mutex<Published> =
    Mutex::new(Published { owners: BTreeSet::new(), known: BTreeSet::new() });

/// Sets a gauge without labels, or with the `stat` label when `stat` is not empty.
fn set(name: &'static str, stat: &'static str, value: f64) {
    if stat.is_empty() {
        metrics::gauge!(name).set(value);
    } else {
        metrics::gauge!(name, "stat" => stat).set(value);
    }
}

impl Report {
    /// Sets the gauges listed in [`METRIC_NAMES`] on the installed `metrics` recorder (a
    /// no-op without one), with the `owner` gauges of top-level owners only: their bytes
    /// include their children's and add up to the tracked total, and their number is the
    /// program's own choice. Children are often one per call or per item (every `Retained`
    /// item is one), and three series each, which an exporter keeps until its idle timeout,
    /// would grow a scrape without bound (500 items dropped once added 1 500 series);
    /// [`publish_metrics_to_depth`](Self::publish_metrics_to_depth) publishes them where
    /// they are a fixed few.
    ///
    /// A gauge's value that this report does not know (no limit found, RSS unreadable) is
    /// not published; one that an earlier publish set is set to NaN, so it never keeps a
    /// value that is no longer true. The gauges of an owner gone since the previous publish
    /// (retired holding nothing) are set to 0 once and then no longer written, so an
    /// exporter that drops idle gauges (metrics-exporter-prometheus `idle_timeout`) drops
    /// them. What was published is remembered per process, not per recorder.
    ///
    /// ```
    /// # heapscope::install!();
    /// heapscope::report().publish_metrics();
    /// ```
    pub fn publish_metrics(&self) {
        self.publish_metrics_to_depth(0);
    }

    /// [`publish_metrics`](Self::publish_metrics) with the `owner` gauges of every owner down
    /// to depth `max_depth` (0: top-level owners; 1: their children too; `usize::MAX`: every
    /// owner). Each owner is three series: keep this for owners of fixed names (`cache/http`,
    /// `cache/embeddings`), not for children made per call or per `Retained` item.
    ///
    /// ```
    /// # heapscope::install!();
    /// let cache = heapscope::Owner::named("cache");
    /// let http = cache.child("http");
    /// let body = http.in_scope(|| vec![0u8; 4096]);
    /// heapscope::report().publish_metrics_to_depth(1); // `cache` and `cache/http`
    /// # drop(body);
    /// ```
    pub fn publish_metrics_to_depth(&self, max_depth: usize) {
        // The remembered sets and the recorder's new gauges are heapscope's own memory.
        let _internal = crate::owner::enter_id(crate::registry::INTERNAL);
        // Held throughout, so that two publishing threads cannot interleave what they set and
        // what they remember.
        let mut published = PUBLISHED.lock();
        describe();
        let published_owners = || self.owners.tree.iter().filter(|o| o.depth <= max_depth);
        for owner in published_owners() {
            let labels = [("owner", owner.name.clone())];
            let values = [owner.live_bytes, owner.peak_bytes, owner.total_bytes];
            for (name, value) in OWNER_GAUGES.into_iter().zip(values) {
                metrics::gauge!(name, &labels).set(value as f64);
            }
        }
        metrics::gauge!("heapscope_tracked_live_bytes").set(self.owners.tracked_live_bytes as f64);
        let process = self.process.as_ref();
        let allocator = |read: fn(&crate::AllocatorStats) -> u64| {
            self.allocator.as_ref().map(|a| read(a) as f64)
        };
        let level = match self.pressure.level {
            PressureLevel::Normal => Some(0.0),
            PressureLevel::Elevated => Some(1.0),
            PressureLevel::High => Some(2.0),
            PressureLevel::Critical => Some(3.0),
            PressureLevel::Unknown => None,
        };
        let maybe_known: [(&'static str, &'static str, Option<f64>); 12] = [
            ("heapscope_untracked_bytes", "", self.owners.untracked_bytes.map(|b| b as f64)),
            (
                "heapscope_process_rss_bytes",
                "",
                process.and_then(|p| p.rss_bytes).map(|b| b as f64),
            ),
            (
                "heapscope_process_tree_rss_bytes",
                "",
                process.and_then(|p| p.tree_rss_bytes).map(|b| b as f64),
            ),
            ("heapscope_jemalloc_bytes", "allocated", allocator(|a| a.allocated)),
            ("heapscope_jemalloc_bytes", "active", allocator(|a| a.active)),
            ("heapscope_jemalloc_bytes", "resident", allocator(|a| a.resident)),
            ("heapscope_jemalloc_bytes", "mapped", allocator(|a| a.mapped)),
            ("heapscope_jemalloc_bytes", "retained", allocator(|a| a.retained)),
            ("heapscope_jemalloc_bytes", "metadata", allocator(|a| a.metadata)),
            ("heapscope_limit_bytes", "", self.pressure.limit_bytes.map(|b| b as f64)),
            ("heapscope_pressure_ratio", "", self.pressure.ratio),
            ("heapscope_pressure_level", "", level),
        ];
        for (name, stat, value) in maybe_known {
            match value {
                Some(value) => {
                    set(name, stat, value);
                    published.known.insert((name, stat));
                }
                None => {
                    if published.known.remove(&(name, stat)) {
                        set(name, stat, f64::NAN);
                    }
                }
            }
        }
        let owners: BTreeSet<String> = published_owners().map(|o| o.name.clone()).collect();
        for gone in published.owners.difference(&owners) {
            let labels = [("owner", gone.clone())];
            for name in OWNER_GAUGES {
                metrics::gauge!(name, &labels).set(0.0);
            }
        }
        published.owners = owners;
    }
}

/// The gauges set per owner.
const OWNER_GAUGES: [&str; 3] =
    ["heapscope_owner_live_bytes", "heapscope_owner_peak_bytes", "heapscope_owner_allocated_bytes"];

/// Gives every gauge its help text and unit, on every publish: once per process gave them
/// only to the recorder current at the first publish (a local one, or none yet), never to
/// the exporter installed afterwards.
fn describe() {
    use metrics::{describe_gauge, Unit};
    describe_gauge!(
        "heapscope_owner_live_bytes",
        Unit::Bytes,
        "Live bytes of an owner, children included."
    );
    describe_gauge!(
        "heapscope_owner_peak_bytes",
        Unit::Bytes,
        "Peak live bytes of an owner, children included."
    );
    describe_gauge!(
        "heapscope_owner_allocated_bytes",
        Unit::Bytes,
        "Bytes an owner ever allocated, children included (a gauge: moving a child to another parent takes its history along)."
    );
    describe_gauge!(
        "heapscope_tracked_live_bytes",
        Unit::Bytes,
        "Live bytes counted by heapscope, every owner together."
    );
    describe_gauge!(
        "heapscope_untracked_bytes",
        Unit::Bytes,
        "Resident bytes not counted by any owner."
    );
    describe_gauge!(
        "heapscope_process_rss_bytes",
        Unit::Bytes,
        "Resident set size of the process."
    );
    describe_gauge!(
        "heapscope_process_tree_rss_bytes",
        Unit::Bytes,
        "Resident set size of the process and its descendants."
    );
    describe_gauge!("heapscope_jemalloc_bytes", Unit::Bytes, "jemalloc statistics, by stat.");
    describe_gauge!("heapscope_limit_bytes", Unit::Bytes, "The effective memory limit.");
    describe_gauge!("heapscope_pressure_ratio", "Used memory over the effective limit.");
    describe_gauge!(
        "heapscope_pressure_level",
        "Pressure level: 0 normal, 1 elevated, 2 high, 3 critical, NaN unknown."
    );
}
