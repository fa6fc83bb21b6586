//! Prometheus metrics for `/metrics`: requests by protocol, operation and result (counted
//! where each protocol audits its decisions), HSM call and store commit latency
//! histograms, and gauges read from the store when scraped. The registry is per process,
//! as Prometheus expects of one target; label values are bounded (KMIP operation names,
//! API route templates, ACME endpoints).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Latency bucket bounds in seconds.
const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Registry {
    requests: BTreeMap<(String, String, String), u64>,
    histograms: BTreeMap<&'static str, Histogram>,
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Mutex::default)
}

fn with<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    // A poisoned registry only means a panic elsewhere mid-update; the counts stay usable.
    let mut r = registry().lock().unwrap_or_else(|p| p.into_inner());
    f(&mut r)
}

/// Counts one request of `protocol` (kmip, api, acme) for `operation` with `result`.
pub(crate) fn count_request(protocol: &str, operation: &str, result: &str) {
    with(|r| {
        *r.requests
            .entry((protocol.to_owned(), operation.to_owned(), result.to_owned()))
            .or_default() += 1
    });
}

/// Records a duration in histogram `name` (`hsm_call`, `store_commit`).
pub(crate) fn observe(name: &'static str, d: Duration) {
    let secs = d.as_secs_f64();
    with(|r| {
        let h = r.histograms.entry(name).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    });
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The counters and histograms in Prometheus text format, followed by `gauges`
/// (name, help, value).
pub(crate) fn render(gauges: &[(&str, &str, f64)]) -> String {
    let mut out = String::new();
    with(|r| {
        out.push_str(
            "# HELP strongroom_requests_total Requests by protocol, operation and result.\n",
        );
        out.push_str("# TYPE strongroom_requests_total counter\n");
        for ((protocol, operation, result), n) in &r.requests {
            let _ = writeln!(
                out,
                "strongroom_requests_total{{protocol=\"{}\",operation=\"{}\",result=\"{}\"}} {n}",
                escape(protocol),
                escape(operation),
                escape(result)
            );
        }
        for (name, help) in [
            ("hsm_call", "PKCS#11 work per request, seconds."),
            ("store_commit", "Store group commits (one disk flush each), seconds."),
        ] {
            let metric = format!("strongroom_{name}_seconds");
            let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} histogram");
            let empty = Histogram::default();
            let h = r.histograms.get(name).unwrap_or(&empty);
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "{metric}_bucket{{le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(out, "{metric}_bucket{{le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{metric}_sum {}\n{metric}_count {}", h.sum, h.count);
        }
    });
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format() {
        count_request("kmip", "Get", "ok");
        count_request("kmip", "Get", "ok");
        observe("hsm_call", Duration::from_micros(700));
        let text = render(&[("strongroom_leases_active", "Active leases.", 3.0)]);
        assert!(text.contains(
            "strongroom_requests_total{protocol=\"kmip\",operation=\"Get\",result=\"ok\"}"
        ));
        assert!(text.contains("strongroom_hsm_call_seconds_bucket{le=\"0.001\"}"));
        assert!(text.contains("# TYPE strongroom_leases_active gauge\nstrongroom_leases_active 3"));
        assert_eq!(escape("a\"b"), "a\\\"b");
    }
}
