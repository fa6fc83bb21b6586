//! Shared helpers for black-box tests: start the real `strongroom` binary on free loopback
//! ports with a fresh data directory, issue client certificates with its CLI, and talk KMIP
//! to it over mutual TLS with the `kmip` crate.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use kmip::attributes::{names, write_attributes, Attribute};
use kmip::enums::{usage_mask, CryptographicAlgorithm, ObjectType, Operation, ResultStatus};
use kmip::message::{
    RequestBatchItem, RequestHeader, RequestMessage, ResponseBatchItem, ResponseMessage,
};
use kmip::ttlv::binary::{decode, encode, frame_len, Limits};
use kmip::{ProtocolVersion, Tag, Ttlv, Value};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

pub mod acme;

pub const BIN: &str = env!("CARGO_BIN_EXE_strongroom");

/// The servers' log filter: `STRONGROOM_TEST_LOG` (say `sqlx::query=debug` to see every
/// statement), else warnings only.
fn server_log() -> String {
    std::env::var("STRONGROOM_TEST_LOG").unwrap_or_else(|_| "warn".to_owned())
}

/// A fresh directory under the system temp dir, removed when dropped unless the test is
/// failing (so a failure leaves its data behind to inspect).
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn temp_dir(prefix: &str) -> TempDir {
    let mut rnd = [0u8; 8];
    getrandom::fill(&mut rnd).unwrap();
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", hex::encode(rnd)));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// A running server process.
pub struct Server {
    child: Child,
    pub data_dir: PathBuf,
    pub kmip: SocketAddr,
    pub https: SocketAddr,
}

impl Server {
    pub fn start(data_dir: &Path) -> Server {
        Self::start_with(data_dir, &[])
    }

    pub fn start_with(data_dir: &Path, extra: &[&str]) -> Server {
        Self::start_env(data_dir, extra, &[])
    }

    /// Starts with extra arguments and environment variables.
    pub fn start_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_listening(data_dir, "127.0.0.1:0", extra, env)
    }

    /// Starts with the HTTPS listener on `http_listen` (to come back on the same port).
    pub fn start_listening(
        data_dir: &Path,
        http_listen: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .args(["--kmip-listen", "127.0.0.1:0", "--http-listen", http_listen])
            .args(extra)
            .env("STRONGROOM_LOG", server_log())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start strongroom");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut addr = |prefix: &str| -> SocketAddr {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("strongroom exited before printing {prefix}"))
                .unwrap();
            line.strip_prefix(prefix)
                .unwrap_or_else(|| panic!("unexpected line {line:?}"))
                .parse()
                .unwrap()
        };
        let kmip = addr("KMIP listening on ");
        let https = addr("HTTPS listening on ");
        Server { child, data_dir: data_dir.to_owned(), kmip, https }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server with SIGTERM and waits for it to exit.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

/// A fresh data directory, a server on it, a client certificate for `name` and a
/// connection with it. Dropped in reverse order: connection, server, then the directory.
pub fn started(prefix: &str, name: &str) -> (TempDir, Server, PathBuf, Client) {
    let dir = temp_dir(prefix);
    let server = Server::start(&dir);
    let certs = client_cert(&dir, name);
    let client = Client::connect(&server, &certs, name);
    (dir, server, certs, client)
}

/// A Revocation Reason structure with `code` (KMIP 1.4 §3.31).
pub fn revocation(code: kmip::enums::RevocationReasonCode) -> Ttlv {
    Ttlv::structure(Tag::REVOCATION_REASON, vec![enumeration(Tag::REVOCATION_REASON_CODE, code.0)])
}

/// Runs `strongroom grant`: lets `to` run `operations` (comma-separated) on object `id`.
pub fn grant(dir: &Path, id: &str, to: &str, operations: &str) {
    let out = Command::new(BIN)
        .args(["grant", "--data-dir"])
        .arg(dir)
        .args(["--object", id, "--to", to, "--operations", operations])
        .env("STRONGROOM_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `strongroom client-cert`; returns the output directory holding NAME.crt/.key, ca.crt.
pub fn client_cert(data_dir: &Path, name: &str) -> PathBuf {
    client_cert_env(data_dir, name, &[], &[])
}

/// `strongroom client-cert` with extra arguments and environment variables.
pub fn client_cert_env(
    data_dir: &Path,
    name: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> PathBuf {
    let out = data_dir.join(format!("client-{name}"));
    let status = Command::new(BIN)
        .args(["client-cert", "--data-dir"])
        .arg(data_dir)
        .args(["--name", name, "--out"])
        .arg(&out)
        .args(extra)
        .envs(env.iter().copied())
        .env("STRONGROOM_LOG", "warn")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "client-cert failed");
    out
}

fn roots(ca: &Path) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(ca).unwrap()).unwrap();
    roots
}

/// A TLS client config trusting `DATA/ca.crt`, with the named client certificate if any.
pub fn tls_config(dir: &Path, name: Option<&str>) -> Arc<rustls::ClientConfig> {
    tls_config_trusting(&dir.join("ca.crt"), dir, name)
}

/// Like [`tls_config`], trusting the CA certificate `ca` (which may differ from the one
/// that issued the client certificate).
pub fn tls_config_trusting(ca: &Path, dir: &Path, name: Option<&str>) -> Arc<rustls::ClientConfig> {
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots(ca));
    Arc::new(match name {
        Some(n) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(dir.join(format!("{n}.crt"))).unwrap()],
                PrivateKeyDer::from_pem_file(dir.join(format!("{n}.key"))).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    })
}

