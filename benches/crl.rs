//! CRL generation with many revoked certificates: Strongroom (release build; the CRL built
//! from the store and signed in SoftHSM, on the first request after a change, then reused)
//! beside `openssl ca -gencrl` over an index of the same size, in the same run. Reports the
//! time of the first (building) and a later (cached) request, and the CRL's size.
//!
//! `cargo bench --bench crl` (100 000 and 1 000 000 entries); under `cargo test` a short
//! smoke run with 1000.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{block_on, https_with, temp_dir, tls_config, Server};
use sqlx::Connection;

fn fill(db: &Path, n: usize) {
    let url = format!("sqlite://{}", db.display());
    block_on(async {
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        // The default issuer (the newest intermediate) is the one /v1/pki/crl serves.
        let (issuer,): (String,) = sqlx::query_as(
            "SELECT id FROM ca_issuers WHERE kind = 'intermediate' ORDER BY position DESC LIMIT 1",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        let mut tx = c.begin().await.unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        for i in 0..n {
            sqlx::query(
                "INSERT INTO certificates (serial, role, subject, not_before, not_after, \
                 revoked_at, revocation_reason, pem, issuer) \
                 VALUES (?, 'bench', 'CN=x', ?, ?, ?, 1, '', ?)",
            )
            .bind(format!("{:032x}", 0x1000_0000_0000_0000_0000u128 + i as u128))
            .bind(now - 3600)
            .bind(now + 86_400)
            .bind(now - 60)
            .bind(&issuer)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    });
}

fn timed_get(server: &Server, dir: &Path) -> (f64, usize) {
    let t = Instant::now();
    let (status, body) =
        https_with(server.https, tls_config(dir, None), "GET", "/v1/pki/crl", &[], b"");
    assert_eq!(status, 200);
    (t.elapsed().as_secs_f64(), body.len())
}

/// `openssl ca -gencrl` over an index with `n` revoked entries; seconds and bytes.
fn openssl_gencrl(dir: &Path, n: usize) -> (f64, usize) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").current_dir(dir).args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=peer",
        "-days",
        "2",
    ]);
    let mut index = String::with_capacity(n * 80);
    for i in 0..n {
        index.push_str(&format!(
            "R\t301231000000Z\t261101000000Z,keyCompromise\t{:032X}\tunknown\t/CN=x\n",
            0x1000_0000_0000_0000_0000u128 + i as u128
        ));
    }
    std::fs::write(dir.join("index.txt"), index).unwrap();
    std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = peer\n[peer]\ndatabase = index.txt\ncrlnumber = crlnumber\n\
         private_key = ca.key\ncertificate = ca.pem\ndefault_md = sha256\ndefault_crl_hours = 1\n",
    )
    .unwrap();
    let t = Instant::now();
    run(&["ca", "-gencrl", "-config", "ca.cnf", "-out", "crl.pem"]);
    let secs = t.elapsed().as_secs_f64();
    run(&["crl", "-in", "crl.pem", "-outform", "DER", "-out", "crl.der"]);
    (secs, std::fs::metadata(dir.join("crl.der")).unwrap().len() as usize)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if bench { &[100_000, 1_000_000] } else { &[1000] };
    println!("| revoked | Strongroom first (build) s | later (cached) s | DER bytes | openssl ca -gencrl s | DER bytes |");
    println!("|---|---|---|---|---|---|");
    for &n in sizes {
        let dir = temp_dir("strongroom-bench-crl");
        Server::start(&dir).stop();
        fill(&dir.join("strongroom.db"), n);
        let server = Server::start(&dir);
        let (first, size) = timed_get(&server, &dir);
        // Each entry takes about 43 bytes: a CRL that lost its entries must not pass.
        assert!(size > n * 40, "the CRL has {size} bytes for {n} entries");
        let (cached, _) = timed_get(&server, &dir);
        server.stop();
        let peer = temp_dir("strongroom-bench-crl-openssl");
        let (peer_secs, peer_size) = openssl_gencrl(&peer, n);
        println!("| {n} | {first:.2} | {cached:.3} | {size} | {peer_secs:.2} | {peer_size} |");
    }
}
