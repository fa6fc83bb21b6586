//! Load run: end-to-end ACME issuance (newOrder → authorizations → finalize → poll →
//! download) with one client implementation against Strongroom (release build, SoftHSM,
//! SQLite; identifiers pre-authorized by `[acme] preauthorized`) and against Pebble (Debian
//! package `pebble`, `PEBBLE_VA_ALWAYS_VALID=1`, `PEBBLE_VA_NOSLEEP=1`, nonce rejection
//! off) in the same run. The client keeps its HTTPS connection open, signs with ES256, and
//! answers Pebble's challenges (always valid) as a real client would; Strongroom's orders
//! are ready at once. Reports issuances per second and p50/p99 latency, 1 and 4 clients;
//! the two servers take turns within each cell (three slices each), so that the machine's
//! slow spells fall on both.
//!
//! `cargo bench --bench acme_issuance` (`BENCH_SECS`, default 10 s a cell); under
//! `cargo test` a short smoke run.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::{free_ports, temp_dir, PgDatabase, Server};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};

fn b64(b: &[u8]) -> String {
    B64.encode(b)
}

/// One keep-alive HTTPS connection to an ACME server, with an account.
struct Acme {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    host: String,
    key: EcdsaKeyPair,
    kid: Option<String>,
    nonce: Option<String>,
    new_nonce: String,
    new_account: String,
    new_order: String,
}

struct Reply {
    status: u16,
    location: Option<String>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/".into(), |i| rest[i..].to_owned())
}