/// One HTTP/1.1 request; returns the status code and body.
pub fn https(
    server: &Server,
    config: Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    https_with(server.https, config, method, path, &[("Content-Type", content_type)], body)
}

/// One HTTP/1.1 request with the given headers; returns the status code and body.
pub fn https_with(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let (status, _, body) = https_full(addr, config, method, path, headers, body);
    (status, body)
}

/// Like [`https_with`], also returning the response headers (names in lower case).
pub fn https_full(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let tcp = TcpStream::connect(addr).unwrap();
    let conn =
        rustls::ClientConnection::new(config, ServerName::try_from("127.0.0.1").unwrap()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    tls.write_all(head.as_bytes()).unwrap();
    // A server may answer from the head alone and close (413 for a body over its limit):
    // the rest of the body then meets a closed connection, and the answer is still there
    // to read.
    let _ = tls.write_all(body);
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").expect("HTTP response");
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, out[split + 4..].to_vec())
}

/// The REST API under /v1/, called with a bearer token.
#[derive(Clone)]
pub struct Api {
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    pub token: String,
}

impl Api {
    /// With the initial admin token that first start wrote to `DATA/admin.token`.
    pub fn admin(server: &Server) -> Api {
        let token = std::fs::read_to_string(server.data_dir.join("admin.token")).unwrap();
        Api {
            addr: server.https,
            config: tls_config(&server.data_dir, None),
            token: token.trim().to_owned(),
        }
    }

    /// The same server with another token.
    pub fn with_token(&self, token: &str) -> Api {
        Api { token: token.to_owned(), ..self.clone() }
    }

    /// Sends `body` (JSON; `null` for none) and returns the status and the JSON answer
    /// (`null` when the body is empty).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let auth = format!("Bearer {}", self.token);
        let body = if body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
        let (status, out) = https_with(
            self.addr,
            self.config.clone(),
            method,
            path,
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            &body,
        );
        let json = if out.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&out)
                .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&out).into()))
        };
        (status, json)
    }

    /// Like [`Api::call`], asserting a 2xx status.
    pub fn ok(&self, method: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
        let (status, json) = self.call(method, path, body);
        assert!((200..300).contains(&status), "{method} {path}: {status} {json}");
        json
    }
}

/// Runs a future on a fresh single-threaded runtime (for sqlx checks from sync tests).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// A KMIP client over one mutual-TLS connection.
pub struct Client {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    pub version: ProtocolVersion,
}

impl Client {
    pub fn connect(server: &Server, cert_dir: &Path, name: &str) -> Client {
        Self::connect_with(server.kmip, tls_config(cert_dir, Some(name)))
    }

    pub fn connect_with(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Client {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let conn =
            rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap())
                .unwrap();
        Client { tls: rustls::StreamOwned::new(conn, tcp), version: ProtocolVersion::V1_4 }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        self.tls.write_all(bytes)?;
        self.tls.flush()?;
        self.read_message()
    }

