//! What the chart shows, decided from a [`Timeline`]: which owners get a series and in which
//! stacking order and colour, which phases are shaded, and the limit.
//!
//! Choices, so that a long run stays readable:
//! - Owners that never hold a byte get no series. Past [`MAX_OWNER_SERIES`] owners, the
//!   smallest (by peak) are summed into one `other (N owners)` series.
//! - A sample lists only its largest top-level owners (`heapscope::SAMPLE_OWNERS`) and sums
//!   the rest (`other_owners_bytes`): those bytes go to the `other` series too (named
//!   `other (…, M unlisted)`, M the most a sample left out), and an owner counts 0 in its own
//!   series in the samples that did not list it, so the stack's top is still every owner's
//!   bytes.
//! - The steadiest owner (smallest max − min) is stacked at the bottom and the most variable
//!   on top, so the top edge shows what moves. Colours follow the owner names, so two runs
//!   with the same owners get the same colours; heapscope's own owners are grey.
//! - A phase is shaded when it lasts at least [`MIN_PHASE_PERCENT`] % of the run. A name whose
//!   shaded phases cover more than [`MAX_PHASE_COVER_PERCENT`] % of the run is not shaded at
//!   all (a background behind most of the chart marks nothing; an agent's `tool execution`
//!   often is most of its time). Of the other names, the [`MAX_PHASE_NAMES`] with the most
//!   shaded time are kept.

use heapscope::Timeline;
use std::collections::{BTreeMap, BTreeSet};

/// The most owner series drawn; the rest are summed into one.
pub(crate) const MAX_OWNER_SERIES: usize = 10;
/// The shortest shaded phase, in percent of the run.
pub(crate) const MIN_PHASE_PERCENT: u64 = 1;
/// A phase name covering more than this percentage of the run is not shaded.
pub(crate) const MAX_PHASE_COVER_PERCENT: u64 = 50;
/// The most distinct phase names shaded.
pub(crate) const MAX_PHASE_NAMES: usize = 6;

/// Owner colours (Tableau 10 without its grey), assigned in name order.
const OWNER_COLOURS: [&str; 9] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f",
];
/// heapscope's own owners (`heapscope.*`) and the `other` series.
const GREYS: [&str; 3] = ["#bab0ac", "#d4cfcc", "#9d9592"];
/// Phase colours, assigned in name order; drawn translucent over the areas.
const PHASE_COLOURS: [&str; 6] = ["#7b3294", "#2c7bb6", "#1a9641", "#d7191c", "#fdae61", "#8c510a"];

/// The limit line: bytes and where the number comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Limit {
    pub(crate) bytes: u64,
    pub(crate) source: String,
}

/// One stacked series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnerSeries {
    /// The owner's name, or `other (N owners)`.
    pub(crate) name: String,
    /// Live bytes at each sample.
    pub(crate) values: Vec<u64>,
    pub(crate) colour: &'static str,
}

impl OwnerSeries {
    pub(crate) fn peak(&self) -> u64 {
        self.values.iter().copied().max().unwrap_or(0)
    }
}

/// One shaded phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PhaseBand {
    pub(crate) name: String,
    /// Milliseconds since the timeline started.
    pub(crate) start_ms: u64,
    pub(crate) end_ms: u64,
    /// The highest tracked live bytes during the phase, when tracking was on.
    pub(crate) peak_bytes: Option<u64>,
    pub(crate) colour: &'static str,
}