impl Acme {
    fn connect(addr: SocketAddr, ca: &Path, directory: &str) -> Acme {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let config = Arc::new(
            rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth(),
        );
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_nodelay(true).unwrap();
        // A stalled server fails the issuance instead of hanging the run.
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let conn =
            rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap())
                .unwrap();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let mut a = Acme {
            tls: rustls::StreamOwned::new(conn, tcp),
            host: format!("localhost:{}", addr.port()),
            key,
            kid: None,
            nonce: None,
            new_nonce: String::new(),
            new_account: String::new(),
            new_order: String::new(),
        };
        let d = a.request("GET", &path_of(directory), None).json();
        a.new_nonce = path_of(d["newNonce"].as_str().unwrap());
        a.new_account = path_of(d["newAccount"].as_str().unwrap());
        a.new_order = path_of(d["newOrder"].as_str().unwrap());
        let r = a.post(&a.new_account.clone(), Some(json!({"termsOfServiceAgreed": true})));
        assert!(r.status == 201 || r.status == 200, "newAccount: {}", r.status);
        a.kid = r.location;
        a
    }

    fn request(&mut self, method: &str, path: &str, body: Option<&[u8]>) -> Reply {
        let body = body.unwrap_or_default();
        let ct = if method == "POST" { "Content-Type: application/jose+json\r\n" } else { "" };
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{ct}Content-Length: {}\r\n\r\n",
            self.host,
            body.len()
        )
        .into_bytes();
        // Head and body in one write (one TLS record), as HTTP clients send them.
        request.extend_from_slice(body);
        self.tls.write_all(&request).unwrap();
        let host = self.host.clone();
        let mut reader = BufReader::new(&mut self.tls);
        let mut line = String::new();
        if let Err(e) = reader.read_line(&mut line) {
            panic!("{method} {path} on {host}: no answer ({e})");
        }
        let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let (mut len, mut chunked, mut location) = (0usize, false, None);
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            let (k, v) = (k.to_ascii_lowercase(), v.trim().to_owned());
            match k.as_str() {
                "content-length" => len = v.parse().unwrap(),
                "transfer-encoding" => chunked = v.contains("chunked"),
                "location" => location = Some(v),
                "replay-nonce" => self.nonce = Some(v),
                _ => {}
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size).unwrap();
                let n = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut chunk = vec![0; n + 2];
                reader.read_exact(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else if method != "HEAD" {
            body.resize(len, 0);
            reader.read_exact(&mut body).unwrap();
        }
        Reply { status, location, body }
    }

    fn post(&mut self, path: &str, payload: Option<Value>) -> Reply {
        for _ in 0..5 {
            if self.nonce.is_none() {
                let p = self.new_nonce.clone();
                self.request("HEAD", &p, None);
            }
            let mut header = json!({"alg": "ES256", "nonce": self.nonce.take().unwrap(),
                                    "url": format!("https://{}{path}", self.host)});
            match &self.kid {
                Some(k) => header["kid"] = k.clone().into(),
                None => {
                    let p = self.key.public_key().as_ref();
                    header["jwk"] = json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..])});
                }
            }
            let protected = b64(header.to_string().as_bytes());
            let payload =
                payload.as_ref().map(|p| b64(p.to_string().as_bytes())).unwrap_or_default();
            let sig = self
                .key
                .sign(&SystemRandom::new(), format!("{protected}.{payload}").as_bytes())
                .unwrap();
            let body =
                json!({"protected": protected, "payload": payload, "signature": b64(sig.as_ref())});
            let r = self.request("POST", path, Some(body.to_string().as_bytes()));
            // A client retries a rejected nonce with the fresh one (RFC 8555 §6.5).
            if r.status == 400 && r.json()["type"] == "urn:ietf:params:acme:error:badNonce" {
                continue;
            }
            return r;
        }
        panic!("badNonce five times");
    }

    fn poll(&mut self, url: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..2000 {
            let v = self.post(&path_of(url), None).json();
            if done(&v) {
                return v;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("never done: {url}");
    }

    /// One issuance for `name`: the full protocol a client runs.
    fn issue(&mut self, name: &str) {
        let order = self.post(
            &self.new_order.clone(),
            Some(json!({"identifiers": [{"type": "dns", "value": name}]})),
        );
        assert_eq!(order.status, 201, "newOrder {}", String::from_utf8_lossy(&order.body));
        let order_url = order.location.clone().unwrap();
        let o = order.json();
        for authz in o["authorizations"].as_array().unwrap() {
            let a = self.post(&path_of(authz.as_str().unwrap()), None).json();
            if a["status"] == "valid" {
                continue;
            }
            let ch = a["challenges"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == "http-01")
                .unwrap();
            self.post(&path_of(ch["url"].as_str().unwrap()), Some(json!({})));
            self.poll(authz.as_str().unwrap(), |a| a["status"] == "valid");
        }
        self.poll(&order_url, |o| o["status"] == "ready");
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = b64(params.serialize_request(&key).unwrap().der());
        self.post(&path_of(o["finalize"].as_str().unwrap()), Some(json!({"csr": csr})));
        let done = self.poll(&order_url, |o| o["status"] == "valid");
        let cert = self.post(&path_of(done["certificate"].as_str().unwrap()), None);
        assert!(cert.body.starts_with(b"-----BEGIN CERTIFICATE-----"), "no certificate");
    }
}

struct Pebble {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pebble with a TLS certificate from a throwaway CA, validating nothing.
fn start_pebble(dir: &Path) -> Pebble {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("pebble-ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("pebble.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("pebble.key"), key.serialize_pem()).unwrap();
    let [port, management] = free_ports();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let config = json!({"pebble": {
        "listenAddress": addr.to_string(),
        "managementListenAddress": format!("127.0.0.1:{management}"),
        "certificate": dir.join("pebble.pem"), "privateKey": dir.join("pebble.key"),
        "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "",
        "externalAccountBindingRequired": false
    }});
    std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
    let mut child = Command::new("pebble")
        .arg("-config")
        .arg(dir.join("pebble.json"))
        .env("PEBBLE_VA_ALWAYS_VALID", "1")
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .env("PEBBLE_AUTHZREUSE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pebble (Debian package pebble)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("pebble exited at start ({status})");
        }
        assert!(Instant::now() < deadline, "pebble did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Pebble { child, addr }
}

/// What one or more measuring runs saw: each issuance's latency (ms), the time taken, and
/// how many issuances failed.
#[derive(Default)]
struct Sample {
    latencies: Vec<f64>,
    secs: f64,
    failed: usize,
}

impl Sample {
    fn add(&mut self, other: Sample) {
        self.latencies.extend(other.latencies);
        self.secs += other.secs;
        self.failed += other.failed;
    }

    /// Issuances per second, p50 and p99 latency (ms), and failures.
    fn summary(mut self) -> (f64, f64, f64, usize) {
        let l = &mut self.latencies;
        l.sort_by(|a, b| a.total_cmp(b));
        let pct =
            |p: f64| l.get(((l.len().max(1) - 1) as f64 * p) as usize).copied().unwrap_or(f64::NAN);
        (l.len() as f64 / self.secs, pct(0.5), pct(0.99), self.failed)
    }
}

/// Slices per cell: the two servers take turns, so that a slow spell of this noisy
/// machine falls on both rather than on whichever ran at the time.
const TURNS: usize = 3;

/// Strongroom (`a`) and Pebble (`b`) measured in turns, `secs` each in all; each closure
/// measures for the seconds it is given.
fn measure_in_turns(
    mut a: impl FnMut(f64) -> Sample,
    mut b: impl FnMut(f64) -> Sample,
    secs: f64,
) -> (Sample, Sample) {
    let (mut sa, mut sb) = (Sample::default(), Sample::default());
    for _ in 0..TURNS {
        sa.add(clean_slice(&mut a, secs / TURNS as f64));
        sb.add(clean_slice(&mut b, secs / TURNS as f64));
    }
    (sa, sb)
}

/// One Pebble slice of `secs` with `clients`. Each starts a fresh Pebble, so that a stall
/// (Pebble now and then stops answering) does not carry over.
fn pebble_slice(dir: &Path, clients: usize, secs: f64) -> Sample {
    let pebble = start_pebble(dir);
    let pb_dir = format!("https://localhost:{}/dir", pebble.addr.port());
    measure(&[(pebble.addr, pb_dir)], &dir.join("pebble-ca.pem"), clients, secs)
}

/// Attempts at a slice in which no issuance fails.
const ATTEMPTS: usize = 3;

/// One slice of `secs`, measured again (up to [`ATTEMPTS`] in all) when an issuance
/// failed: a request left unanswered costs the read timeout, longer than a slice, so such
/// a slice shows the stall rather than the rate. The failures stay counted.
fn clean_slice(measure: &mut impl FnMut(f64) -> Sample, secs: f64) -> Sample {
    let mut failed = 0;
    for attempt in 1..=ATTEMPTS {
        let mut s = measure(secs);
        if s.failed == 0 || attempt == ATTEMPTS {
            s.failed += failed;
            return s;
        }
        failed += s.failed;
    }
    Sample::default()
}

/// Issuances with `clients` clients for `secs`, spread over `targets` (server address and
/// directory URL; replicas of one store). A failed issuance (a request the server left
/// unanswered for the read timeout, or any other failure) is not counted, its time is,
/// and the client starts over on a new connection and account.
fn measure(targets: &[(SocketAddr, String)], ca: &Path, clients: usize, secs: f64) -> Sample {
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|t| {
            let (addr, dir_url) = targets[t % targets.len()].clone();
            let (ca, latencies, failures) = (ca.to_owned(), latencies.clone(), failures.clone());
            std::thread::spawn(move || {
                let connect = || std::panic::catch_unwind(|| Acme::connect(addr, &ca, &dir_url));
                let Ok(mut acme) = connect() else {
                    failures.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    return;
                };
                let mut i = 0;
                while start.elapsed().as_secs_f64() < secs {
                    let t0 = Instant::now();
                    let name = format!("svc{t}-{i}.bench.test");
                    let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        acme.issue(&name);
                    }));
                    i += 1;
                    match done {
                        Ok(()) => {
                            latencies.lock().unwrap().push(t0.elapsed().as_secs_f64() * 1000.0)
                        }
                        Err(_) => {
                            failures.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            // A server that does not take a new account either is stuck:
                            // this client stops.
                            match connect() {
                                Ok(a) => acme = a,
                                Err(_) => break,
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let latencies = latencies.lock().unwrap().clone();
    Sample { latencies, secs, failed: failures.load(std::sync::atomic::Ordering::SeqCst) }
}

/// Prints what one issuance cannot do without on this machine, measured now: its
/// ECDSA P-256 work (aws-lc in this process) and its round trips. The server verifies 7
/// signatures (6 JWS, the CSR); the client makes 7 (6 JWS, the CSR) and a key; the CA
/// signs once (in the HSM, counted here as one more signature). A floor no server goes
/// below, against which to read the ratios to Pebble.
fn floor(secs: f64) {
    use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let message = [7u8; 200];
    let signature = key.sign(&rng, &message).unwrap();
    let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key.public_key().as_ref());
    let each = |mut f: Box<dyn FnMut() + '_>| {
        let (start, mut n) = (Instant::now(), 0u32);
        while start.elapsed().as_secs_f64() < secs {
            f();
            n += 1;
        }
        start.elapsed().as_secs_f64() / f64::from(n)
    };
    let verify = each(Box::new(|| public.verify(&message, signature.as_ref()).unwrap()));
    let sign = each(Box::new(|| {
        key.sign(&rng, &message).unwrap();
    }));
    let round_trip = 1.0 / common::loopback_round_trips(secs);
    let ecdsa = 7.0 * verify + 9.0 * sign;
    let sequence = ecdsa + 6.0 * round_trip;
    println!(
        "Floor per issuance, measured now: ECDSA P-256 verify {:.0} us, sign {:.0} us, \
         loopback round trip {:.0} us; 7 verifications and 9 signatures or keys make {:.2} ms \
         of CPU (at most {:.0} issuances/s on two cores with nothing else to do), and with \
         6 round trips {:.2} ms in sequence (at most {:.0}/s for one client).\n",
        verify * 1e6,
        sign * 1e6,
        round_trip * 1e6,
        ecdsa * 1e3,
        2.0 / ecdsa,
        sequence * 1e3,
        1.0 / sequence
    );
}

/// A note for a table row when issuances failed.
fn failed_note(n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} failed)")
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let secs = if bench {
        std::env::var("BENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(10.0)
    } else {
        0.5
    };
    // `ACME_BENCH_ONLY=single|no-store|replicas` runs one table only (for A/B runs).
    let only = std::env::var("ACME_BENCH_ONLY").ok();
    let runs = |table: &str| only.as_deref().is_none_or(|o| o == table);
    // A failed issuance is reported in one line and counted (see `measure`).
    std::panic::set_hook(Box::new(|info| eprintln!("issuance failed: {info}")));
    let dir = temp_dir("strongroom-bench-acme");
    let config = dir.join("acme.toml");
    std::fs::write(&config, "[acme]\npreauthorized = [\"*.bench.test\"]\n").unwrap();
    // The smoke run under `cargo test` keeps to one client: Pebble now and then leaves a
    // request unanswered with four.
    let client_counts: &[usize] = if bench { &[1, 4] } else { &[1] };
    if bench {
        floor(1.0);
    }
    if runs("single") {
        single(&dir, &config, bench, client_counts, secs);
    }
    if runs("no-store") {
        no_store(&dir, bench, client_counts, secs);
    }
    if runs("replicas") {
        replicas(&dir, &config, bench, secs);
    }
}

/// Single node on SQLite.
fn single(dir: &Path, config: &Path, bench: bool, client_counts: &[usize], secs: f64) {
    let server = Server::start_with(&dir.join("data"), &["--config", config.to_str().unwrap()]);
    let sr_ca = dir.join("data/ca.crt");
    let sr_dir = format!("https://localhost:{}/acme/directory", server.https.port());

    println!("| clients | Strongroom issuances/s | p50 / p99 ms | Pebble issuances/s | p50 / p99 ms | ratio |");
    println!("|---|---|---|---|---|---|");
    for &clients in client_counts {
        let (sr, pb) = measure_in_turns(
            |s| measure(&[(server.https, sr_dir.clone())], &sr_ca, clients, s),
            |s| pebble_slice(dir, clients, s),
            secs,
        );
        let ((sr, sr50, sr99, srf), (pb, pb50, pb99, pbf)) = (sr.summary(), pb.summary());
        // The smoke run under `cargo test` must issue without a failure.
        assert!(bench || srf + pbf == 0, "{srf} Strongroom and {pbf} Pebble issuances failed");
        println!(
            "| {clients} | {sr:.1}{} | {sr50:.1} / {sr99:.1} | {pb:.1}{} | {pb50:.1} / {pb99:.1} | {:.1}× |",
            failed_note(srf),
            failed_note(pbf),
            sr / pb
        );
    }
    server.stop();
}

/// The no-store profile (certificates not recorded) on a single node, same clients,
/// Pebble measured again in turns with it.
fn no_store(dir: &Path, bench: bool, client_counts: &[usize], secs: f64) {
    let bulk = dir.join("bulk.toml");
    std::fs::write(
        &bulk,
        "[acme]\npreauthorized = [\"*.bench.test\"]\ndefault_profile = \"bulk\"\n\
         [acme.profiles.bulk]\nstore = false\n",
    )
    .unwrap();
    let server = Server::start_with(&dir.join("bulk"), &["--config", bulk.to_str().unwrap()]);
    let bulk_dir = format!("https://localhost:{}/acme/directory", server.https.port());
    println!("\n| clients (no-store profile) | Strongroom issuances/s | p50 / p99 ms | Pebble issuances/s | ratio |");
    println!("|---|---|---|---|---|");
    for &clients in client_counts {
        let targets = [(server.https, bulk_dir.clone())];
        let (sr, pb) = measure_in_turns(
            |s| measure(&targets, &dir.join("bulk/ca.crt"), clients, s),
            |s| pebble_slice(dir, clients, s),
            secs,
        );
        let ((sr, sr50, sr99, srf), pb) = (sr.summary(), pb.summary().0);
        assert!(bench || srf == 0, "{srf} issuances failed");
        let failed = failed_note(srf);
        println!(
            "| {clients} | {sr:.1}{failed} | {sr50:.1} / {sr99:.1} | {pb:.1} | {:.1}× |",
            sr / pb
        );
    }
    server.stop();
}

/// Replicas on one PostgreSQL database, four clients spread over them, beside Pebble
/// with four clients in turns (Pebble stalls now and then with more clients).
fn replicas(dir: &Path, config: &Path, bench: bool, secs: f64) {
    let clients = if bench { 4 } else { 1 };
    let replica_counts: &[usize] = if bench { &[1, 2, 3] } else { &[2] };
    println!("\n| replicas (PostgreSQL) | clients | issuances/s | p50 / p99 ms | Pebble issuances/s | ratio |");
    println!("|---|---|---|---|---|---|");
    for &n in replica_counts {
        let db = PgDatabase::new(&format!("acme{n}"));
        let data = dir.join(format!("replicas{n}"));
        let args = ["--config", config.to_str().unwrap(), "--store-url", db.url.as_str()];
        let servers: Vec<Server> = (0..n).map(|_| Server::start_with(&data, &args)).collect();
        let targets: Vec<(SocketAddr, String)> = servers
            .iter()
            .map(|s| (s.https, format!("https://localhost:{}/acme/directory", s.https.port())))
            .collect();
        let (sr, pb) = measure_in_turns(
            |s| measure(&targets, &data.join("ca.crt"), clients, s),
            |s| pebble_slice(dir, clients, s),
            secs,
        );
        let ((sr, sr50, sr99, srf), pb) = (sr.summary(), pb.summary().0);
        assert!(bench || srf == 0, "{srf} issuances failed on {n} replicas");
        println!(
            "| {n} | {clients} | {sr:.1}{} | {sr50:.1} / {sr99:.1} | {pb:.1} | {:.1}× |",
            failed_note(srf),
            sr / pb
        );
        drop(servers);
    }
}
