//! Load run: KMIP Create, Get and Encrypt (AES-256-GCM, 1 KiB) over persistent mutual-TLS
//! connections against Strongroom (release build, SoftHSM): one node on SQLite with
//! synchronous=FULL, then 1, 2 and 3 replicas on one PostgreSQL database with the
//! connections spread over them; and PyKMIP's own server in the same run, with the same
//! client and requests (KMIP 1.2), for Create and Get. Prints ops/s, p50/p99 latency and
//! the ratio to PyKMIP.
//!
//! `cargo bench --bench kmip_load` for the measurement (5 s a cell; `LOAD_SECS` to change);
//! under `cargo test` it makes a short smoke run against Strongroom only (SQLite, and two
//! replicas on PostgreSQL). `LOAD_PEER=0`
//! leaves PyKMIP out.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use kmip::enums::{BlockCipherMode, Operation, ResultStatus};
use kmip::{ProtocolVersion, Tag, Ttlv, Value};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Create,
    Get,
    /// AES-256-GCM over 1 KiB.
    Encrypt,
}

struct Stats {
    ops: usize,
    secs: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn create() -> Vec<Ttlv> {
    create_payload(ProtocolVersion::V1_2, &aes_attributes(256))
}

fn encrypt(key: &str) -> Vec<Ttlv> {
    let gcm = Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![enumeration(Tag::BLOCK_CIPHER_MODE, BlockCipherMode::GCM.0)],
    );
    vec![uid(key), gcm, Ttlv::new(Tag::DATA, Value::ByteString(vec![0; 1024]))]
}

fn connect(addr: SocketAddr, tls: &Arc<rustls::ClientConfig>) -> Client {
    let mut c = Client::connect_with(addr, tls.clone());
    c.version = ProtocolVersion::V1_2;
    c
}

