//! `heapscope timeline`: the chart of a real agent_session run, parsed as XML (one series per
//! owner, the RSS line, shaded phases, the limit line from `--limit` or a report), an exact
//! check on a hand-written timeline, the self-contained HTML page, and the error cases (one
//! line, exit status 2). `.ci/run` also renders both in headless Chromium.
#![cfg(all(feature = "cli", feature = "enabled", feature = "jemalloc", target_os = "linux"))]

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn dir(name: &str) -> PathBuf {
    let d =
        std::env::temp_dir().join(format!("heapscope-cli-timeline-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn heapscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_heapscope")).args(args).output().expect("run heapscope")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs a short agent session writing into `out`.
fn agent_session(out: &Path) {
    let output = Command::new(common::example("agent_session"))
        .args(["--turns", "16", "--compress-every", "8", "--max-payload", "512KiB"])
        .args(["--compression", "deep-copy", "--out"])
        .arg(out)
        .output()
        .expect("run the example");
    assert!(output.status.success(), "{}", stderr(&output));
}

fn class_is(node: &roxmltree::Node, class: &str) -> bool {
    node.attribute("class").is_some_and(|c| c.split(' ').any(|c| c == class))
}

fn groups<'a>(doc: &'a roxmltree::Document, class: &str) -> Vec<roxmltree::Node<'a, 'a>> {
    doc.descendants().filter(|n| n.has_tag_name("g") && class_is(n, class)).collect()
}

fn by_id<'a>(doc: &'a roxmltree::Document, id: &str) -> Option<roxmltree::Node<'a, 'a>> {
    doc.descendants().find(|n| n.attribute("id") == Some(id))
}

fn title(node: &roxmltree::Node) -> String {
    node.children().find(|c| c.has_tag_name("title")).and_then(|t| t.text()).unwrap_or("").into()
}

fn child<'a>(node: &roxmltree::Node<'a, 'a>, tag: &str) -> roxmltree::Node<'a, 'a> {
    node.descendants().find(|c| c.has_tag_name(tag)).unwrap_or_else(|| panic!("no <{tag}>"))
}

/// Renders `timeline` to `out_svg` with `extra` arguments and returns the SVG text.
fn render(timeline: &Path, out_svg: &Path, extra: &[&str]) -> String {
    let mut args = vec!["timeline", s(timeline), "-o", s(out_svg)];
    args.extend_from_slice(extra);
    let out = heapscope(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with(&format!("wrote {}", out_svg.display())), "{stdout}");
    let mode = std::fs::metadata(out_svg).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the chart is written privately");
    std::fs::read_to_string(out_svg).unwrap()
}

