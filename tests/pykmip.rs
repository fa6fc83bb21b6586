//! Interoperability with an unmodified third-party client: PyKMIP's ProxyKmipClient over
//! mutual TLS with certificates from `strongroom client-cert`, across a server restart, and
//! the KMIP flows of databases that keep their TDE keys in a KMS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;

fn pykmip(
    phase: &str,
    server: &Server,
    certs: &std::path::Path,
    name: &str,
    state: &std::path::Path,
) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pykmip/lifecycle.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(phase)
        .args(["--port", &server.kmip.port().to_string()])
        .arg("--certs")
        .arg(certs)
        .args(["--name", name])
        .arg("--state")
        .arg(state)
        .output()
        .expect("python3 is needed for the PyKMIP tests (apt-get install python3)");
    assert!(
        out.status.success(),
        "PyKMIP {phase} failed (needs `pip install pykmip`):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pykmip_client_lifecycle_across_restart_and_isolation() {
    let dir = temp_dir("strongroom-pykmip");
    let server = Server::start(&dir);
    let certs = client_cert(&dir, "alice");
    let bob = client_cert(&dir, "bob");
    std::fs::copy(bob.join("bob.crt"), certs.join("bob.crt")).unwrap();
    std::fs::copy(bob.join("bob.key"), certs.join("bob.key")).unwrap();
    let state = dir.join("pykmip-state.json");

    pykmip("create", &server, &certs, "alice", &state);
    server.stop();
    let server = Server::start(&dir);
    pykmip("deny", &server, &certs, "bob", &state);
    pykmip("check", &server, &certs, "alice", &state);
    server.stop();
}

#[test]
fn pykmip_client_key_pairs_signatures_encryption_and_derivation() {
    let dir = temp_dir("strongroom-pykmip-crypto");
    let server = Server::start(&dir);
    let certs = client_cert(&dir, "carol");
    pykmip("crypto", &server, &certs, "carol", &dir.join("unused.json"));
    pykmip("derive", &server, &certs, "carol", &dir.join("unused.json"));
    server.stop();
}

/// The TDE key flows of Percona's keyring_kmip (KMIP 1.0 and 1.4), MongoDB (1.2) and MySQL
/// Enterprise's keyring_okv (1.1), sent by PyKMIP with each client's protocol version
/// (`tests/pykmip/tde_clients.py`). pg_tde's own bytes are replayed in `kmip_lifecycle.rs`.
#[test]
fn database_tde_flows_in_their_kmip_versions() {
    let dir = temp_dir("strongroom-pykmip-tde");
    let server = Server::start(&dir);
    let certs = client_cert(&dir, "dba");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pykmip/tde_clients.py");
    for flow in ["percona-1.0", "percona-1.4", "mongodb", "okv"] {
        let out = Command::new("python3")
            .arg(script)
            .arg(flow)
            .args(["--port", &server.kmip.port().to_string(), "--name", "dba", "--certs"])
            .arg(&certs)
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{flow} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    server.stop();
}

#[test]
fn pykmip_registers_certificates_and_public_keys() {
    let dir = temp_dir("strongroom-pykmip-objects");
    let server = Server::start(&dir);
    let certs = client_cert(&dir, "dave");
    pykmip("objects", &server, &certs, "dave", &dir.join("unused.json"));
    server.stop();
}
