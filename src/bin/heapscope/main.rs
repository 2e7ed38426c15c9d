//! `heapscope`: reads the files heapscope writes.
//!
//! ```text
//! heapscope show <report.json | bundle directory | pressure-<pid>-<start ms>-<n>.json>
//! heapscope diff <before.json> <after.json>
//! heapscope check <report.json> --max-owner history=512MiB [--max-owner cache=64MiB …]
//! heapscope timeline <timeline.json> -o memory.svg|memory.html [--limit 256MiB | --report report.json]
//! ```
//!
//! Errors (a missing file, another schema version, JSON cut short or not valid, a FIFO, device
//! or file over 1 GiB in place of a file, a bundle file that does not match its manifest) are
//! one line on stderr and exit status 2; `check` exits 1 when an owner is over its budget.
//! Output goes through one locked stdout; a reader that goes away (`heapscope show … | head`)
//! ends the command quietly with status 0.

mod chart;
mod timeline;

use clap::{Parser, Subcommand};
use heapscope::retained::ItemInfo;
use heapscope::{escape_control as printable, Report, SCHEMA_VERSION};
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "heapscope", version, about = "Reads heapscope's reports, bundles and dumps")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prints the human report of a report.json, a bundle directory (its files checked against
    /// its manifest.json) or a pressure dump.
    Show {
        /// The file or bundle directory.
        path: PathBuf,
    },
    /// Per-owner growth between two reports, largest first, and retained items that appeared
    /// or grew.
    Diff {
        /// The earlier report.
        before: PathBuf,
        /// The later report.
        after: PathBuf,
    },
    /// Exits 1 when an owner holds more than its budget (for CI gates); 2 when the report
    /// cannot tell (tracking was off, or a budgeted owner is not in it).
    Check {
        /// The report.
        path: PathBuf,
        /// `owner=size`, e.g. `history=512MiB`; repeatable.
        #[arg(long = "max-owner", value_parser = parse_budget, required = true)]
        max_owner: Vec<(String, u64)>,
    },
    /// Draws a timeline.json as a chart: live bytes stacked by owner, RSS, the limit, and the
    /// longer phases shaded.
    Timeline {
        /// The timeline.json (written by `Sampler::stop` or `watch`).
        path: PathBuf,
        /// The chart file to write (0600): `memory.svg`, or `memory.html` for a page with hover
        /// values and legend toggles.
        #[arg(short, long)]
        output: PathBuf,
        /// Draws a limit line at this size, e.g. `256MiB`.
        #[arg(long, value_parser = heapscope::parse_bytes)]
        limit: Option<u64>,
        /// Takes the limit line from this report.json's effective limit (unless --limit).
        #[arg(long)]
        report: Option<PathBuf>,
        /// The chart's title (default: the timeline's path).
        #[arg(long)]
        title: Option<String>,
    },
}

/// `owner=size`, split at the last `=`: an owner's name may hold one (only `/` and control
/// characters are refused), a size never does.
fn parse_budget(text: &str) -> Result<(String, u64), String> {
    let (owner, size) =
        text.rsplit_once('=').ok_or_else(|| format!("expected owner=size, got {text:?}"))?;
    Ok((owner.to_owned(), heapscope::parse_bytes(size)?))
}

/// What a file turned out to be.
enum Loaded {
    /// A report, and the pressure dump it came in, if it did (for its moment of pressure).
    Report(Box<Report>, Option<serde_json::Value>),
    /// A pressure dump whose full report was never written (the process died first).
    Partial(serde_json::Value),
}

/// The most bytes read from one file. heapscope never writes a file near it: a report of the
/// registry's 4096 owners is a few MiB, and a timeline of `MAX_SAMPLES` samples tens of MiB
/// for ten owners (a few hundred for a hundred). A larger file is not one of its files, and
/// reading it whole (then parsing it, which takes several times its size) could exhaust memory.
const MAX_INPUT_BYTES: u64 = 1 << 30;

