//! The timeline chart as a self-contained SVG: one stacked area per top-level owner, RSS and
//! the limit as lines, long phases shaded, axes in seconds and binary byte units, a legend.
//!
//! Every part is a `<g>` that a program can find: `g.owner[data-owner]` per owner series,
//! `g#rss`, `g#limit`, `g.phase[data-phase]` per shaded phase, `g#legend`. Each carries a
//! `<title>`, which viewers show as a tooltip. [`page`] wraps the SVG in an HTML page with hover
//! values and legend toggles.
//!
//! Hand-written rather than drawn with plotters: plotters' SVG backend emits anonymous shapes
//! (no group, class or title per series), and without its `ttf` feature (font-kit and system
//! fonts) it places legend text by a rough guess.

mod data;
mod page;
mod svg;
mod ticks;

pub(crate) use data::{ChartData, Limit};
pub(crate) use page::page;

use heapscope::format_bytes;
use svg::{num, Svg};

/// Canvas size in pixels.
const WIDTH: u32 = 1000;
const HEIGHT: u32 = 540;
/// The plot area.
const LEFT: f64 = 78.0;
const RIGHT: f64 = 752.0;
const TOP: f64 = 66.0;
const BOTTOM: f64 = 482.0;
/// The legend column.
const LEGEND_X: f64 = 774.0;
const LEGEND_RIGHT: f64 = 990.0;

const FONT: &str = "Helvetica, Arial, 'DejaVu Sans', 'Liberation Sans', sans-serif";
const INK: &str = "#222222";
const MUTED: &str = "#666666";
const RSS_COLOUR: &str = "#222222";
const LIMIT_COLOUR: &str = "#c0392b";
/// A limit above this many times the data is not drawn to scale (it would flatten the chart).
const LIMIT_TO_SCALE_FACTOR: u64 = 4;

/// A rough text width: the average sans-serif glyph is about 0.58 em.
fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.58
}

/// `text` cut to `max` characters with an ellipsis.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

fn seconds(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.2} s", ms as f64 / 1000.0)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// Maps data to pixels: `start_ms` and `end_ms` are the plot's left and right edges,
/// `top_bytes` its top.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale {
    pub(crate) start_ms: f64,
    pub(crate) end_ms: f64,
    pub(crate) top_bytes: f64,
}

impl Scale {
    fn x(&self, ms: u64) -> f64 {
        let span = (self.end_ms - self.start_ms).max(1.0);
        LEFT + ((ms as f64 - self.start_ms) / span).clamp(0.0, 1.0) * (RIGHT - LEFT)
    }
    fn y(&self, bytes: u64) -> f64 {
        BOTTOM - (bytes as f64 / self.top_bytes).min(1.0) * (BOTTOM - TOP)
    }
}

/// What was drawn: the SVG, the plot's geometry (for the HTML page's script), and counts for
/// the command's one-line summary.
#[derive(Debug)]
pub(crate) struct Drawn {
    pub(crate) svg: String,
    pub(crate) scale: Scale,
    pub(crate) owners: usize,
    pub(crate) phases: usize,
}

/// Draws the chart.
pub(crate) fn render(data: &ChartData) -> Drawn {
    let data_max = data.data_max().max(1);
    let limit_to_scale =
        data.limit.as_ref().filter(|l| l.bytes <= data_max.saturating_mul(LIMIT_TO_SCALE_FACTOR));
    let y_max = limit_to_scale.map_or(data_max, |l| l.bytes.max(data_max));
    let y_ticks = ticks::byte_ticks(y_max as f64 * 1.04, 6);
    let top_bytes = y_ticks.last().map_or(1.0, |t| t.value).max(1.0);
    let scale = Scale { start_ms: data.start_ms as f64, end_ms: data.end_ms as f64, top_bytes };

    let label = format!("heapscope timeline: {}", data.title);
    let mut svg = Svg::new(
        WIDTH,
        HEIGHT,
        &[
            ("font-family", &FONT),
            ("class", &"heapscope-timeline"),
            ("role", &"img"),
            ("aria-label", &label),
        ],
    );
    svg.title(&label);
    svg.leaf("rect", &[("width", &WIDTH), ("height", &HEIGHT), ("fill", &"#ffffff")]);
    header(&mut svg, data);
    grid(&mut svg, &y_ticks, &scale);
    owners(&mut svg, data, &scale);
    phases(&mut svg, data, &scale);
    rss(&mut svg, data, &scale);
    if let Some(limit) = &data.limit {
        limit_line(&mut svg, data, limit, limit_to_scale.is_some(), &scale);
    }
    axes(&mut svg, data, &y_ticks, &scale);
    legend(&mut svg, data);
    Drawn { svg: svg.finish(), scale, owners: data.owners.len(), phases: data.phases.len() }
}

