//! Metrics through the `metrics` facade, scraped from metrics-exporter-prometheus over
//! loopback HTTP; the exposition text is checked by hand and, where Debian's `prometheus`
//! package is installed, by `promtool check metrics`.
#![cfg(all(feature = "enabled", feature = "metrics", target_os = "linux"))]

use heapscope::Owner;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

heapscope::install!();

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