#[test]
fn chart_of_an_agent_session() {
    let d = dir("session");
    agent_session(&d);
    let timeline_path = d.join("timeline.json");
    let timeline: heapscope::Timeline =
        serde_json::from_slice(&std::fs::read(&timeline_path).unwrap()).unwrap();
    let svg = render(&timeline_path, &d.join("memory.svg"), &["--limit", "64MiB"]);
    let doc = roxmltree::Document::parse(&svg).expect("the chart is well-formed XML");
    assert!(doc.root_element().has_tag_name(("http://www.w3.org/2000/svg", "svg")));

    // One series per owner that held bytes, each with its own colour and a non-empty area.
    let expected: BTreeSet<&str> = timeline
        .samples
        .iter()
        .flat_map(|s| s.owners.iter().filter(|(_, &v)| v > 0).map(|(k, _)| k.as_str()))
        .collect();
    assert!(expected.contains("history") && expected.contains("tool_results"), "{expected:?}");
    let owners = groups(&doc, "owner");
    let drawn: BTreeSet<&str> = owners.iter().map(|g| g.attribute("data-owner").unwrap()).collect();
    assert_eq!(drawn, expected);
    assert_eq!(owners.len(), drawn.len(), "one series per owner");
    let mut fills = BTreeSet::new();
    for g in &owners {
        let name = g.attribute("data-owner").unwrap();
        assert!(title(g).starts_with(&format!("{name}: peak ")), "{}", title(g));
        let path = child(g, "path");
        fills.insert(path.attribute("fill").unwrap());
        let d = path.attribute("d").unwrap();
        // Top edge forward and bottom edge back: two points per sample.
        assert_eq!(d.matches(['M', 'L']).count(), 2 * timeline.samples.len(), "{name}: {d}");
    }
    assert_eq!(fills.len(), owners.len(), "distinct colours");
    // Every owner has a legend entry.
    let legend = groups(&doc, "legend-entry");
    for name in &expected {
        let series = format!("owner:{name}");
        assert!(legend.iter().any(|e| e.attribute("data-series") == Some(&series)), "{name}");
    }

    // The RSS line has one point per sample that read RSS.
    let rss = by_id(&doc, "rss").expect("an RSS line");
    let points: usize = rss
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .map(|p| p.attribute("points").unwrap().split_whitespace().count())
        .sum();
    assert_eq!(points, timeline.samples.iter().filter(|s| s.rss_bytes.is_some()).count());

    // Phases are shaded, each band named after a phase of the run. Which ones depends on how
    // long each took against the whole run (phases under 1 % are not shaded, nor a name that
    // covers most of it; `chart_of_a_hand_written_timeline` checks that rule exactly), so a
    // fast build may shade none: then the chart must say why.
    assert!(!timeline.phases.is_empty(), "the session records phases");
    let phases = groups(&doc, "phase");
    assert!(!phases.is_empty() || svg.contains(">not shaded:<"), "phases vanished from {svg}");
    let names: BTreeSet<&str> = timeline.phases.iter().map(|p| p.name.as_str()).collect();
    for band in &phases {
        let name = band.attribute("data-phase").unwrap();
        assert!(names.contains(name), "{name}");
        assert!(title(band).starts_with(&format!("phase {name}: ")), "{}", title(band));
        let rect = child(band, "rect");
        assert!(rect.attribute("width").unwrap().parse::<f64>().unwrap() > 0.0);
        assert!(band.descendants().any(|t| t.has_tag_name("text") && t.text() == Some(name)));
    }

    // The limit line: drawn and named whether or not it is to scale.
    let limit = by_id(&doc, "limit").expect("a limit line");
    assert_eq!(limit.attribute("data-bytes"), Some("67108864"));
    assert!(title(&limit).starts_with("limit 64.0 MiB (--limit)"), "{}", title(&limit));

    // Without --limit or --report there is no limit line.
    let svg = render(&timeline_path, &d.join("plain.svg"), &[]);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert!(by_id(&doc, "limit").is_none());

    // --report takes the report's effective limit.
    let report: heapscope::Report =
        serde_json::from_slice(&std::fs::read(d.join("report.json")).unwrap()).unwrap();
    let svg =
        render(&timeline_path, &d.join("reported.svg"), &["--report", s(&d.join("report.json"))]);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    match report.limits.effective_bytes {
        Some(bytes) => {
            let limit = by_id(&doc, "limit").expect("the report's limit");
            assert_eq!(limit.attribute("data-bytes"), Some(bytes.to_string().as_str()));
            let source = report.limits.effective_source.unwrap();
            assert!(title(&limit).contains(&format!("({source})")), "{}", title(&limit));
        }
        None => assert!(by_id(&doc, "limit").is_none()),
    }
    std::fs::remove_dir_all(&d).ok();
}

/// A timeline with three owners (one always empty), and phases: one long, one short.
const HAND_WRITTEN: &str = r#"{
  "started_at_unix_ms": 1000000, "interval_ms": 100, "dropped_samples": 0, "series": [],
  "samples": [
    {"at_ms": 0, "rss_bytes": 10485760, "allocated_bytes": null, "resident_bytes": null,
     "tracked_live_bytes": 0, "owners": {"history": 1048576, "cache <&>": 2097152, "idle": 0}},
    {"at_ms": 1000, "rss_bytes": null, "allocated_bytes": null, "resident_bytes": null,
     "tracked_live_bytes": 0, "owners": {"history": 8388608, "cache <&>": 2097152, "idle": 0}},
    {"at_ms": 2000, "rss_bytes": 20971520, "allocated_bytes": null, "resident_bytes": null,
     "tracked_live_bytes": 0, "owners": {"history": 4194304, "cache <&>": 2097152, "idle": 0}},
    {"at_ms": 3000, "rss_bytes": 20971520, "allocated_bytes": null, "resident_bytes": null,
     "tracked_live_bytes": 0, "owners": {"history": 4194304, "cache <&>": 3145728, "idle": 0}}
  ],
  "phases": [
    {"name": "compression", "started_at_unix_ms": 1000900, "duration_ms": 600, "tracking": true,
     "total": {"name": "total", "live_start_bytes": 0, "live_end_bytes": 0,
               "allocated_bytes": 0, "peak_bytes": 12582912}, "owners": []},
    {"name": "streaming", "started_at_unix_ms": 1002000, "duration_ms": 5, "tracking": true,
     "total": {"name": "total", "live_start_bytes": 0, "live_end_bytes": 0,
               "allocated_bytes": 0, "peak_bytes": 0}, "owners": []}
  ]
}"#;