fn header(svg: &mut Svg, data: &ChartData) {
    svg.text(
        "text",
        &[("x", &LEFT), ("y", &28), ("font-size", &18), ("font-weight", &"bold"), ("fill", &INK)],
        &shorten(&data.title, 80),
    );
    let over = if data.start_ms == 0 {
        format!("over {}", seconds(data.end_ms))
    } else {
        format!(
            "from {} to {} ({} earlier dropped)",
            seconds(data.start_ms),
            seconds(data.end_ms),
            data.dropped_samples
        )
    };
    let subtitle = format!(
        "{} samples, every {} ms, {over} · stacked: live bytes of each top-level owner",
        data.times_ms.len(),
        data.interval_ms,
    );
    svg.text("text", &[("x", &LEFT), ("y", &48), ("font-size", &12), ("fill", &MUTED)], &subtitle);
}

fn grid(svg: &mut Svg, y_ticks: &[ticks::Tick], scale: &Scale) {
    svg.open("g", &[("id", &"grid"), ("stroke", &"#e4e4e4"), ("stroke-width", &1)]);
    for tick in y_ticks.iter().skip(1) {
        let y = num(scale.y(tick.value as u64));
        svg.leaf("line", &[("x1", &LEFT), ("x2", &RIGHT), ("y1", &y), ("y2", &y)]);
    }
    svg.close("g");
}

fn owners(svg: &mut Svg, data: &ChartData, scale: &Scale) {
    svg.open("g", &[("id", &"owners")]);
    let mut base = vec![0u64; data.times_ms.len()];
    for (index, owner) in data.owners.iter().enumerate() {
        let top: Vec<u64> =
            base.iter().zip(&owner.values).map(|(b, v)| b.saturating_add(*v)).collect();
        let mut d = String::new();
        for (i, (&t, &v)) in data.times_ms.iter().zip(&top).enumerate() {
            d.push_str(if i == 0 { "M" } else { " L" });
            d.push_str(&format!("{},{}", num(scale.x(t)), num(scale.y(v))));
        }
        for (&t, &b) in data.times_ms.iter().zip(&base).rev() {
            d.push_str(&format!(" L{},{}", num(scale.x(t)), num(scale.y(b))));
        }
        d.push_str(" Z");
        let id = format!("owner-{index}");
        svg.open("g", &[("class", &"owner"), ("id", &id), ("data-owner", &owner.name)]);
        svg.title(&format!(
            "{}: peak {}, last {}",
            owner.name,
            format_bytes(owner.peak()),
            format_bytes(owner.values.last().copied().unwrap_or(0))
        ));
        svg.leaf(
            "path",
            &[
                ("d", &d),
                ("fill", &owner.colour),
                ("fill-opacity", &0.88),
                ("stroke", &"#ffffff"),
                ("stroke-width", &0.6),
            ],
        );
        svg.close("g");
        base = top;
    }
    svg.close("g");
}

