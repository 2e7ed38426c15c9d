//! Metrics through the `metrics` facade, scraped from metrics-exporter-prometheus over
//! loopback HTTP; the exposition text is checked by hand and, where Debian's `prometheus`
//! package is installed, by `promtool check metrics`. Gauges of values that became unknown,
//! and of owners that are gone, no longer keep their last value (rendered from a local
//! recorder).
#![cfg(all(feature = "enabled", feature = "metrics", target_os = "linux"))]

use heapscope::{Owner, PressureLevel, Report, ReportOptions};
use metrics_exporter_prometheus::PrometheusBuilder;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

heapscope::install!();

/// Held by each test while it publishes: what `publish_metrics` clears depends on what the
/// process published last, so one test's publish between another's two would move the
/// clearing to the wrong recorder.
fn one_publisher_at_a_time() -> MutexGuard<'static, ()> {
    static PUBLISHING: Mutex<()> = Mutex::new(());
    PUBLISHING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The value on the exposition line of `series` (a name with its labels, if any).
fn value<'a>(body: &'a str, series: &str) -> Option<&'a str> {
    body.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
}

fn scrape(addr: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(mut stream) => {
                stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                write!(
                    stream,
                    "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
                let mut response = String::new();
                stream.read_to_string(&mut response).unwrap();
                let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
                assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                return body.to_owned();
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "exporter never listened on {addr}: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[test]
fn gauges_are_served_over_loopback_http() {
    let _publishing = one_publisher_at_a_time();
    // A free loopback port: bind, note it, release it for the exporter.
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .expect("install the Prometheus exporter");

    let owner = Owner::named("metrics_owner");
    let kept = owner.in_scope(|| std::hint::black_box(vec![1u8; 1 << 20]));
    let report = heapscope::Report::capture_with(
        &heapscope::ReportOptions::default().budget_bytes(64 << 30),
    );
    report.publish_metrics();

    let body = scrape(addr);
    assert!(
        body.contains("heapscope_owner_live_bytes{owner=\"metrics_owner\"} 1048576\n"),
        "{body}"
    );
    assert!(
        body.contains("heapscope_owner_peak_bytes{owner=\"metrics_owner\"} 1048576\n"),
        "{body}"
    );
    assert!(body.contains("# TYPE heapscope_tracked_live_bytes gauge"), "{body}");
    assert!(body.contains("# HELP heapscope_owner_live_bytes"), "{body}");
    // jemalloc's statistics are there exactly when jemalloc is the inner allocator.
    assert_eq!(
        body.contains("heapscope_jemalloc_bytes{stat=\"allocated\"}"),
        cfg!(feature = "jemalloc"),
        "{body}"
    );
    assert!(body.contains("heapscope_pressure_level 0\n"), "{body}");
    let rss = report.process.as_ref().and_then(|p| p.rss_bytes).unwrap();
    assert!(body.contains(&format!("heapscope_process_rss_bytes {rss}\n")), "{body}");

    match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool check metrics failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            println!("promtool check metrics: ok");
        }
        Err(e) => println!("promtool not installed ({e}); exposition checked by hand only"),
    }
    drop(kept);
}

#[test]
fn values_that_became_unknown_read_nan_not_their_last_value() {
    let _publishing = one_publisher_at_a_time();
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let nowhere = std::env::temp_dir().join(format!("heapscope-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&nowhere).unwrap();
    metrics::with_local_recorder(&recorder, || {
        let critical =
            Report::capture_with(&ReportOptions::default().budget_bytes(1).process_tree(false));
        assert_eq!(critical.pressure.level, PressureLevel::Critical);
        critical.publish_metrics();
        // Later neither a limit nor the process's memory can be read.
        let unknown = Report::capture_with(
            &ReportOptions::default().roots(&nowhere, &nowhere).process_tree(false),
        );
        assert_eq!(unknown.pressure.level, PressureLevel::Unknown);
        assert!(unknown.process.is_none());
        unknown.publish_metrics();
    });
    std::fs::remove_dir_all(&nowhere).ok();
    let body = handle.render();
    for gauge in [
        "heapscope_pressure_level",
        "heapscope_pressure_ratio",
        "heapscope_limit_bytes",
        "heapscope_process_rss_bytes",
    ] {
        assert_eq!(value(&body, gauge), Some("NaN"), "{gauge} kept its last value\n{body}");
    }
    // Still known: the number itself.
    assert_ne!(value(&body, "heapscope_tracked_live_bytes"), Some("NaN"), "{body}");
}

#[test]
fn a_retired_owners_gauges_read_zero_once_then_are_forgotten() {
    let _publishing = one_publisher_at_a_time();
    let (first, second) =
        (PrometheusBuilder::new().build_recorder(), PrometheusBuilder::new().build_recorder());
    let (seen_first, seen_second) = (first.handle(), second.handle());
    let owner = Owner::named("metrics_retired");
    let kept = owner.in_scope(|| std::hint::black_box(vec![1u8; 1 << 20]));
    metrics::with_local_recorder(&first, || {
        heapscope::report().publish_metrics();
        drop(kept);
        owner.retire().unwrap();
        heapscope::report().publish_metrics();
    });
    // Published once more, elsewhere: the retired owner is no longer written at all.
    metrics::with_local_recorder(&second, || heapscope::report().publish_metrics());
    let body = seen_first.render();
    for gauge in [
        "heapscope_owner_live_bytes",
        "heapscope_owner_peak_bytes",
        "heapscope_owner_allocated_bytes",
    ] {
        let series = format!("{gauge}{{owner=\"metrics_retired\"}}");
        assert_eq!(value(&body, &series), Some("0"), "{series} kept its last value\n{body}");
    }
    let body = seen_second.render();
    assert!(!body.contains("owner=\"metrics_retired\""), "{body}");
}

/// Per-owner series are bounded by default: every `Retained` item and every child such as
/// `session/call_42` is an owner of its own, and each once became three series that a
/// Prometheus exporter keeps until its idle timeout (off by default): 500 items dropped added
/// 1 500 series, every round. `publish_metrics` now sets the gauges of top-level owners
/// (whose bytes include their children's, and add up to the tracked total);
/// `publish_metrics_to_depth(n)` goes down to depth `n` for programs whose children are a
/// fixed few.
#[test]
fn children_and_items_get_no_series_of_their_own_by_default() {
    let _publishing = one_publisher_at_a_time();
    let session = Owner::named("metrics_session");
    let calls: Vec<_> = (0..100)
        .map(|i| {
            let call = session.child(format!("call_{i}"));
            call.in_scope(|| std::hint::black_box(vec![7u8; 1000]))
        })
        .collect();
    let items: Vec<_> = (0..50)
        .map(|i| {
            heapscope::Retained::build(session, &format!("tool output {i}"), || vec![1u8; 2000])
        })
        .collect();
    let report = Report::capture_with(&ReportOptions::default().process_tree(false));
    let series =
        |body: &str| body.lines().filter(|l| l.starts_with("heapscope_owner_live_bytes{")).count();
    let session_line = |body: &str| {
        value(body, "heapscope_owner_live_bytes{owner=\"metrics_session\"}").map(str::to_owned)
    };
    let top_level = report.owners.tree.iter().filter(|o| o.depth == 0).count();
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || report.publish_metrics());
    let body = handle.render();
    assert_eq!(series(&body), top_level, "{body}");
    assert_eq!(session_line(&body).as_deref(), Some("200000"), "100 x 1000 B and 50 x 2000 B");
    assert!(!body.contains("metrics_session/"), "{body}");
    // Down to depth 1: the session's 150 children too.
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || report.publish_metrics_to_depth(1));
    let body = handle.render();
    let depth_one = report.owners.tree.iter().filter(|o| o.depth <= 1).count();
    assert!(depth_one >= top_level + 150);
    assert_eq!(series(&body), depth_one, "{body}");
    assert_eq!(
        value(&body, "heapscope_owner_live_bytes{owner=\"metrics_session/call_7\"}"),
        Some("1000")
    );
    drop((calls, items));
}