/// Opens a file heapscope wrote, refusing what cannot be one: anything but a regular file (a
/// FIFO's open and read wait for a writer that may never come; a device such as /dev/zero
/// never ends). A copied or hostile bundle may hold either under a file's name. With
/// `follow_links` false, a symbolic link is refused too. Returns the file and its length, or
/// why not.
fn open_regular(path: &Path, follow_links: bool) -> Result<(std::fs::File, u64), String> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Without O_NONBLOCK, opening a FIFO blocks until a writer opens it; on a regular file it
    // changes nothing, and anything else is refused below, before a read.
    #[cfg(unix)]
    {
        let nofollow = if follow_links { 0 } else { libc::O_NOFOLLOW };
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK | nofollow);
    }
    let file = options.open(path).map_err(|e| {
        if !follow_links && e.raw_os_error() == Some(libc::ELOOP) {
            "a symbolic link (heapscope writes none)".to_owned()
        } else {
            e.to_string()
        }
    })?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if meta.is_dir() {
        return Err("it is a directory".into());
    }
    if !meta.is_file() {
        return Err("not a regular file (a FIFO, socket or device)".into());
    }
    Ok((file, meta.len()))
}

/// Reads a file heapscope wrote: a regular file ([`open_regular`]) of at most
/// [`MAX_INPUT_BYTES`].
fn read_input(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let cannot = |why: String| format!("cannot read {}: {why}", path.display());
    let (file, len) = open_regular(path, true).map_err(cannot)?;
    let too_large =
        || cannot(format!("larger than {}, not a file heapscope wrote", size(MAX_INPUT_BYTES)));
    if len > MAX_INPUT_BYTES {
        return Err(too_large());
    }
    // The length may have changed since: read one byte past the cap to know.
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes).map_err(|e| cannot(e.to_string()))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// `bytes` of the file at `path` as JSON, or why not: JSON that ends early is what a copy cut
/// short leaves (heapscope's own writes are atomic), while a syntax error inside is something
/// else again (a hand edit, another program's file), and was told it may have been cut short.
pub(crate) fn parse_json(path: &Path, bytes: &[u8]) -> Result<serde_json::Value, String> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Eof => {
            format!("{} is not complete JSON ({e}); was it cut short?", path.display())
        }
        _ => format!("{} is not valid JSON ({e})", path.display()),
    })
}

fn load(path: &Path) -> Result<Loaded, String> {
    let file = if path.is_dir() { path.join("report.json") } else { path.to_owned() };
    let bytes = read_input(&file)?;
    let value = parse_json(&file, &bytes)?;
    let (report_value, dump) = if value.get("heapscope_pressure_dump").is_some() {
        if value.get("collection_complete") != Some(&serde_json::Value::Bool(true)) {
            return Ok(Loaded::Partial(value));
        }
        let mut dump = value;
        let report = dump
            .get_mut("report")
            .map(serde_json::Value::take)
            .ok_or_else(|| format!("{}: a dump without its report", file.display()))?;
        (report, Some(dump))
    } else {
        (value, None)
    };
    match report_value.get("schema_version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(SCHEMA_VERSION) => {}
        Some(v) => {
            return Err(format!(
                "{}: schema version {v}, but this heapscope reads version {SCHEMA_VERSION}",
                file.display()
            ))
        }
        None => {
            return Err(format!("{}: not a heapscope report (no schema_version)", file.display()))
        }
    }
    serde_json::from_value(report_value)
        .map(|r| Loaded::Report(Box::new(r), dump))
        .map_err(|e| format!("{}: not a heapscope report: {e}", file.display()))
}

fn load_report(path: &Path) -> Result<Report, String> {
    match load(path)? {
        Loaded::Report(report, _) => Ok(*report),
        Loaded::Partial(_) => Err(format!(
            "{}: only the first phase of a pressure dump was written (collection_complete: false)",
            path.display()
        )),
    }
}

use heapscope::format_bytes as size;

