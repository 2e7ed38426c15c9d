//! The chart as an HTML page that works offline: the same SVG inline, the chart's data as JSON,
//! and a small inline script (`page.js`) for hover values and legend toggles. The page loads
//! nothing from anywhere: its Content-Security-Policy forbids every fetch.

use super::data::ChartData;
use super::svg::escape;
use super::{Drawn, BOTTOM, LEFT, RIGHT, TOP};
use serde_json::json;

const SCRIPT: &str = include_str!("page.js");

const STYLE: &str = "\
body { margin: 16px; font-family: Helvetica, Arial, 'DejaVu Sans', sans-serif; color: #222; }
svg.heapscope-timeline { max-width: 100%; height: auto; display: block; }
#legend .legend-entry { cursor: pointer; }
#legend .legend-entry.off { opacity: 0.35; }
#tooltip { position: absolute; display: none; pointer-events: none; background: #fff;
  border: 1px solid #bbb; border-radius: 4px; padding: 6px 8px; font-size: 12px;
  box-shadow: 0 2px 6px rgba(0,0,0,0.15); white-space: nowrap; }
#tooltip .swatch { display: inline-block; width: 10px; height: 10px; margin-right: 6px; }
#tooltip .value { float: right; margin-left: 16px; color: #555; }
p.hint { color: #666; font-size: 13px; }
";

/// The data the script needs, as JSON safe to put inside a `<script>` element.
fn data_json(data: &ChartData, drawn: &Drawn) -> String {
    let owners: Vec<_> = data
        .owners
        .iter()
        .map(|o| json!({"name": o.name, "colour": o.colour, "values": o.values}))
        .collect();
    let phases: Vec<_> = data
        .phases
        .iter()
        .map(|p| json!({"name": p.name, "start_ms": p.start_ms, "end_ms": p.end_ms}))
        .collect();
    let value = json!({
        "times_ms": data.times_ms,
        "owners": owners,
        "rss": data.rss,
        "phases": phases,
        "plot": {"left": LEFT, "right": RIGHT, "top": TOP, "bottom": BOTTOM,
                 "start_ms": drawn.scale.start_ms, "end_ms": drawn.scale.end_ms,
                 "top_bytes": drawn.scale.top_bytes},
    });
    // `<` only occurs inside JSON strings, where `\u003c` means the same; no `</script>` or
    // `<!--` can then end the element early.
    value.to_string().replace('<', "\\u003c")
}

/// The page.
pub(crate) fn page(data: &ChartData, drawn: &Drawn) -> String {
    let svg = drawn.svg.split_once("?>\n").map_or(drawn.svg.as_str(), |(_, rest)| rest);
    format!(
        "<!DOCTYPE html>
<html lang=\"en\">
<head>
<meta charset=\"utf-8\">
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">
<title>{title}</title>
<style>
{STYLE}</style>
</head>
<body>
{svg}<p class=\"hint\">Hover over the chart for the values at that moment; click a legend entry to hide or show it (the owners above it move down).</p>
<div id=\"tooltip\"></div>
<script type=\"application/json\" id=\"heapscope-data\">{json}</script>
<script>
{SCRIPT}</script>
</body>
</html>
",
        title = escape(&format!("heapscope timeline: {}", data.title)),
        json = data_json(data, drawn),
    )
}