    pub fn read_message(&mut self) -> std::io::Result<Vec<u8>> {
        let mut header = [0u8; 8];
        self.tls.read_exact(&mut header)?;
        let mut buf = vec![0u8; frame_len(&header).unwrap()];
        buf[..8].copy_from_slice(&header);
        self.tls.read_exact(&mut buf[8..])?;
        Ok(buf)
    }

    pub fn send(&mut self, msg: &RequestMessage) -> ResponseMessage {
        let bytes = self.send_raw(&encode(&msg.to_ttlv())).unwrap();
        ResponseMessage::from_ttlv(&decode(&bytes, &Limits::default()).unwrap()).unwrap()
    }

    /// One operation; returns its batch item whatever the result.
    pub fn call(&mut self, op: Operation, payload: Vec<Ttlv>) -> ResponseBatchItem {
        let msg = request(self.version, vec![(op, payload)]);
        let mut r = self.send(&msg);
        assert_eq!(r.header.protocol_version, self.version);
        assert_eq!(r.batch_items.len(), 1);
        r.batch_items.remove(0)
    }

    /// One operation that must succeed; returns its response payload.
    pub fn ok(&mut self, op: Operation, payload: Vec<Ttlv>) -> Ttlv {
        let item = self.call(op, payload);
        assert_eq!(
            item.result_status,
            ResultStatus::SUCCESS,
            "{op:?} failed: {:?} {:?}",
            item.result_reason,
            item.result_message
        );
        item.payload.expect("payload")
    }
}

pub fn request(version: ProtocolVersion, items: Vec<(Operation, Vec<Ttlv>)>) -> RequestMessage {
    RequestMessage {
        header: RequestHeader {
            protocol_version: version,
            maximum_response_size: None,
            client_correlation_value: None,
            server_correlation_value: None,
            authentication: None,
            batch_error_continuation_option: None,
            batch_order_option: None,
            time_stamp: None,
            batch_count: items.len() as i32,
        },
        batch_items: items
            .into_iter()
            .map(|(operation, payload)| RequestBatchItem {
                operation,
                unique_batch_item_id: None,
                payload: Ttlv::structure(Tag::REQUEST_PAYLOAD, payload),
            })
            .collect(),
    }
}

pub fn text(tag: Tag, s: &str) -> Ttlv {
    Ttlv::new(tag, Value::TextString(s.to_owned()))
}

pub fn uid(s: &str) -> Ttlv {
    text(Tag::UNIQUE_IDENTIFIER, s)
}

pub fn enumeration(tag: Tag, v: u32) -> Ttlv {
    Ttlv::new(tag, Value::Enumeration(v))
}

pub fn int(tag: Tag, v: i32) -> Ttlv {
    Ttlv::new(tag, Value::Integer(v))
}

/// A Name attribute value.
pub fn name_value(n: &str) -> Value {
    Value::Structure(vec![text(Tag::NAME_VALUE, n), enumeration(Tag::NAME_TYPE, 1)])
}

/// Attributes of an AES key of `bits` for Encrypt and Decrypt.
pub fn aes_attributes(bits: i32) -> Vec<Attribute> {
    vec![
        Attribute::new(
            names::CRYPTOGRAPHIC_ALGORITHM,
            Value::Enumeration(CryptographicAlgorithm::AES.0),
        ),
        Attribute::new(names::CRYPTOGRAPHIC_LENGTH, Value::Integer(bits)),
        Attribute::new(
            names::CRYPTOGRAPHIC_USAGE_MASK,
            Value::Integer(usage_mask::ENCRYPT | usage_mask::DECRYPT),
        ),
    ]
}

/// A Create payload for a symmetric key in the model of `version`: Template-Attribute (1.x)
/// or Attributes (2.x).
pub fn create_payload(version: ProtocolVersion, attrs: &[Attribute]) -> Vec<Ttlv> {
    let mut p = vec![enumeration(Tag::OBJECT_TYPE, ObjectType::SYMMETRIC_KEY.0)];
    if version.is_v2() {
        p.extend(write_attributes(attrs, version));
    } else {
        p.push(Ttlv::structure(Tag::TEMPLATE_ATTRIBUTE, write_attributes(attrs, version)));
    }
    p
}