fn phases(svg: &mut Svg, data: &ChartData, scale: &Scale) {
    svg.open("g", &[("id", &"phases")]);
    for phase in &data.phases {
        let (x0, x1) = (scale.x(phase.start_ms), scale.x(phase.end_ms));
        let width = (x1 - x0).max(1.5);
        svg.open("g", &[("class", &"phase"), ("data-phase", &phase.name)]);
        let peak = phase
            .peak_bytes
            .map_or_else(String::new, |p| format!("; tracked peak {}", format_bytes(p)));
        svg.title(&format!(
            "phase {}: {} to {}{peak}",
            phase.name,
            seconds(phase.start_ms),
            seconds(phase.end_ms)
        ));
        svg.leaf(
            "rect",
            &[
                ("x", &num(x0)),
                ("y", &TOP),
                ("width", &num(width)),
                ("height", &(BOTTOM - TOP)),
                ("fill", &phase.colour),
                ("fill-opacity", &0.14),
                ("stroke", &phase.colour),
                ("stroke-opacity", &0.45),
                ("stroke-width", &0.8),
            ],
        );
        if let Some(peak) = phase.peak_bytes {
            let y = num(scale.y(peak));
            svg.leaf(
                "line",
                &[
                    ("class", &"phase-peak"),
                    ("x1", &num(x0)),
                    ("x2", &num(x0 + width)),
                    ("y1", &y),
                    ("y2", &y),
                    ("stroke", &phase.colour),
                    ("stroke-width", &2.5),
                ],
            );
        }
        // The name at the top of the band: across when it fits, else up the band's left edge.
        let halo: [(&str, &dyn std::fmt::Display); 5] = [
            ("font-size", &10),
            ("fill", &phase.colour),
            ("stroke", &"#ffffff"),
            ("stroke-width", &2.5),
            ("paint-order", &"stroke"),
        ];
        if text_width(&phase.name, 10.0) + 6.0 <= width {
            let x = num(x0 + 3.0);
            let mut attrs: Vec<(&str, &dyn std::fmt::Display)> =
                vec![("x", &x), ("y", &(TOP + 12.0))];
            attrs.extend_from_slice(&halo);
            svg.text("text", &attrs, &phase.name);
        } else {
            let (x, y) = (num(x0 + 10.0), TOP + 4.0);
            let rotate = format!("rotate(-90 {x} {y})");
            let mut attrs: Vec<(&str, &dyn std::fmt::Display)> =
                vec![("x", &x), ("y", &y), ("text-anchor", &"end"), ("transform", &rotate)];
            attrs.extend_from_slice(&halo);
            svg.text("text", &attrs, &phase.name);
        }
        svg.close("g");
    }
    svg.close("g");
}

fn rss(svg: &mut Svg, data: &ChartData, scale: &Scale) {
    let peak = data.rss.iter().flatten().max();
    let Some(peak) = peak else { return };
    svg.open("g", &[("id", &"rss"), ("class", &"line")]);
    svg.title(&format!("RSS (VmRSS): peak {}", format_bytes(*peak)));
    // A sample without RSS breaks the line.
    let mut runs: Vec<Vec<String>> = vec![Vec::new()];
    for (&t, rss) in data.times_ms.iter().zip(&data.rss) {
        match rss {
            Some(v) => runs
                .last_mut()
                .map_or((), |r| r.push(format!("{},{}", num(scale.x(t)), num(scale.y(*v))))),
            None => runs.push(Vec::new()),
        }
    }
    for run in runs.iter().filter(|r| !r.is_empty()) {
        svg.leaf(
            "polyline",
            &[
                ("points", &run.join(" ")),
                ("fill", &"none"),
                ("stroke", &RSS_COLOUR),
                ("stroke-width", &2),
                ("stroke-linejoin", &"round"),
            ],
        );
    }
    svg.close("g");
}

/// The start of the widest stretch of the plot's width that no shaded phase covers, so a label
/// placed there crosses no phase name.
fn widest_gap(data: &ChartData, scale: &Scale) -> (f64, f64) {
    let mut gaps = Vec::new();
    let mut from = LEFT;
    for phase in &data.phases {
        let (x0, x1) = (scale.x(phase.start_ms), scale.x(phase.end_ms));
        gaps.push((from, x0 - from));
        from = from.max(x1);
    }
    gaps.push((from, RIGHT - from));
    gaps.into_iter().fold((LEFT, 0.0), |best, gap| if gap.1 > best.1 { gap } else { best })
}

fn limit_line(svg: &mut Svg, data: &ChartData, limit: &Limit, to_scale: bool, scale: &Scale) {
    svg.open("g", &[("id", &"limit"), ("class", &"line"), ("data-bytes", &limit.bytes)]);
    let text = format!("limit {} ({})", format_bytes(limit.bytes), limit.source);
    let y = if to_scale { scale.y(limit.bytes) } else { TOP };
    // To scale: the label just above the line; off the scale: above the plot, outside it.
    let (label, label_y) = if to_scale {
        (text.clone(), y - 5.0)
    } else {
        (format!("↑ {text} is above the chart"), TOP - 6.0)
    };
    svg.title(&text);
    let y_text = num(y);
    svg.leaf(
        "line",
        &[
            ("x1", &LEFT),
            ("x2", &RIGHT),
            ("y1", &y_text),
            ("y2", &y_text),
            ("stroke", &LIMIT_COLOUR),
            ("stroke-width", &2),
            ("stroke-dasharray", &if to_scale { "8 5" } else { "2 4" }),
        ],
    );
    // Above the plot: right-aligned; on it: in the widest stretch without a shaded phase.
    let (x, anchor) = if to_scale {
        let (start, width) = widest_gap(data, scale);
        (num(start + ((width - text_width(&label, 11.0)) / 2.0).max(4.0)), "start")
    } else {
        (num(RIGHT - 4.0), "end")
    };
    svg.text(
        "text",
        &[
            ("x", &x),
            ("y", &num(label_y)),
            ("text-anchor", &anchor),
            ("font-size", &11),
            ("fill", &LIMIT_COLOUR),
            ("stroke", &"#ffffff"),
            ("stroke-width", &2.5),
            ("paint-order", &"stroke"),
        ],
        &label,
    );
    svg.close("g");
}