/// `conns` connections spread over `addrs` (replicas), each running `op` until `secs` pass.
fn load(
    addrs: &[SocketAddr],
    tls: &Arc<rustls::ClientConfig>,
    op: Op,
    conns: usize,
    secs: f64,
) -> Stats {
    let mut setup = connect(addrs[0], tls);
    let key = uid_of(&setup.ok(Operation::CREATE, create()));
    if op == Op::Encrypt {
        setup.ok(Operation::ACTIVATE, vec![uid(&key)]);
    }
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let threads: Vec<_> = (0..conns)
        .map(|i| {
            let (tls, key, addr) = (tls.clone(), key.clone(), addrs[i % addrs.len()]);
            std::thread::spawn(move || {
                let mut c = connect(addr, &tls);
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let item = match op {
                        Op::Create => c.call(Operation::CREATE, create()),
                        Op::Get => c.call(Operation::GET, vec![uid(&key)]),
                        Op::Encrypt => c.call(Operation::ENCRYPT, encrypt(&key)),
                    };
                    assert_eq!(item.result_status, ResultStatus::SUCCESS, "{item:?}");
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<Duration> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let secs = started.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    Stats { ops: lat.len(), secs, p50_ms: pct(0.50), p99_ms: pct(0.99) }
}

/// Certificates for the PyKMIP peer, from a throwaway CA made here.
fn peer_certs(dir: &Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, SanType,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, "PyKMIP peer CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |name: &str, eku, server: bool| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![eku];
        if server {
            p.subject_alt_names = vec![
                SanType::IpAddress([127, 0, 0, 1].into()),
                SanType::DnsName("localhost".try_into().unwrap()),
            ];
        }
        let cert = p.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    };
    leaf("server", ExtendedKeyUsagePurpose::ServerAuth, true);
    leaf("alice", ExtendedKeyUsagePurpose::ClientAuth, false);
    std::fs::write(dir.join("ca.crt"), ca_cert.pem()).unwrap();
}

struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        // pykmip-server forks a worker per connection: end its whole process group. The
        // group goes after `--`: procps-ng 4.0.2 (Debian 12) reads `kill -TERM -1234` as
        // `kill(-1)`, which as root ends every process on the machine.
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-s", "TERM", "--", &group]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_pykmip(dir: &Path) -> (Peer, SocketAddr) {
    peer_certs(dir);
    let port = free_port();
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    let d = dir.display();
    let conf = format!(
        "[server]\nhostname=127.0.0.1\nport={port}\ncertificate_path={d}/server.crt\nkey_path={d}/server.key\n\
         ca_path={d}/ca.crt\nauth_suite=TLS1.2\npolicy_path={d}/policies\nenable_tls_client_auth=True\n\
         logging_level=WARNING\ndatabase_path={d}/pykmip.db\n"
    );
    std::fs::write(dir.join("server.conf"), conf).unwrap();
    let peer = Peer(
        Command::new("pykmip-server")
            .arg("-f")
            .arg(dir.join("server.conf"))
            .arg("-l")
            .arg(dir.join("server.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("pykmip-server (pip install pykmip) is the peer of this benchmark"),
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return (peer, addr);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("pykmip-server did not start; see {d}/server.log");
}

/// Starts `n` replicas on one fresh PostgreSQL database and one data directory.
fn replicas(n: usize) -> (PgDatabase, TempDir, Vec<Server>) {
    let db = PgDatabase::new(&format!("load{n}"));
    let dir = temp_dir("strongroom-load-pg");
    let servers = (0..n).map(|_| Server::start_with(&dir, &["--store-url", &db.url])).collect();
    (db, dir, servers)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let secs: f64 = if bench {
        std::env::var("LOAD_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5.0)
    } else {
        0.2
    };
    let cells: &[(Op, usize)] = if bench {
        &[(Op::Create, 1), (Op::Create, 4), (Op::Get, 1), (Op::Get, 4), (Op::Encrypt, 4)]
    } else {
        &[(Op::Create, 1), (Op::Get, 2), (Op::Encrypt, 1)]
    };
    // Replicas on PostgreSQL, each cell's connections spread over them.
    let pg_cells: &[(Op, usize)] = if bench {
        &[(Op::Create, 6), (Op::Get, 6), (Op::Encrypt, 6)]
    } else {
        &[(Op::Create, 2), (Op::Get, 2)]
    };
    let replica_counts: &[usize] = if bench { &[1, 2, 3] } else { &[2] };

    // (store, op, connections, figures, peer figures)
    let mut rows: Vec<(String, Op, usize, Stats, Option<Stats>)> = Vec::new();
    let dir = temp_dir("strongroom-load");
    let server = Server::start(&dir);
    let certs = client_cert(&dir, "alice");
    let ours = tls_config(&certs, Some("alice"));
    for &(op, conns) in cells {
        rows.push((
            "sqlite, 1".into(),
            op,
            conns,
            load(&[server.kmip], &ours, op, conns, secs),
            None,
        ));
    }
    drop(server);

    for &n in replica_counts {
        let (db, dir, servers) = replicas(n);
        let certs = client_cert_env(&dir, "alice", &["--store-url", &db.url], &[]);
        let tls = tls_config(&certs, Some("alice"));
        let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.kmip).collect();
        for &(op, conns) in pg_cells {
            rows.push((
                format!("postgres, {n}"),
                op,
                conns,
                load(&addrs, &tls, op, conns, secs),
                None,
            ));
        }
        drop(servers);
    }

    // LOAD_PEER=0 skips the peer, for quick experiments on Strongroom alone. PyKMIP's
    // server runs the Create and Get cells of the single-node table.
    if bench && std::env::var("LOAD_PEER").as_deref() != Ok("0") {
        let peer_dir = temp_dir("pykmip-peer");
        let (_peer, addr) = start_pykmip(&peer_dir);
        let theirs = tls_config(&peer_dir, Some("alice"));
        for row in rows.iter_mut().filter(|r| r.0.starts_with("sqlite") && r.1 != Op::Encrypt) {
            row.4 = Some(load(&[addr], &theirs, row.1, row.2, secs));
        }
    }

    println!("\nKMIP load, {secs} s per cell (ops/s; latency p50/p99 in ms)");
    println!(
        "{:<14} {:<8} {:>5} {:>12} {:>16} {:>12} {:>16} {:>8}",
        "store, nodes", "op", "conns", "strongroom", "p50/p99", "pykmip", "p50/p99", "ratio"
    );
    for (store, op, conns, s, peer) in &rows {
        let rate = s.ops as f64 / s.secs;
        let ours = format!(
            "{:<14} {:<8} {:>5} {:>12.0} {:>7.2}/{:<8.2}",
            store,
            format!("{op:?}"),
            conns,
            rate,
            s.p50_ms,
            s.p99_ms
        );
        match peer {
            Some(p) => {
                let prate = p.ops as f64 / p.secs;
                println!(
                    "{ours} {:>12.0} {:>7.2}/{:<8.2} {:>7.1}x",
                    prate,
                    p.p50_ms,
                    p.p99_ms,
                    rate / prate
                );
            }
            None => println!("{ours}"),
        }
        assert!(s.ops > 0);
    }
}
