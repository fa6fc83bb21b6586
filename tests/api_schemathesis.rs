//! The REST API under `/v1`, fuzzed by Schemathesis (PyPI `schemathesis`, a third-party
//! OpenAPI fuzzer) from `schemas/openapi.json` against the running server: the documented
//! examples, boundary values and random requests for every operation, checking that the
//! server never answers 5xx, answers only the documented status codes, content types and
//! response schemas, and refuses what the schema forbids. The one check left out, that
//! every schema-valid request is accepted, cannot hold for rules a schema does not express
//! (a lease must exist, a policy must parse). The seed is fixed so a failure repeats;
//! `SCHEMATHESIS_SEED` changes it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{temp_dir, Server};

#[test]
fn schemathesis_finds_nothing_in_the_api() {
    let dir = temp_dir("strongroom-schemathesis");
    let server = Server::start(&dir);
    let token = std::fs::read_to_string(dir.join("admin.token")).unwrap();
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/openapi.json");
    let seed = std::env::var("SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261207".to_owned());
    let out = Command::new("python3")
        .args(["-m", "schemathesis.cli", "run"])
        .arg(&schema)
        .args(["--url", &format!("https://{}", server.https)])
        .args(["--header", &format!("Authorization: Bearer {}", token.trim())])
        .arg("--tls-verify")
        .arg(dir.join("ca.crt"))
        // These two would revoke the token the run uses.
        .args(["--exclude-path", "/v1/auth/token/revoke-self"])
        .args(["--exclude-path", "/v1/auth/token/revoke-accessor"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--exclude-checks", "positive_data_acceptance"])
        .args(["--max-examples", "25", "--workers", "1", "--seed", &seed])
        .args(["--generation-database", "none", "--no-color"])
        .current_dir(&*dir)
        .output()
        .expect("python3 with schemathesis (scripts/install-test-deps installs it)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems (seed {seed}):\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It did test the API, not only load the schema.
    let summary = report.lines().find(|l| l.contains(" generated,")).unwrap_or_default();
    assert!(summary.contains(" generated,"), "{report}");
    println!("{summary}");
    server.stop();
}