fn axes(svg: &mut Svg, data: &ChartData, y_ticks: &[ticks::Tick], scale: &Scale) {
    svg.open("g", &[("id", &"axes"), ("font-size", &11), ("fill", &INK)]);
    let axis = [("stroke", &INK as &dyn std::fmt::Display), ("stroke-width", &1)];
    let mut attrs: Vec<(&str, &dyn std::fmt::Display)> =
        vec![("x1", &LEFT), ("x2", &RIGHT), ("y1", &BOTTOM), ("y2", &BOTTOM)];
    attrs.extend_from_slice(&axis);
    svg.leaf("line", &attrs);
    let mut attrs: Vec<(&str, &dyn std::fmt::Display)> =
        vec![("x1", &LEFT), ("x2", &LEFT), ("y1", &TOP), ("y2", &BOTTOM)];
    attrs.extend_from_slice(&axis);
    svg.leaf("line", &attrs);
    for tick in y_ticks {
        let y = scale.y(tick.value as u64);
        svg.text(
            "text",
            &[("x", &(LEFT - 6.0)), ("y", &num(y + 4.0)), ("text-anchor", &"end")],
            &tick.label,
        );
    }
    let time_ticks =
        ticks::time_ticks(data.start_ms as f64 / 1000.0, data.end_ms as f64 / 1000.0, 10);
    for tick in &time_ticks {
        let x = num(scale.x((tick.value * 1000.0).round() as u64));
        let mut attrs: Vec<(&str, &dyn std::fmt::Display)> =
            vec![("x1", &x), ("x2", &x), ("y1", &BOTTOM), ("y2", &(BOTTOM + 5.0))];
        attrs.extend_from_slice(&axis);
        svg.leaf("line", &attrs);
        svg.text(
            "text",
            &[("x", &x), ("y", &(BOTTOM + 18.0)), ("text-anchor", &"middle")],
            &tick.label,
        );
    }
    svg.text(
        "text",
        &[
            ("x", &((LEFT + RIGHT) / 2.0)),
            ("y", &(BOTTOM + 38.0)),
            ("text-anchor", &"middle"),
            ("fill", &MUTED),
        ],
        "time since the timeline started",
    );
    svg.close("g");
}

/// The small print under the legend: what the chart leaves out, and why.
fn notes(data: &ChartData) -> Vec<String> {
    let mut notes = Vec::new();
    for (name, percent) in &data.phases_covering {
        notes.push(format!("{} ({percent} % of the run)", shorten(name, 18)));
    }
    if data.phases_too_short > 0 {
        let under = data::MIN_PHASE_PERCENT;
        notes.push(format!("{} phases under {under} % of the run", data.phases_too_short));
    }
    if data.phases_over_cap > 0 {
        let cap = data::MAX_PHASE_NAMES;
        notes.push(format!("{} phases past the first {cap} names", data.phases_over_cap));
    }
    if data.phases_before_start > 0 {
        notes.push(format!("{} phases before the first sample kept", data.phases_before_start));
    }
    if !notes.is_empty() {
        notes.insert(0, "not shaded:".to_owned());
    }
    if data.empty_owners > 0 {
        let owners = if data.empty_owners == 1 { "owner" } else { "owners" };
        notes.push(format!("not drawn: {} {owners} that held nothing", data.empty_owners));
    }
    notes
}