#[test]
fn chart_of_a_hand_written_timeline() {
    let d = dir("hand");
    let path = d.join("timeline.json");
    std::fs::write(&path, HAND_WRITTEN).unwrap();
    // An existing output is replaced, and the new file is private whatever the old mode.
    let out_svg = d.join("chart.svg");
    std::fs::write(&out_svg, "old").unwrap();
    std::fs::set_permissions(&out_svg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let svg = render(&path, &out_svg, &["--limit", "16MiB", "--title", "a <small> run"]);
    let doc = roxmltree::Document::parse(&svg).unwrap();

    // The steadier cache is stacked below the history; the empty owner is left out.
    let owners: Vec<&str> =
        groups(&doc, "owner").iter().map(|g| g.attribute("data-owner").unwrap()).collect();
    assert_eq!(owners, ["cache <&>", "history"]);
    assert!(svg.contains("a &lt;small&gt; run"), "the title is escaped");
    // A sample without RSS splits the line in two.
    let rss = by_id(&doc, "rss").unwrap();
    assert_eq!(rss.descendants().filter(|n| n.has_tag_name("polyline")).count(), 2);
    // The long phase is shaded with its peak; the 5 ms one (under 1 % of the run) is not.
    let phases = groups(&doc, "phase");
    assert_eq!(phases.len(), 1);
    assert_eq!(phases[0].attribute("data-phase"), Some("compression"));
    assert_eq!(title(&phases[0]), "phase compression: 0.90 s to 1.50 s; tracked peak 12.0 MiB");
    assert!(phases[0].descendants().any(|n| class_is(&n, "phase-peak")));
    assert!(
        svg.contains(">not shaded:<") && svg.contains(">1 phases under 1 % of the run<"),
        "{svg}"
    );
    // The 16 MiB limit is to scale: its line lies inside the plot, below the top.
    let limit = by_id(&doc, "limit").unwrap();
    let line = child(&limit, "line");
    let y: f64 = line.attribute("y1").unwrap().parse().unwrap();
    assert!(title(&limit) == "limit 16.0 MiB (--limit)" && y > 70.0, "{y}");
    // Axes: seconds and binary units.
    let labels: Vec<&str> = by_id(&doc, "axes")
        .unwrap()
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    let seconds: Vec<&str> = labels.iter().copied().filter(|l| l.ends_with(" s")).collect();
    assert_eq!(seconds, ["0.0 s", "0.5 s", "1.0 s", "1.5 s", "2.0 s", "2.5 s", "3.0 s"]);
    let bytes: Vec<&str> = labels.iter().copied().filter(|l| l.ends_with("iB")).collect();
    assert_eq!(bytes, ["5 MiB", "10 MiB", "15 MiB", "20 MiB", "25 MiB"]);

    // A limit far above the data is not drawn to scale but still named.
    let svg = render(&path, &d.join("far.svg"), &["--limit", "64GiB"]);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let limit = by_id(&doc, "limit").unwrap();
    assert!(limit
        .descendants()
        .any(|n| n.text() == Some("↑ limit 64.0 GiB (--limit) is above the chart")));
    let top: Vec<&str> =
        by_id(&doc, "axes").unwrap().descendants().filter_map(|n| n.text()).collect();
    assert!(!top.iter().any(|l| l.ends_with("GiB")), "the y axis stays in MiB: {top:?}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn html_page_is_self_contained() {
    let d = dir("html");
    let path = d.join("timeline.json");
    std::fs::write(&path, HAND_WRITTEN).unwrap();
    let out = d.join("memory.html");
    let page = render(&path, &out, &["--limit", "16MiB", "--title", "a <small> run"]);
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.contains("<title>heapscope timeline: a &lt;small&gt; run</title>"), "{page}");
    // Nothing is fetched: a policy that forbids it, and no reference to anything outside.
    assert!(page.contains(
        "content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\""
    ));
    for reference in [" src=", " href=", "https:", "url("] {
        assert!(!page.contains(reference), "{reference} in the page");
    }
    assert_eq!(
        page.matches("http:").count(),
        2,
        "only the SVG namespace, in the markup and the script"
    );
    // The chart is the same SVG, inline.
    let start = page.find("<svg").unwrap();
    let end = page.find("</svg>").unwrap() + "</svg>".len();
    let doc = roxmltree::Document::parse(&page[start..end]).expect("the inline SVG is XML");
    let owners: Vec<&str> =
        groups(&doc, "owner").iter().map(|g| g.attribute("data-owner").unwrap()).collect();
    assert_eq!(owners, ["cache <&>", "history"]);
    // The script's data is JSON with every owner's values; no `<` can close its element early.
    let marker = "<script type=\"application/json\" id=\"heapscope-data\">";
    let json = &page[page.find(marker).unwrap() + marker.len()..];
    let json = &json[..json.find("</script>").unwrap()];
    assert!(!json.contains('<'), "{json}");
    let data: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(data["owners"][0]["name"], "cache <&>");
    assert_eq!(
        data["owners"][1]["values"],
        serde_json::json!([1048576, 8388608, 4194304, 4194304])
    );
    assert_eq!(data["times_ms"], serde_json::json!([0, 1000, 2000, 3000]));
    assert_eq!(data["rss"][1], serde_json::Value::Null);
    assert_eq!(data["phases"][0]["name"], "compression");
    assert!(page.contains("data-heapscope-check"), "the script's self-check is in the page");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn errors_are_one_line_and_nonzero() {
    let d = dir("errors");
    let good = d.join("good.json");
    std::fs::write(&good, HAND_WRITTEN).unwrap();
    let write = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let truncated = write("truncated.json", &HAND_WRITTEN[..200]);
    let report = write("report.json", "{\"schema_version\": 1, \"runtime\": {}}");
    let other = write("other.json", "{\"hello\": 1}");
    let empty = write(
        "empty.json",
        "{\"started_at_unix_ms\": 0, \"interval_ms\": 20, \"samples\": [], \"dropped_samples\": 0, \"series\": [], \"phases\": []}",
    );
    let wrong_type = write("wrong.json", "{\"samples\": 3}");
    let a_file = write("a_file", "");
    let chart = d.join("chart.svg");
    let (missing, png) = (d.join("missing.json"), d.join("chart.png"));
    let under_a_file = format!("{}/chart.svg", s(&a_file));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![s(&missing), "-o", s(&chart)], "cannot read"),
        (vec![s(&truncated), "-o", s(&chart)], "is not complete JSON"),
        (
            vec![s(&report), "-o", s(&chart)],
            "not a heapscope timeline (no samples) (it looks like a report",
        ),
        (vec![s(&other), "-o", s(&chart)], "not a heapscope timeline (no samples)"),
        (vec![s(&wrong_type), "-o", s(&chart)], "not a heapscope timeline: invalid type"),
        (vec![s(&empty), "-o", s(&chart)], "the timeline has no samples"),
        (vec![s(&good), "-o", s(&png)], "the output must end in .svg or .html"),
        (vec![s(&good), "-o", "/proc/heapscope-no-such-dir/chart.svg"], "cannot write"),
        (vec![s(&good), "-o", &under_a_file], "cannot write"),
        (vec![s(&good), "-o", s(&d)], "the output must end in .svg or .html"),
        (vec![s(&good), "-o", s(&chart), "--report", s(&other)], "not a heapscope report"),
    ];
    for (args, expected) in &cases {
        let mut all = vec!["timeline"];
        all.extend_from_slice(args);
        let out = heapscope(&all);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("heapscope: ") && err.contains(expected), "{args:?}: {err}");
        assert!(!chart.exists(), "{args:?} wrote a chart");
    }
    // An unwritable output leaves no temporary file behind.
    let leftovers: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A bad --limit is clap's usage error, also status 2.
    let out = heapscope(&["timeline", s(&good), "-o", s(&chart), "--limit", "lots"]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&d).ok();
}

