//! Memory held by idle KMIP connections: the server's resident set (VmRSS) before and after
//! N mutual-TLS connections complete their handshake and one KMIP request each, then sit
//! idle. Reports KiB per connection.
//!
//! `cargo bench --bench idle_conns` holds 10,000 connections (`IDLE_CONNS` to change; the
//! shell's open-file limit must exceed it, for this process and the server); under
//! `cargo test` it holds 200.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use kmip::enums::Operation;

/// The resident set of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n: usize = if bench {
        std::env::var("IDLE_CONNS").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000)
    } else {
        200
    };
    let dir = temp_dir("strongroom-idle");
    let config = dir.join("idle.toml");
    std::fs::write(&config, format!("[kmip]\nmax_connections = {}\n", n + 100)).unwrap();
    let server = Server::start_with(&dir, &["--config", config.to_str().unwrap()]);
    let certs = client_cert(&dir, "idle");
    let tls = tls_config(&certs, Some("idle"));

    // Warm up the paths one request takes, so the baseline is a server that has served.
    Client::connect_with(server.kmip, tls.clone()).ok(Operation::DISCOVER_VERSIONS, vec![]);
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_kib(server.pid());

    let started = Instant::now();
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = Client::connect_with(server.kmip, tls.clone());
        c.ok(Operation::DISCOVER_VERSIONS, vec![]);
        held.push(c);
    }
    let connect_secs = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kib(server.pid());
    // Every connection still answers after the measurement.
    for c in held.iter_mut().step_by((n / 10).max(1)) {
        c.ok(Operation::DISCOVER_VERSIONS, vec![]);
    }

    let per = (after.saturating_sub(before)) as f64 / n as f64;
    println!("\nIdle KMIP connections (mutual TLS 1.3, one Discover Versions each)");
    println!("connections           {n}");
    println!(
        "set up in             {connect_secs:.1} s ({:.0} handshakes/s)",
        n as f64 / connect_secs
    );
    println!("server RSS before     {before} KiB");
    println!("server RSS after      {after} KiB");
    println!("per connection        {per:.1} KiB");
    drop(held);
    server.stop();
}
