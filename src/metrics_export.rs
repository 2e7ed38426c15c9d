//! Publishing through the `metrics` facade (feature `metrics`): the report's headline numbers
//! and one gauge per owner, so any exporter serves them.

use crate::pressure::PressureLevel;
use crate::report::Report;

/// The metric names [`Report::publish_metrics`] sets, all gauges. Sizes are in bytes.
///
/// | name | labels | value |
/// |------|--------|-------|
/// | `heapscope_owner_live_bytes` | `owner` | live bytes, children included |
/// | `heapscope_owner_peak_bytes` | `owner` | peak bytes |
/// | `heapscope_owner_allocated_bytes` | `owner` | bytes ever allocated |
/// | `heapscope_tracked_live_bytes` | | every owner together |
/// | `heapscope_untracked_bytes` | | resident minus tracked |
/// | `heapscope_process_rss_bytes` | | `VmRSS` |
/// | `heapscope_process_tree_rss_bytes` | | RSS with descendants |
/// | `heapscope_jemalloc_bytes` | `stat` (`allocated`, `active`, `resident`, `mapped`, `retained`, `metadata`) | jemalloc's statistic |
/// | `heapscope_limit_bytes` | | effective limit |
/// | `heapscope_pressure_ratio` | | used / limit |
/// | `heapscope_pressure_level` | | 0 normal, 1 elevated, 2 high, 3 critical (absent: unknown) |
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

impl Report {
    /// Sets the gauges listed in [`METRIC_NAMES`] on the installed `metrics` recorder (a
    /// no-op without one). Values unknown in this report are left untouched.
    ///
    /// ```
    /// heapscope::report().publish_metrics();
    /// ```
    pub fn publish_metrics(&self) {
        describe();
        for owner in &self.owners.tree {
            let labels = [("owner", owner.name.clone())];
            metrics::gauge!("heapscope_owner_live_bytes", &labels).set(owner.live_bytes as f64);
            metrics::gauge!("heapscope_owner_peak_bytes", &labels).set(owner.peak_bytes as f64);
            metrics::gauge!("heapscope_owner_allocated_bytes", &labels)
                .set(owner.total_bytes as f64);
        }
        metrics::gauge!("heapscope_tracked_live_bytes").set(self.owners.tracked_live_bytes as f64);
        if let Some(untracked) = self.owners.untracked_bytes {
            metrics::gauge!("heapscope_untracked_bytes").set(untracked as f64);
        }
        if let Some(p) = &self.process {
            if let Some(rss) = p.rss_bytes {
                metrics::gauge!("heapscope_process_rss_bytes").set(rss as f64);
            }
            if let Some(tree) = p.tree_rss_bytes {
                metrics::gauge!("heapscope_process_tree_rss_bytes").set(tree as f64);
            }
        }
        if let Some(a) = &self.allocator {
            for (stat, value) in [
                ("allocated", a.allocated),
                ("active", a.active),
                ("resident", a.resident),
                ("mapped", a.mapped),
                ("retained", a.retained),
                ("metadata", a.metadata),
            ] {
                metrics::gauge!("heapscope_jemalloc_bytes", "stat" => stat).set(value as f64);
            }
        }
        if let Some(limit) = self.pressure.limit_bytes {
            metrics::gauge!("heapscope_limit_bytes").set(limit as f64);
        }
        if let Some(ratio) = self.pressure.ratio {
            metrics::gauge!("heapscope_pressure_ratio").set(ratio);
        }
        let level = match self.pressure.level {
            PressureLevel::Normal => Some(0.0),
            PressureLevel::Elevated => Some(1.0),
            PressureLevel::High => Some(2.0),
            PressureLevel::Critical => Some(3.0),
            PressureLevel::Unknown => None,
        };
        if let Some(level) = level {
            metrics::gauge!("heapscope_pressure_level").set(level);
        }
    }
}

/// Gives every gauge its help text and unit, once per process.
fn describe() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
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
            "Bytes an owner ever allocated, children included."
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
            "Pressure level: 0 normal, 1 elevated, 2 high, 3 critical."
        );
    });
}