/// Everything the chart draws, in its own units (milliseconds, bytes).
#[derive(Debug, Clone)]
pub(crate) struct ChartData {
    pub(crate) title: String,
    pub(crate) interval_ms: u64,
    /// Sample times, milliseconds since the timeline started.
    pub(crate) times_ms: Vec<u64>,
    /// The left end of the time axis: 0, or the first sample kept when a full sampler ring
    /// dropped the earlier ones.
    pub(crate) start_ms: u64,
    /// The right end of the time axis.
    pub(crate) end_ms: u64,
    /// Samples the sampler's ring dropped before the first one drawn.
    pub(crate) dropped_samples: u64,
    /// Bottom of the stack first.
    pub(crate) owners: Vec<OwnerSeries>,
    /// RSS at each sample, when it was read.
    pub(crate) rss: Vec<Option<u64>>,
    pub(crate) limit: Option<Limit>,
    /// Shaded phases, in time order.
    pub(crate) phases: Vec<PhaseBand>,
    /// Names of the shaded phases with their colours, in name order.
    pub(crate) phase_names: Vec<(String, &'static str)>,
    /// Phases not shaded for being under [`MIN_PHASE_PERCENT`] of the run.
    pub(crate) phases_too_short: usize,
    /// Phase names not shaded because they cover most of the run, with their percentage.
    pub(crate) phases_covering: Vec<(String, u64)>,
    /// Long enough phases not shaded because only [`MAX_PHASE_NAMES`] names are.
    pub(crate) phases_over_cap: usize,
    /// Phases that ended before the first sample kept (in the stretch a full ring dropped).
    pub(crate) phases_before_start: usize,
    /// Owners in the timeline that never held a byte.
    pub(crate) empty_owners: usize,
}

impl ChartData {
    /// Decides what to draw.
    ///
    /// # Errors
    /// A message when the timeline has fewer than two samples.
    pub(crate) fn new(
        timeline: &Timeline,
        title: String,
        limit: Option<Limit>,
    ) -> Result<ChartData, String> {
        let samples = &timeline.samples;
        match samples.len() {
            0 => return Err("the timeline has no samples".into()),
            1 => return Err("the timeline has one sample; a chart needs two".into()),
            _ => {}
        }
        let times_ms: Vec<u64> = samples.iter().map(|s| s.at_ms).collect();
        let names: BTreeSet<&str> =
            samples.iter().flat_map(|s| s.owners.keys().map(String::as_str)).collect();
        let mut series: Vec<OwnerSeries> = names
            .iter()
            .map(|&name| OwnerSeries {
                name: name.to_owned(),
                values: samples.iter().map(|s| s.owners.get(name).copied().unwrap_or(0)).collect(),
                colour: "",
            })
            .collect();
        let before = series.len();
        series.retain(|s| s.peak() > 0);
        let empty_owners = before - series.len();
        let unlisted = Unlisted {
            values: samples.iter().map(|s| s.other_owners_bytes).collect(),
            most_owners: samples.iter().map(|s| s.other_owners).max().unwrap_or(0),
        };
        let owners = stack(merge_smallest(series, unlisted));

        let last_sample_ms = times_ms.iter().copied().max().unwrap_or(0);
        // A sampler that outlived its ring keeps only its last samples, whose times still count
        // from the timeline's start (an hour in, for a ring of a minute): an axis from 0 drew
        // them in the plot's last few pixels. It starts at the first sample kept instead.
        let start_ms = if timeline.dropped_samples > 0 {
            times_ms.iter().copied().min().unwrap_or(0)
        } else {
            0
        };
        let shading = shade(timeline, start_ms, last_sample_ms);
        let phases = shading.bands;
        let end_ms = phases
            .iter()
            .map(|p| p.end_ms)
            .fold(last_sample_ms, u64::max)
            .max(start_ms.saturating_add(1));
        Ok(ChartData {
            title,
            interval_ms: timeline.interval_ms,
            times_ms,
            start_ms,
            end_ms,
            dropped_samples: timeline.dropped_samples,
            owners,
            rss: samples.iter().map(|s| s.rss_bytes).collect(),
            limit,
            phases,
            phase_names: shading.names,
            phases_too_short: shading.too_short,
            phases_covering: shading.covering,
            phases_over_cap: shading.over_cap,
            phases_before_start: shading.before_start,
            empty_owners,
        })
    }

    /// The top of the stack at sample `i`, saturating as the stacked areas do: a file may hold
    /// owners whose values add up past `u64::MAX`.
    pub(crate) fn stack_top(&self, i: usize) -> u64 {
        self.owners
            .iter()
            .map(|o| o.values.get(i).copied().unwrap_or(0))
            .fold(0, u64::saturating_add)
    }