fn legend(svg: &mut Svg, data: &ChartData) {
    const NOTE_PITCH: f64 = 13.0;
    const HEADING: f64 = 20.0;
    let notes = notes(data);
    let has_peaks = data.phases.iter().any(|p| p.peak_bytes.is_some());
    let rows = 1
        + usize::from(data.limit.is_some())
        + data.owners.len()
        + data.phase_names.len()
        + usize::from(has_peaks);
    let headings = if data.phase_names.is_empty() { 2.0 } else { 3.0 };
    // Entries get closer together when there are many, so they never reach the notes.
    let room = BOTTOM - TOP - headings * (HEADING + 8.0) - NOTE_PITCH * notes.len() as f64;
    let pitch = (room / rows as f64).clamp(13.0, 19.0);

    svg.open("g", &[("id", &"legend"), ("font-size", &12), ("fill", &INK)]);
    let mut y = TOP + 4.0;
    let heading = |svg: &mut Svg, y: &mut f64, text: &str| {
        svg.text(
            "text",
            &[("x", &LEGEND_X), ("y", &num(*y + 4.0)), ("font-weight", &"bold"), ("fill", &MUTED)],
            text,
        );
        *y += HEADING;
    };
    let entry = |svg: &mut Svg, y: &mut f64, series: &str, name: &str, value: &str| {
        svg.open("g", &[("class", &"legend-entry"), ("data-series", &series)]);
        svg.title(name);
        svg.text("text", &[("x", &(LEGEND_X + 24.0)), ("y", &num(*y + 4.0))], &shorten(name, 18));
        if !value.is_empty() {
            svg.text(
                "text",
                &[
                    ("x", &LEGEND_RIGHT),
                    ("y", &num(*y + 4.0)),
                    ("text-anchor", &"end"),
                    ("fill", &MUTED),
                    ("font-size", &11),
                ],
                value,
            );
        }
        svg.close("g");
        *y += pitch;
    };
    let line_swatch = |svg: &mut Svg, y: f64, colour: &str, dash: &str| {
        let y = num(y);
        svg.leaf(
            "line",
            &[
                ("x1", &LEGEND_X),
                ("x2", &(LEGEND_X + 16.0)),
                ("y1", &y),
                ("y2", &y),
                ("stroke", &colour),
                ("stroke-width", &2),
                ("stroke-dasharray", &dash),
            ],
        );
    };
    let box_swatch = |svg: &mut Svg, y: f64, colour: &str, opacity: f64| {
        svg.leaf(
            "rect",
            &[
                ("x", &LEGEND_X),
                ("y", &num(y - 6.0)),
                ("width", &16),
                ("height", &11),
                ("fill", &colour),
                ("fill-opacity", &opacity),
                ("stroke", &colour),
                ("stroke-width", &0.8),
            ],
        );
    };

    heading(svg, &mut y, "lines (peak)");
    if let Some(peak) = data.rss.iter().flatten().max() {
        line_swatch(svg, y, RSS_COLOUR, "none");
        entry(svg, &mut y, "rss", "RSS", &format_bytes(*peak));
    }
    if let Some(limit) = &data.limit {
        line_swatch(svg, y, LIMIT_COLOUR, "8 5");
        entry(
            svg,
            &mut y,
            "limit",
            &format!("limit ({})", limit.source),
            &format_bytes(limit.bytes),
        );
    }
    y += 8.0;
    heading(svg, &mut y, "owners (peak)");
    // Top of the stack first, as they appear in the chart.
    for owner in data.owners.iter().rev() {
        box_swatch(svg, y, owner.colour, 0.88);
        let series = format!("owner:{}", owner.name);
        entry(svg, &mut y, &series, &owner.name, &format_bytes(owner.peak()));
    }
    if !data.phase_names.is_empty() {
        y += 8.0;
        heading(svg, &mut y, "phases (shaded)");
        for (name, colour) in &data.phase_names {
            box_swatch(svg, y, colour, 0.25);
            let series = format!("phase:{name}");
            let count = data.phases.iter().filter(|p| &p.name == name).count();
            entry(svg, &mut y, &series, name, &format!("×{count}"));
        }
        if let Some(phase) = data.phases.iter().find(|p| p.peak_bytes.is_some()) {
            line_swatch(svg, y, phase.colour, "none");
            entry(svg, &mut y, "phase-peak", "peak in the phase", "");
        }
    }
    y = y.max(BOTTOM - NOTE_PITCH * notes.len() as f64 + 10.0);
    for note in notes {
        svg.text(
            "text",
            &[("x", &LEGEND_X), ("y", &num(y)), ("font-size", &10), ("fill", &MUTED)],
            &note,
        );
        y += NOTE_PITCH;
    }
    svg.close("g");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_shortened_with_an_ellipsis() {
        assert_eq!(shorten("history", 20), "history");
        assert_eq!(shorten("abcdefghij", 5), "abcd…");
    }

    #[test]
    fn seconds_keep_two_decimals_under_ten() {
        assert_eq!(seconds(1540), "1.54 s");
        assert_eq!(seconds(12_345), "12.3 s");
    }
}
