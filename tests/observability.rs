//! `/ready` and `/metrics` (Prometheus text format) on the HTTPS listener, without
//! credentials: requests counted by protocol, operation (route templates, not paths) and
//! result; HSM and store latency histograms; gauges from the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use kmip::enums::Operation;
use kmip::ProtocolVersion;
use serde_json::json;

fn get(server: &Server, path: &str) -> (u16, String) {
    let (status, body) =
        https_with(server.https, tls_config(&server.data_dir, None), "GET", path, &[], b"");
    (status, String::from_utf8(body).unwrap())
}

/// The value of the first sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix} in\n{text}"))
}

#[test]
fn ready_and_metrics() {
    let (_dir, server, _certs, mut c) = started("strongroom-metrics", "ops");
    let (status, body) = get(&server, "/ready");
    assert_eq!(status, 200, "{body}");

    let id = uid_of(
        &c.ok(Operation::CREATE, create_payload(ProtocolVersion::V1_4, &aes_attributes(256))),
    );
    c.ok(Operation::GET, vec![uid(&id)]);
    let item = c.call(Operation::GET, vec![uid("no-such-object")]);
    assert_ne!(item.result_status, kmip::enums::ResultStatus::SUCCESS);
    let api = Api::admin(&server);
    api.ok("POST", "/v1/tde/keys/7", json!(null));
    api.ok("GET", "/v1/tde/data/7", json!(null));
    assert_eq!(api.with_token("nope").call("GET", "/v1/tde/data/7", json!(null)).0, 403);

    let (status, text) = get(&server, "/metrics");
    assert_eq!(status, 200);
    let kmip_ok = "strongroom_requests_total{protocol=\"kmip\",operation=\"Create\",result=\"ok\"}";
    assert_eq!(sample(&text, kmip_ok), 1.0);
    let kmip_failed =
        "strongroom_requests_total{protocol=\"kmip\",operation=\"Get\",result=\"failed\"}";
    assert_eq!(sample(&text, kmip_failed), 1.0);
    // API routes are counted by template, so key names do not become labels.
    let read = "strongroom_requests_total{protocol=\"api\",operation=\"GET /v1/{mount}/data/{name}\",result=\"ok\"}";
    assert_eq!(sample(&text, read), 1.0);
    let denied = "strongroom_requests_total{protocol=\"api\",operation=\"GET /v1/{mount}/data/{name}\",result=\"denied\"}";
    assert_eq!(sample(&text, denied), 1.0);
    assert!(!text.contains("/v1/tde/data/7"), "no concrete paths in labels");
    assert!(sample(&text, "strongroom_hsm_call_seconds_count") >= 3.0);
    assert!(sample(&text, "strongroom_store_commit_seconds_count") >= 1.0);
    assert_eq!(sample(&text, "strongroom_managed_objects "), 2.0, "the KMIP key and TDE key 7");
    assert!(sample(&text, "strongroom_audit_records ") >= 5.0);
    assert_eq!(sample(&text, "strongroom_crl_age_seconds "), -1.0, "no CRL asked for yet");
    assert_eq!(sample(&text, "strongroom_leader "), 1.0, "an SQLite store's process leads");
    let (status, _) = get(&server, "/v1/pki/crl/pem");
    assert_eq!(status, 200);
    let (_, text) = get(&server, "/metrics");
    let age = sample(&text, "strongroom_crl_age_seconds ");
    assert!((0.0..5.0).contains(&age), "{age}");
    server.stop();
}

#[test]
fn json_logs_on_request() {
    use std::io::{BufRead, BufReader};
    let dir = temp_dir("strongroom-json-logs");
    let mut child = std::process::Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(&*dir)
        .args(["--kmip-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .env("STRONGROOM_LOG", "info")
        .env("STRONGROOM_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut started = None;
    for line in stderr.lines().take(200) {
        let line = line.unwrap();
        let record: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if record["fields"]["message"] == "Strongroom started" {
            started = Some(record);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let record = started.expect("a start record");
    assert_eq!(record["level"], "INFO");
    assert!(record["fields"]["kmip_addr"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(record["timestamp"].is_string());
}