/// `after - before`, clamped to `i64`: the numbers come from files, which may hold anything up
/// to `u64::MAX` (`as i64` flipped the sign and the subtraction overflowed: exit 101).
fn growth(before: u64, after: u64) -> i64 {
    (i128::from(after) - i128::from(before)).clamp(i64::MIN.into(), i64::MAX.into()) as i64
}

fn signed(delta: i64) -> String {
    let sign = if delta < 0 { "-" } else { "+" };
    format!("{sign}{}", size(delta.unsigned_abs()))
}

/// Why a command stopped before its end.
enum Failure {
    /// A one-line message for stderr; exit status 2.
    Message(String),
    /// Writing to standard output failed.
    Output(io::Error),
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::Message(message)
    }
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Failure {
        Failure::Output(error)
    }
}

/// A command's exit status, or why it stopped.
type Outcome = Result<ExitCode, Failure>;

fn show(path: &Path, out: &mut impl Write) -> Outcome {
    match load(path)? {
        Loaded::Report(report, dump) => {
            if let Some(dump) = &dump {
                write_moment_of_pressure(dump, out)?;
            }
            write!(out, "{report}")?;
            if path.is_dir() && looks_like_a_bundle(path) {
                show_bundle_files(path, out)?;
            }
        }
        Loaded::Partial(dump) => {
            writeln!(out, "notice: only the first phase of this pressure dump was written (collection_complete: false):")?;
            writeln!(out, "the process did not get to write the full report. The figures taken at the moment of pressure:")?;
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(dump.get("trigger").unwrap_or(&dump))
                    .unwrap_or_default()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The figures a complete pressure dump took at the moment of pressure (its first phase),
/// shown before its report: the report was captured after them, and in a process under
/// pressure much can change in between (a compaction running on another thread).
fn write_moment_of_pressure(dump: &serde_json::Value, out: &mut impl Write) -> io::Result<()> {
    let trigger = dump.get("trigger");
    let number = |key: &str| trigger.and_then(|t| t.get(key)).and_then(serde_json::Value::as_u64);
    let text = |key: &str| trigger.and_then(|t| t.get(key)).and_then(serde_json::Value::as_str);
    match number("dump") {
        Some(n) => write!(out, "pressure dump {n}: ")?,
        None => write!(out, "pressure dump: ")?,
    }
    writeln!(
        out,
        "{} at the moment of pressure",
        printable(text("level").unwrap_or("level unknown"))
    )?;
    // Dumps written before `used_source` existed named the usage `rss_bytes`.
    let used = number("used_bytes").or_else(|| number("rss_bytes"));
    match (used, number("limit_bytes")) {
        (Some(used), Some(limit)) if limit > 0 => writeln!(
            out,
            "  used {} of the {} limit ({:.0} %)",
            size(used),
            size(limit),
            used as f64 * 100.0 / limit as f64
        )?,
        (Some(used), _) => writeln!(out, "  used {} (no limit known)", size(used))?,
        _ => {}
    }
    if let Some(source) = text("used_source") {
        writeln!(out, "  usage:  {}", printable(source))?;
        if let Some(rss) = number("rss_bytes") {
            writeln!(out, "  process RSS {}", size(rss))?;
        }
    }
    if let Some(source) = dump.get("limit_source").and_then(serde_json::Value::as_str) {
        writeln!(out, "  limit:  {}", printable(source))?;
    }
    if let (Some(allocated), Some(resident)) = (number("allocated_bytes"), number("resident_bytes"))
    {
        writeln!(out, "  jemalloc allocated {}, resident {}", size(allocated), size(resident))?;
    }
    let owners = trigger.and_then(|t| t.get("top_owners")).and_then(serde_json::Value::as_array);
    if let Some(owners) = owners.filter(|o| !o.is_empty()) {
        writeln!(out, "  owners holding most (their own bytes, children apart):")?;
        for o in owners {
            let name = o.get("owner").and_then(serde_json::Value::as_str).unwrap_or("?");
            let bytes = o.get("own_live_bytes").and_then(serde_json::Value::as_u64).unwrap_or(0);
            writeln!(out, "    {:<40} {:>12}", printable(name), size(bytes))?;
        }
    }
    writeln!(out, "(the report below was taken after these figures)\n")
}

/// Whether `dir` is a diagnostics bundle (`heapscope::capture`'s output): it has the README.txt
/// every bundle gets, or it sits under `diagnostics/memory/`, where a capture that stopped early
/// leaves one without it. Any other directory with a report.json (an agent's `--out`) is only a
/// report, and a missing manifest says nothing about it.
fn looks_like_a_bundle(dir: &Path) -> bool {
    if dir.join("README.txt").is_file() {
        return true;
    }
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let names: Vec<_> = dir.components().map(|c| c.as_os_str()).collect();
    // The bundle's own name comes after diagnostics/memory, so the pair is not the last two.
    names.windows(2).rev().skip(1).any(|pair| pair[0] == "diagnostics" && pair[1] == "memory")
}

/// What else a bundle holds, from its manifest: the heap profile and how to read it, or why
/// there is none.
fn show_bundle_files(dir: &Path, out: &mut impl Write) -> Result<(), Failure> {
    let path = dir.join("manifest.json");
    // Missing is what a capture that stopped early leaves; anything else that cannot be read
    // (a FIFO, a directory) is not that, and is an error naming it.
    if !path.exists() {
        writeln!(out, "\nbundle: no manifest.json (the capture stopped before writing it)")?;
        return Ok(());
    }
    let bytes = read_input(&path)?;
    let manifest: heapscope::Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not a heapscope manifest: {e}", path.display()))?;
    writeln!(out, "\nbundle files:")?;
    // The manifest's sizes and hashes are there to tell a whole bundle from one damaged in a
    // copy: each file is checked, so that none is shown as listed when it is not.
    let mut damaged = Vec::new();
    for f in &manifest.files {
        let why = mismatch(dir, f);
        let mark = why.as_ref().map_or_else(String::new, |why| format!("  DAMAGED: {why}"));
        writeln!(
            out,
            "  {:<16} {:>12}  sha256 {}{}",
            printable(&f.name),
            size(f.bytes),
            printable(&f.sha256),
            printable(&mark)
        )?;
        if let Some(why) = why {
            damaged
                .push(printable(&format!("{}: {why}", dir.join(&f.name).display())).into_owned());
        }
    }
    for s in &manifest.skipped {
        writeln!(out, "  missing {}: {}", printable(&s.name), printable(&s.reason))?;
    }
    match &manifest.heap_profile {
        heapscope::HeapProfile::Written { backend, files, notes } => {
            writeln!(out, "heap profile ({}):", printable(backend))?;
            for file in files {
                let how = match file.as_str() {
                    "heap.pb.gz" => "go tool pprof -top -cum -lines",
                    "jemalloc.heap" => "jeprof --text <the program's binary>",
                    "dhat-heap.json" => "open in DHAT's viewer (dh_view.html) with",
                    _ => "read",
                };
                writeln!(out, "  {how} {}", printable(&dir.join(file).display().to_string()))?;
            }
            for note in notes {
                writeln!(out, "  note: {}", printable(note))?;
            }
        }
        heapscope::HeapProfile::Unavailable { reason, fix } => {
            writeln!(
                out,
                "no heap profile: {}\n  to get one: {}",
                printable(reason),
                printable(fix)
            )?;
        }
        other => writeln!(out, "heap profile: {other:?}")?,
    }
    if !damaged.is_empty() {
        return Err(Failure::Message(format!(
            "{} does not match the files (damaged, or cut short in a copy): {}",
            path.display(),
            damaged.join("; ")
        )));
    }
    Ok(())
}

/// Why a file the manifest lists is not as listed, or `None` when it is (same length, same
/// SHA-256). The file is hashed in pieces, however large, and never through a link: the
/// manifest lists files inside the bundle, which heapscope writes as plain files.
fn mismatch(dir: &Path, listed: &heapscope::WrittenFile) -> Option<String> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let name = listed.name.as_str();
    // A path (`../x`, `/etc/…`) is no file of the bundle's; it is neither read nor hashed.
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Some("not a file name in the bundle".into());
    }
    let path = dir.join(name);
    if path.symlink_metadata().is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
        return Some("missing".into());
    }
    let (mut file, len) = match open_regular(&path, false) {
        Ok(opened) => opened,
        Err(why) => return Some(why),
    };
    if len != listed.bytes {
        return Some(format!("{len} bytes, not {}", listed.bytes));
    }
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 64 << 10];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Some(format!("cannot read it: {e}")),
        }
    }
    (format!("{:x}", hasher.finalize()) != listed.sha256).then(|| "SHA-256 differs".into())
}