/// The Unique Identifier of a response payload.
pub fn uid_of(payload: &Ttlv) -> String {
    payload.find(Tag::UNIQUE_IDENTIFIER).unwrap().as_text().unwrap().to_owned()
}

/// The key material of a Get response payload for a symmetric key, Secret Data or a
/// (sealed) private key.
pub fn key_material(payload: &Ttlv) -> Vec<u8> {
    payload
        .find(Tag::SYMMETRIC_KEY)
        .or_else(|| payload.find(Tag::SECRET_DATA))
        .or_else(|| payload.find(Tag::PRIVATE_KEY))
        .and_then(|k| k.find(Tag::KEY_BLOCK))
        .and_then(|b| b.find(Tag::KEY_VALUE))
        .and_then(|v| v.find(Tag::KEY_MATERIAL))
        .unwrap()
        .as_bytes()
        .unwrap()
        .to_vec()
}

/// A fresh database on the test PostgreSQL server (`STRONGROOM_TEST_POSTGRES_URL`, default
/// the local one `scripts/test` starts), made and dropped with `psql`.
pub struct PgDatabase {
    admin: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub fn new(purpose: &str) -> PgDatabase {
        let admin = std::env::var("STRONGROOM_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let name = format!("strongroom_{purpose}_{}", std::process::id());
        psql(&admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        psql(&admin, &format!("CREATE DATABASE {name}"));
        let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
        PgDatabase { admin, name, url }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        psql(&self.admin, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

pub fn psql(url: &str, sql: &str) {
    let out = Command::new("psql").args([url, "-v", "ON_ERROR_STOP=1", "-qc", sql]).output();
    let out = out.expect("psql (package postgresql-client) is needed");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A GET over plain HTTP/1.1 to 127.0.0.1:`port`: status and body.
pub fn plain_http(port: u16, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = Vec::new();
    s.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, response[split + 4..].to_vec())
}

/// Waits (up to 15 s) until the server has rotated `old` (KMIP 2.1 Rotate Automatic):
/// until the Name `name` belongs to one other object, the replacement; then turns its
/// Rotate Automatic off, so it does not rotate in its turn while a test looks at it.
/// Returns the replacement's identifier. The client speaks 2.1.
pub fn rotated(c: &mut Client, name: &str, old: &str) -> String {
    let locate = write_attributes(&[Attribute::new(names::NAME, name_value(name))], c.version);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let new = loop {
        let r = c.ok(Operation::LOCATE, locate.clone());
        let found: Vec<String> =
            r.find_all(Tag::UNIQUE_IDENTIFIER).map(|t| t.as_text().unwrap().to_owned()).collect();
        if found.len() == 1 && found[0] != old {
            break found[0].clone();
        }
        assert!(std::time::Instant::now() < deadline, "not rotated: {found:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let off = Ttlv::new(Tag::ROTATE_AUTOMATIC, Value::Boolean(false));
    c.ok(Operation::SET_ATTRIBUTE, vec![uid(&new), Ttlv::structure(Tag::NEW_ATTRIBUTE, vec![off])]);
    new
}

/// splitmix64: a small deterministic generator, so a seed names a run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// `N` different free TCP ports on 127.0.0.1, for a process the test starts to listen on:
/// each is held until all are picked, as one let go can be handed out again at once.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<std::net::TcpListener> =
        (0..N).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

/// One free TCP port on 127.0.0.1 (see [`free_ports`]).
pub fn free_port() -> u16 {
    let [port] = free_ports();
    port
}

/// Round trips a second of one byte over a loopback TCP connection, echoed by a thread
/// of its own, for `secs` (for benchmarks): what one request at a time costs before any
/// protocol, TLS or work, namely two thread wake-ups and four system calls. A peer figure
/// that bounds a one-request-per-round-trip client on the machine in hand.
pub fn loopback_round_trips(secs: f64) -> f64 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let echo = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_nodelay(true).unwrap();
        let mut b = [0u8; 1];
        while conn.read_exact(&mut b).is_ok() && conn.write_all(&b).is_ok() {}
    });
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let (start, mut n) = (std::time::Instant::now(), 0u64);
    while start.elapsed().as_secs_f64() < secs {
        let mut b = [1u8; 1];
        s.write_all(&b).unwrap();
        s.read_exact(&mut b).unwrap();
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(s);
    echo.join().unwrap();
    rate
}