/// Phase names are any string (`heapscope::phase(name)` checks nothing); one holding a
/// control character (an ANSI colour code from a tool's name) was written into the SVG as
/// is, and XML 1.0 forbids it: browsers refused the whole chart.
#[test]
fn a_phase_name_with_a_control_character_keeps_the_svg_well_formed() {
    let d = dir("control");
    let sample = |at: u64| {
        serde_json::json!({"at_ms": at, "rss_bytes": 1000, "allocated_bytes": null,
            "resident_bytes": null, "tracked_live_bytes": 0, "owners": {"a": 10 + at}})
    };
    let total = serde_json::json!({"name": "total", "live_start_bytes": 0, "live_end_bytes": 0,
        "allocated_bytes": 0, "peak_bytes": 5});
    let t = serde_json::json!({"started_at_unix_ms": 10_000, "interval_ms": 100,
        "samples": [sample(0), sample(100), sample(200)], "dropped_samples": 0, "series": [],
        "phases": [{"name": "\u{1b}[31mtool\u{1b}[0m", "started_at_unix_ms": 10_050,
                    "duration_ms": 60, "tracking": true, "total": total, "owners": []}]});
    let path = d.join("timeline.json");
    std::fs::write(&path, serde_json::to_vec(&t).unwrap()).unwrap();
    let svg = d.join("out.svg");
    let out = heapscope(&["timeline", s(&path), "-o", s(&svg)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("the chart is well-formed XML");
    let phase = groups(&doc, "phase").into_iter().next().expect("the phase is shaded");
    assert!(title(&phase).contains("\u{fffd}[31mtool\u{fffd}[0m"), "{}", title(&phase));
    std::fs::remove_dir_all(&d).ok();
}

/// A sampler that ran longer than its ring keeps only the last samples (`dropped_samples`),
/// whose times count from the timeline's start: an hour in, a ring of one minute. The time
/// axis ran from 0 regardless, so the minute that was kept was drawn in the last 2 % of the
/// plot (x from 741 to 752 of 78 to 752) and the rest of the chart was empty.
#[test]
fn a_ring_that_dropped_samples_is_drawn_across_the_whole_plot() {
    let d = dir("dropped");
    let samples: Vec<_> = (0..=60u64)
        .map(|i| {
            serde_json::json!({"at_ms": 3_600_000 + i * 1000, "rss_bytes": 8 << 20,
                "allocated_bytes": null, "resident_bytes": null, "tracked_live_bytes": 0,
                "owners": {"history": (1 + i) << 16}})
        })
        .collect();
    let total = serde_json::json!({"name": "total", "live_start_bytes": 0, "live_end_bytes": 0,
        "allocated_bytes": 0, "peak_bytes": 5 << 20});
    let phase = |name: &str, start_s: u64, duration_ms: u64| {
        serde_json::json!({"name": name, "started_at_unix_ms": 10_000 + start_s * 1000,
            "duration_ms": duration_ms, "tracking": true, "total": total, "owners": []})
    };
    // One phase long before the kept samples (in the dropped stretch), one among them.
    let t = serde_json::json!({"started_at_unix_ms": 10_000, "interval_ms": 1000,
        "samples": samples, "dropped_samples": 3600, "series": [],
        "phases": [phase("startup", 60, 30_000), phase("compression", 3_620, 10_000)]});
    let path = d.join("timeline.json");
    std::fs::write(&path, serde_json::to_vec(&t).unwrap()).unwrap();
    let svg = render(&path, &d.join("chart.svg"), &[]);
    let doc = roxmltree::Document::parse(&svg).unwrap();

    // The owner's area spans the plot, left edge to right edge.
    let area = child(&groups(&doc, "owner")[0], "path").attribute("d").unwrap().to_owned();
    let xs: Vec<f64> = area
        .split(['M', 'L', 'Z'])
        .filter_map(|p| p.trim().split_once(',').map(|(x, _)| x.parse::<f64>().unwrap()))
        .collect();
    let (min_x, max_x) =
        xs.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    assert!(min_x < 80.0 && max_x > 750.0, "the owner is drawn from x {min_x} to {max_x}");
    // Time ticks are seconds since the timeline started, within the kept minute.
    let seconds: Vec<f64> = by_id(&doc, "axes")
        .unwrap()
        .descendants()
        .filter_map(|n| n.text()?.strip_suffix(" s")?.parse().ok())
        .collect();
    assert!(seconds.len() >= 3, "{seconds:?}");
    assert!(seconds.iter().all(|&s| (3600.0..=3660.0).contains(&s)), "{seconds:?}");
    // The phase among the kept samples is shaded; the one in the dropped stretch is not drawn.
    let phases: Vec<&str> =
        groups(&doc, "phase").iter().filter_map(|g| g.attribute("data-phase")).collect();
    assert_eq!(phases, ["compression"]);
    std::fs::remove_dir_all(&d).ok();
}