/// The items of `after` that are new or larger than in `before`, largest first, each with its
/// size before (`None` when new). An item is known by its parent owner, label and type: its own
/// owner name (`parent/item#N`) restarts at #1 in every process, so it named another item in
/// another run. Alike items (same parent, label and type) are paired largest with largest.
fn item_changes<'a>(
    before: &[ItemInfo],
    after: &'a [ItemInfo],
) -> Vec<(&'a ItemInfo, Option<u64>)> {
    fn key(i: &ItemInfo) -> (&str, &str, &str) {
        (&i.parent, &i.label, &i.type_name)
    }
    let mut sizes_before: HashMap<(&str, &str, &str), Vec<u64>> = HashMap::new();
    for i in before {
        sizes_before.entry(key(i)).or_default().push(i.live_bytes);
    }
    for sizes in sizes_before.values_mut() {
        // Largest last, so that pop() pairs largest with largest.
        sizes.sort_unstable();
    }
    let mut ordered: Vec<&ItemInfo> = after.iter().collect();
    ordered.sort_by_key(|i| std::cmp::Reverse(i.live_bytes));
    ordered
        .into_iter()
        .map(|i| (i, sizes_before.get_mut(&key(i)).and_then(Vec::pop)))
        .filter(|(i, old)| old.is_none_or(|old| i.live_bytes > old))
        .collect()
}

