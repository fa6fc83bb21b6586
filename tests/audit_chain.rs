//! The audit trail is tamper-evident: records form a hash chain sealed by an HSM key, and
//! `strongroom audit verify` finds a changed, removed or truncated record and a forged seal;
//! the server and the command line writing to one database keep one chain.
//! `strongroom audit export` writes JSON lines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::json;
use sqlx::Connection;

fn audit(dir: &Path, action: &str) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["audit", action, "--data-dir"])
        .arg(dir)
        .env("STRONGROOM_LOG", "warn")
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn sql(dir: &Path, statement: &str) {
    let url = format!("sqlite://{}", dir.join("strongroom.db").display());
    block_on(async {
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned())).execute(&mut c).await.unwrap();
    });
}

#[test]
fn tampering_is_found_and_named() {
    let dir = temp_dir("strongroom-audit-chain");
    let server = Server::start(&dir);
    let api = Api::admin(&server);
    for i in 0..5 {
        api.ok(
            "PUT",
            &format!("/v1/sys/policies/acl/p{i}"),
            json!({"policy": "path \"x\" { capabilities = [\"read\"] }"}),
        );
    }
    // The command line appends to the same chain while the server runs.
    let out = Command::new(BIN)
        .args(["tde", "create", "--data-dir"])
        .arg(&*dir)
        .arg("1")
        .env("STRONGROOM_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success());
    api.ok("GET", "/v1/tde/data/1", json!(null));
    server.stop();

    let (ok, report) = audit(&dir, "verify");
    assert!(ok && report.contains("the chain is intact"), "{report}");
    assert!(!report.contains(" 0 seals checked"), "a seal is made at shutdown: {report}");
    assert!(!report.contains("covered by no seal"), "{report}");
    let (ok, lines) = audit(&dir, "export");
    assert!(ok);
    let records: Vec<serde_json::Value> =
        lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(records.len() >= 8, "{lines}");
    assert!(records.iter().all(|r| r["hash"].as_str().is_some_and(|h| h.len() == 64)));
    let third = records[2]["seq"].as_i64().unwrap();

    // A changed record is named; restoring it restores the chain.
    let original = records[2]["operation"].as_str().unwrap().replace('\'', "''");
    sql(&dir, &format!("UPDATE audit SET operation = 'GET /v1/harmless' WHERE seq = {third}"));
    let (ok, report) = audit(&dir, "verify");
    assert!(!ok && report.contains(&format!("record {third} does not match")), "{report}");
    sql(&dir, &format!("UPDATE audit SET operation = '{original}' WHERE seq = {third}"));
    assert!(audit(&dir, "verify").0);

    // A forged seal is found.
    sql(&dir, "UPDATE audit_seals SET signature = X'3006020101020101'");
    let (ok, report) = audit(&dir, "verify");
    assert!(!ok && report.contains("bad signature"), "{report}");
    sql(&dir, "DELETE FROM audit_seals");
    // Without its seals the chain still holds together, but the report says what no seal
    // vouches for any more.
    let (_, report) = audit(&dir, "verify");
    let uncovered = format!("{} records are covered by no seal", records.len());
    assert!(report.contains(&uncovered), "{report}");

    // Removing records from the middle or the end is found.
    let last = records.last().unwrap()["seq"].as_i64().unwrap();
    sql(&dir, &format!("DELETE FROM audit WHERE seq = {last}"));
    let (ok, report) = audit(&dir, "verify");
    assert!(!ok && report.contains("removed from the end"), "{report}");
    sql(&dir, &format!("DELETE FROM audit WHERE seq = {third}"));
    let (ok, report) = audit(&dir, "verify");
    assert!(!ok && report.contains(&format!("record {} does not match", third + 1)), "{report}");
}
