//! `heapscope timeline`: draws a `timeline.json` (from `Sampler::stop` or `watch`) as an SVG
//! chart or an HTML page around it, written privately (0600) and atomically.

use crate::chart::{self, ChartData, Limit};
use crate::Outcome;
use heapscope::Timeline;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The command's arguments.
pub(crate) struct Options {
    pub(crate) path: PathBuf,
    pub(crate) output: PathBuf,
    pub(crate) limit: Option<u64>,
    pub(crate) report: Option<PathBuf>,
    pub(crate) title: Option<String>,
}

/// The output formats, chosen by the output's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Svg,
    Html,
}

fn format_of(output: &Path) -> Result<Format, String> {
    match output.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("svg") => Ok(Format::Svg),
        Some("html" | "htm") => Ok(Format::Html),
        _ => Err(format!("{}: the output must end in .svg or .html", output.display())),
    }
}

pub(crate) fn run(options: &Options, out: &mut impl Write) -> Outcome {
    let format = format_of(&options.output)?;
    let timeline = load(&options.path)?;
    let limit = match (options.limit, &options.report) {
        (Some(bytes), _) => Some(Limit { bytes, source: "--limit".into() }),
        (None, Some(report)) => limit_from_report(report)?,
        (None, None) => None,
    };
    let title = options.title.clone().unwrap_or_else(|| options.path.display().to_string());
    let data = ChartData::new(&timeline, title, limit)
        .map_err(|why| format!("{}: {why}", options.path.display()))?;
    let drawn = chart::render(&data);
    let bytes = match format {
        Format::Svg => drawn.svg.into_bytes(),
        Format::Html => chart::page(&data, &drawn).into_bytes(),
    };
    heapscope::write_private(&options.output, &bytes).map_err(|e| match e {
        heapscope::Error::Io { message, .. } => {
            format!("cannot write {}: {message}", options.output.display())
        }
        other => other.to_string(),
    })?;
    writeln!(
        out,
        "wrote {} ({} owner series, {} of {} phases shaded, {} samples)",
        options.output.display(),
        drawn.owners,
        drawn.phases,
        timeline.phases.len(),
        timeline.samples.len()
    )?;
    Ok(ExitCode::SUCCESS)
}

fn load(path: &Path) -> Result<Timeline, String> {
    let bytes = crate::read_input(path)?;
    let value = crate::parse_json(path, &bytes)?;
    if value.get("samples").is_none() {
        let hint = if value.get("schema_version").is_some() {
            " (it looks like a report: `heapscope show` reads those)"
        } else {
            ""
        };
        return Err(format!("{}: not a heapscope timeline (no samples){hint}", path.display()));
    }
    serde_json::from_value(value)
        .map_err(|e| format!("{}: not a heapscope timeline: {e}", path.display()))
}

/// The report's effective limit, or `None` (with a note) when it names none.
fn limit_from_report(path: &Path) -> Result<Option<Limit>, String> {
    let report = crate::load_report(path)?;
    match report.limits.effective_bytes {
        Some(bytes) => {
            let source = report.limits.effective_source.unwrap_or_else(|| "report".into());
            Ok(Some(Limit { bytes, source }))
        }
        None => {
            eprintln!("heapscope: note: {} names no effective limit; none drawn", path.display());
            Ok(None)
        }
    }
}