fn diff(before: &Path, after: &Path, out: &mut impl Write) -> Outcome {
    let (a, b) = (load_report(before)?, load_report(after)?);
    // Each owner's live bytes by name, through a map: a search of the tree for every name was
    // quadratic, and a file may hold far more owners than the registry's 4096 (100 000 took
    // minutes). A name listed twice (only in an edited file) keeps its first row, as before.
    fn by_name(r: &Report) -> HashMap<&str, u64> {
        let mut live = HashMap::with_capacity(r.owners.tree.len());
        for o in &r.owners.tree {
            live.entry(o.name.as_str()).or_insert(o.live_bytes);
        }
        live
    }
    let (live_a, live_b) = (by_name(&a), by_name(&b));
    let mut names: Vec<&str> = live_a.keys().chain(live_b.keys()).copied().collect();
    names.sort_unstable();
    names.dedup();
    let mut rows: Vec<(&str, u64, u64, i64)> = names
        .into_iter()
        .map(|n| {
            let x = live_a.get(n).copied().unwrap_or(0);
            let y = live_b.get(n).copied().unwrap_or(0);
            (n, x, y, growth(x, y))
        })
        .collect();
    rows.sort_by(|p, q| q.3.cmp(&p.3).then(p.0.cmp(q.0)));
    writeln!(out, "{:<40} {:>12} {:>12} {:>12}", "owner", "before", "after", "growth")?;
    let total = growth(a.owners.tracked_live_bytes, b.owners.tracked_live_bytes);
    writeln!(
        out,
        "{:<40} {:>12} {:>12} {:>12}",
        "total",
        size(a.owners.tracked_live_bytes),
        size(b.owners.tracked_live_bytes),
        signed(total)
    )?;
    for (name, x, y, d) in rows {
        writeln!(out, "{:<40} {:>12} {:>12} {:>12}", printable(name), size(x), size(y), signed(d))?;
    }
    let items = item_changes(&a.retained, &b.retained);
    if !items.is_empty() {
        writeln!(out, "\nretained items that appeared or grew:")?;
        for (i, old) in items {
            let change = old.map_or_else(|| "new".to_owned(), |o| signed(growth(o, i.live_bytes)));
            writeln!(
                out,
                "  \"{}\" under {} ({}): {} ({change})",
                i.label.escape_debug(),
                printable(&i.parent),
                printable(&i.type_name),
                size(i.live_bytes)
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit 1 when an owner is over its budget. A report that cannot answer is an error (exit 2),
/// never a pass: one taken with tracking compiled out counted nothing, and an owner it does not
/// list (a typo, a renamed owner, one that never allocated) has no bytes to compare.
fn check(path: &Path, budgets: &[(String, u64)], out: &mut impl Write) -> Outcome {
    let report = load_report(path)?;
    if !report.runtime.tracking {
        return Err(Failure::Message(format!(
            "{}: the report counted nothing (runtime.tracking is false: heapscope's `enabled` \
             feature was off in the program, so tracking was compiled out); no budget can be checked",
            path.display()
        )));
    }
    let live =
        |owner: &str| report.owners.tree.iter().find(|o| o.name == owner).map(|o| o.live_bytes);
    let missing: Vec<&str> =
        budgets.iter().map(|(owner, _)| owner.as_str()).filter(|o| live(o).is_none()).collect();
    if !missing.is_empty() {
        return Err(Failure::Message(format!(
            "{}: {} not in the report (owners that never allocated are left out; check the name)",
            path.display(),
            missing.iter().map(|o| format!("owner {o:?}")).collect::<Vec<_>>().join(", ")
        )));
    }
    let mut over = false;
    for (owner, budget) in budgets {
        let live = live(owner).unwrap_or(0);
        let verdict = if live > *budget {
            over = true;
            "OVER"
        } else {
            "ok"
        };
        // Escaped as `show` and `diff` print names: a file may hold any name, and the
        // argument that matched it is the same text.
        writeln!(out, "{verdict:<4} {}: {} of {}", printable(owner), size(live), size(*budget))?;
    }
    Ok(if over { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = io::stdout().lock();
    let result = match &cli.command {
        Command::Show { path } => show(path, &mut out),
        Command::Diff { before, after } => diff(before, after, &mut out),
        Command::Check { path, max_owner } => check(path, max_owner, &mut out),
        Command::Timeline { path, output, limit, report, title } => timeline::run(
            &timeline::Options {
                path: path.clone(),
                output: output.clone(),
                limit: *limit,
                report: report.clone(),
                title: title.clone(),
            },
            &mut out,
        ),
    };
    // The last lines may still sit in the buffer: a failure to write them is the command's too.
    let result = result.and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    match result {
        Ok(code) => code,
        // The reader took what it wanted and went away (`| head`): nothing went wrong.
        Err(Failure::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(Failure::Output(e)) => {
            eprintln!("heapscope: cannot write to standard output: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Message(message)) => {
            eprintln!("heapscope: {message}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{looks_like_a_bundle, parse_budget};
    use std::path::Path;

    /// An owner may be named `cache=l2` (names refuse only `/` and control characters); split
    /// at the first `=`, its budget read "l2=1KiB" as the size and was refused.
    #[test]
    fn a_budget_splits_at_the_last_equals_sign() {
        assert_eq!(parse_budget("cache=l2=1KiB"), Ok(("cache=l2".to_owned(), 1024)));
        assert_eq!(parse_budget("history=512MiB"), Ok(("history".to_owned(), 512 << 20)));
        assert!(parse_budget("history").is_err());
    }

    #[test]
    fn a_bundle_is_a_directory_under_diagnostics_memory() {
        assert!(looks_like_a_bundle(Path::new(
            "/nonexistent/diagnostics/memory/20261205T1200Z-42"
        )));
        assert!(looks_like_a_bundle(Path::new("diagnostics/memory/20261205T1200Z-42")));
        assert!(!looks_like_a_bundle(Path::new("/nonexistent/diagnostics/memory")));
        assert!(!looks_like_a_bundle(Path::new("/nonexistent/agent-out")));
    }
}