    /// The largest number drawn from the data (stack, RSS, phase peaks), not the limit.
    pub(crate) fn data_max(&self) -> u64 {
        let stack = (0..self.times_ms.len()).map(|i| self.stack_top(i));
        let rss = self.rss.iter().flatten().copied();
        let peaks = self.phases.iter().filter_map(|p| p.peak_bytes);
        stack.chain(rss).chain(peaks).max().unwrap_or(0)
    }
}

/// The bytes of the owners the samples did not list (past their largest), per sample.
struct Unlisted {
    values: Vec<u64>,
    /// The most owners one sample left out.
    most_owners: u64,
}

/// Keeps the `MAX_OWNER_SERIES - 1` largest series (by peak) and sums the rest into one, with
/// the bytes of the owners the samples did not list.
fn merge_smallest(mut series: Vec<OwnerSeries>, unlisted: Unlisted) -> Vec<OwnerSeries> {
    let has_unlisted = unlisted.values.iter().any(|&b| b > 0);
    if series.len() <= MAX_OWNER_SERIES - usize::from(has_unlisted) {
        if has_unlisted {
            let name = format!("other ({} unlisted owners)", unlisted.most_owners);
            series.push(OwnerSeries { name, values: unlisted.values, colour: "" });
        }
        return series;
    }
    series.sort_by(|a, b| b.peak().cmp(&a.peak()).then_with(|| a.name.cmp(&b.name)));
    let rest = series.split_off(MAX_OWNER_SERIES - 1);
    let mut values = unlisted.values;
    for s in &rest {
        for (sum, v) in values.iter_mut().zip(&s.values) {
            *sum = sum.saturating_add(*v);
        }
    }
    let name = if has_unlisted {
        format!("other ({} owners, {} unlisted)", rest.len(), unlisted.most_owners)
    } else {
        format!("other ({} owners)", rest.len())
    };
    series.push(OwnerSeries { name, values, colour: "" });
    series
}

/// Colours the series and orders them steadiest first.
fn stack(mut series: Vec<OwnerSeries>) -> Vec<OwnerSeries> {
    series.sort_by(|a, b| a.name.cmp(&b.name));
    let (mut coloured, mut grey) = (0, 0);
    for s in &mut series {
        if s.name.starts_with("heapscope.") || s.name.starts_with("other (") {
            s.colour = GREYS[grey % GREYS.len()];
            grey += 1;
        } else {
            s.colour = OWNER_COLOURS[coloured % OWNER_COLOURS.len()];
            coloured += 1;
        }
    }
    let range = |s: &OwnerSeries| s.peak() - s.values.iter().copied().min().unwrap_or(0);
    series.sort_by(|a, b| range(a).cmp(&range(b)).then_with(|| a.name.cmp(&b.name)));
    series
}

/// Which phases are shaded.
struct Shading {
    bands: Vec<PhaseBand>,
    /// Shaded names and their colours, in name order.
    names: Vec<(String, &'static str)>,
    /// Names left out for covering most of the run, with the percentage they cover.
    covering: Vec<(String, u64)>,
    /// Phases under [`MIN_PHASE_PERCENT`] of the run.
    too_short: usize,
    /// Long enough phases of names past [`MAX_PHASE_NAMES`].
    over_cap: usize,
    /// Phases that ended before `start_ms`.
    before_start: usize,
}

/// Phases drawn on an axis from `start_ms`, each with its start in milliseconds since the
/// timeline started: those that ended before the axis starts are left out (a phase that began
/// before it and ended after is drawn from the axis's left edge).
fn visible(timeline: &Timeline, start_ms: u64) -> Vec<(&heapscope::PhaseRecord, u64)> {
    // On the samples' clock, not by the wall clock: see `Timeline::phase_start_ms`.
    timeline
        .phases
        .iter()
        .map(|p| (p, timeline.phase_start_ms(p)))
        .filter(|(p, from)| start_ms == 0 || from.saturating_add(p.duration_ms) > start_ms)
        .collect()
}

/// Shades the phases on an axis from `start_ms`; percentages are of the stretch drawn.
fn shade(timeline: &Timeline, start_ms: u64, last_sample_ms: u64) -> Shading {
    let phases = visible(timeline, start_ms);
    let before_start = timeline.phases.len() - phases.len();
    let run_ms = phases
        .iter()
        .map(|(p, from)| from.saturating_add(p.duration_ms))
        .fold(last_sample_ms, u64::max)
        .saturating_sub(start_ms);
    // Saturating: a timeline read from a file may hold any number.
    let long_enough = |duration_ms: u64| {
        duration_ms > 0
            && duration_ms.saturating_mul(100) >= run_ms.saturating_mul(MIN_PHASE_PERCENT)
    };
    let mut shaded_ms: BTreeMap<&str, u64> = BTreeMap::new();
    for (p, _) in phases.iter().filter(|(p, _)| long_enough(p.duration_ms)) {
        let shaded = shaded_ms.entry(&p.name).or_default();
        *shaded = shaded.saturating_add(p.duration_ms);
    }
    let percent = |ms: u64| ms.saturating_mul(100) / run_ms.max(1);
    let covering: Vec<(String, u64)> = shaded_ms
        .iter()
        .filter(|(_, &ms)| percent(ms) > MAX_PHASE_COVER_PERCENT)
        .map(|(&name, &ms)| (name.to_owned(), percent(ms)))
        .collect();
    let mut names: Vec<(&str, u64)> =
        shaded_ms.into_iter().filter(|(_, ms)| percent(*ms) <= MAX_PHASE_COVER_PERCENT).collect();
    names.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    names.truncate(MAX_PHASE_NAMES);
    names.sort();
    let colours: Vec<(String, &'static str)> = names
        .iter()
        .zip(PHASE_COLOURS.iter().cycle())
        .map(|((name, _), colour)| ((*name).to_owned(), *colour))
        .collect();
    let mut bands: Vec<PhaseBand> = phases
        .iter()
        .filter(|(p, _)| long_enough(p.duration_ms))
        .filter_map(|&(p, start_ms)| {
            let colour = colours.iter().find(|(n, _)| *n == p.name)?.1;
            Some(PhaseBand {
                name: p.name.clone(),
                start_ms,
                end_ms: start_ms.saturating_add(p.duration_ms),
                peak_bytes: p.tracking.then_some(p.total.peak_bytes),
                colour,
            })
        })
        .collect();
    bands.sort_by_key(|b| (b.start_ms, b.end_ms));
    let too_short = phases.iter().filter(|(p, _)| !long_enough(p.duration_ms)).count();
    let covering_phases = phases
        .iter()
        .filter(|(p, _)| long_enough(p.duration_ms) && covering.iter().any(|(n, _)| *n == p.name))
        .count();
    let over_cap = phases.len() - too_short - covering_phases - bands.len();
    Shading { bands, names: colours, covering, too_short, over_cap, before_start }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A timeline as heapscope writes it, from owner values per sample and (name, start ms,
    /// duration ms) phases.
    pub(crate) fn timeline(owners: &[(&str, &[u64])], phases: &[(&str, u64, u64)]) -> Timeline {
        let n = owners.first().map_or(0, |o| o.1.len());
        let samples: Vec<_> = (0..n)
            .map(|i| {
                let map: serde_json::Map<_, _> =
                    owners.iter().map(|(name, v)| ((*name).to_owned(), json!(v[i]))).collect();
                json!({"at_ms": i * 100, "rss_bytes": 1000, "allocated_bytes": null,
                       "resident_bytes": null, "tracked_live_bytes": 0, "owners": map})
            })
            .collect();
        let owner = |name: &str| {
            json!({"name": name, "live_start_bytes": 0, "live_end_bytes": 0,
                                        "allocated_bytes": 0, "peak_bytes": 500})
        };
        let phases: Vec<_> = phases
            .iter()
            .map(|(name, start, duration)| {
                json!({"name": name, "started_at_unix_ms": 10_000 + start, "duration_ms": duration,
                       "tracking": true, "total": owner("total"), "owners": []})
            })
            .collect();
        serde_json::from_value(json!({"started_at_unix_ms": 10_000, "interval_ms": 100,
            "samples": samples, "dropped_samples": 0, "series": [], "phases": phases}))
        .unwrap()
    }

    fn names(data: &ChartData) -> Vec<&str> {
        data.owners.iter().map(|o| o.name.as_str()).collect()
    }

    #[test]
    fn steadiest_owner_at_the_bottom_and_empty_owners_left_out() {
        let t = timeline(
            &[
                ("history", &[0, 500, 100]),
                ("cache", &[50, 60, 70]),
                ("heapscope.overflow", &[0, 0, 0]),
                ("heapscope.internal", &[10, 10, 10]),
            ],
            &[],
        );
        let data = ChartData::new(&t, "t".into(), None).unwrap();
        assert_eq!(names(&data), ["heapscope.internal", "cache", "history"]);
        assert_eq!(data.empty_owners, 1);
        assert_eq!(data.stack_top(1), 570);
        assert_eq!(data.data_max(), 1000, "RSS is above the stack");
        assert_eq!(data.owners[0].colour, GREYS[0]);
        assert_ne!(data.owners[1].colour, data.owners[2].colour);
    }

    #[test]
    fn colours_follow_names_not_values() {
        let a = timeline(&[("cache", &[1, 2]), ("history", &[1, 900])], &[]);
        let b = timeline(&[("cache", &[1, 900]), ("history", &[1, 2])], &[]);
        let colour = |t: &Timeline, n: &str| {
            let d = ChartData::new(t, String::new(), None).unwrap();
            d.owners.iter().find(|o| o.name == n).unwrap().colour
        };
        assert_eq!(colour(&a, "history"), colour(&b, "history"));
        assert_eq!(colour(&a, "cache"), colour(&b, "cache"));
    }

    #[test]
    fn many_owners_keep_the_largest_and_sum_the_rest() {
        let values: Vec<Vec<u64>> = (1..=13).map(|i| vec![i, i * 2]).collect();
        let labels: Vec<String> = (1..=13).map(|i| format!("o{i:02}")).collect();
        let owners: Vec<(&str, &[u64])> =
            labels.iter().zip(&values).map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        let data = ChartData::new(&timeline(&owners, &[]), String::new(), None).unwrap();
        assert_eq!(data.owners.len(), MAX_OWNER_SERIES);
        let other = data.owners.iter().find(|o| o.name == "other (4 owners)").unwrap();
        assert_eq!(other.values, [1 + 2 + 3 + 4, 2 * (1 + 2 + 3 + 4)]);
        assert!(!names(&data).contains(&"o04") && names(&data).contains(&"o05"));
    }

    #[test]
    fn owners_a_sample_did_not_list_are_drawn_in_other() {
        // Sample 1 lists `history` only and sums 2 smaller owners (70 B) aside; `cache`, one
        // of them, counts 0 in its own series there and its bytes are in `other`.
        let mut t = timeline(&[("history", &[500, 600, 700]), ("cache", &[40, 0, 60])], &[]);
        t.samples[1].owners.remove("cache");
        (t.samples[1].other_owners, t.samples[1].other_owners_bytes) = (2, 70);
        let data = ChartData::new(&t, String::new(), None).unwrap();
        let other = data.owners.iter().find(|o| o.name == "other (2 unlisted owners)").unwrap();
        assert_eq!(other.values, [0, 70, 0]);
        assert_eq!(data.stack_top(1), 670, "the stack is every owner's bytes");
        // With more owners than series: the unlisted bytes join the smallest ones.
        let values: Vec<Vec<u64>> = (1..=13).map(|i| vec![i, i * 2]).collect();
        let labels: Vec<String> = (1..=13).map(|i| format!("o{i:02}")).collect();
        let owners: Vec<(&str, &[u64])> =
            labels.iter().zip(&values).map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        let mut t = timeline(&owners, &[]);
        (t.samples[0].other_owners, t.samples[0].other_owners_bytes) = (40, 1000);
        let data = ChartData::new(&t, String::new(), None).unwrap();
        assert_eq!(data.owners.len(), MAX_OWNER_SERIES);
        let other = data.owners.iter().find(|o| o.name == "other (4 owners, 40 unlisted)").unwrap();
        assert_eq!(other.values, [1000 + 1 + 2 + 3 + 4, 2 * (1 + 2 + 3 + 4)]);
    }

    #[test]
    fn short_phases_are_not_shaded() {
        // A 10 s run (samples every 100 ms): 1 % is 100 ms.
        let history: Vec<u64> = (0..101).collect();
        let t = timeline(
            &[("history", &history)],
            &[("compression", 2000, 800), ("streaming", 3000, 99), ("tool execution", 4000, 100)],
        );
        let data = ChartData::new(&t, String::new(), None).unwrap();
        let shaded: Vec<_> = data.phases.iter().map(|p| (p.name.as_str(), p.start_ms)).collect();
        assert_eq!(shaded, [("compression", 2000), ("tool execution", 4000)]);
        assert_eq!((data.phases_too_short, data.phases_over_cap), (1, 0));
        assert_eq!(data.phases[0].end_ms, 2800);
        assert_eq!(data.phases[0].peak_bytes, Some(500));
        assert_eq!(data.phase_names.len(), 2);
    }

    #[test]
    fn phases_are_placed_by_the_monotonic_clock_the_samples_count_on() {
        // A 10 s run. The machine was suspended for ten minutes before `compression`: its
        // wall-clock start is 600 s past where it ran among the samples, at 2 s.
        let history: Vec<u64> = (0..101).collect();
        let mut t = timeline(&[("history", &history)], &[("compression", 600_000 + 2000, 800)]);
        t.started_at_monotonic_ms = Some(50_000);
        t.phases[0].started_at_monotonic_ms = Some(50_000 + 2000);
        let data = ChartData::new(&t, String::new(), None).unwrap();
        let shaded: Vec<_> = data.phases.iter().map(|p| (p.start_ms, p.end_ms)).collect();
        assert_eq!(shaded, [(2000, 2800)]);
        assert_eq!(data.end_ms, 10_000, "the axis ends at the last sample, not 600 s on");
        // A file from before monotonic times: the wall-clock difference.
        t.started_at_monotonic_ms = None;
        assert_eq!(visible(&t, 0)[0].1, 602_000, "600 s past the samples, as before");
    }

    #[test]
    fn a_phase_name_covering_most_of_the_run_is_not_shaded() {
        let history: Vec<u64> = (0..101).collect();
        let busy: Vec<(&str, u64, u64)> =
            (0..6).map(|i| ("tool execution", i * 1500, 1000)).collect();
        let mut phases = busy.clone();
        phases.push(("compression", 9000, 400));
        let t = timeline(&[("history", &history)], &phases);
        let data = ChartData::new(&t, String::new(), None).unwrap();
        assert_eq!(data.phases_covering, [("tool execution".to_owned(), 60)]);
        let shaded: Vec<_> = data.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(shaded, ["compression"]);
        assert_eq!((data.phases_too_short, data.phases_over_cap), (0, 0));
    }

    #[test]
    fn at_most_six_phase_names() {
        let history = [0u64; 11];
        let phases: Vec<(String, u64, u64)> =
            (0..8).map(|i| (format!("p{i}"), i * 100, 50 + i)).collect();
        let phases: Vec<(&str, u64, u64)> =
            phases.iter().map(|(n, s, d)| (n.as_str(), *s, *d)).collect();
        let t = timeline(&[("history", &history)], &phases);
        let data = ChartData::new(&t, String::new(), None).unwrap();
        let kept: Vec<_> = data.phase_names.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(kept, ["p2", "p3", "p4", "p5", "p6", "p7"], "the longest six");
        assert_eq!(data.phases_over_cap, 2);
    }

    #[test]
    fn fewer_than_two_samples_is_an_error() {
        let none = timeline(&[], &[]);
        assert_eq!(
            ChartData::new(&none, String::new(), None).unwrap_err(),
            "the timeline has no samples"
        );
        let one = timeline(&[("history", &[1])], &[]);
        assert!(ChartData::new(&one, String::new(), None).unwrap_err().contains("one sample"));
    }
}
