//! Unmodified ACME clients against Strongroom's ACME server: certbot and lego (Debian
//! packages) register (certbot with External Account Binding), obtain certificates through
//! http-01 (their own challenge servers on a loopback port), tls-alpn-01 (lego) and dns-01
//! (TXT records set in pebble-challtestsrv, which is also the DNS server Strongroom
//! resolves identifiers with), renew, and revoke. Certificates are checked with
//! `openssl verify -crl_check` against the CA's CRL and with `openssl ocsp` before and
//! after revocation, and one authenticates a KMIP client over mTLS. After a root rotation
//! certbot takes the default chain (through the cross-certificate) or, with
//! `--preferred-chain`, the alternate one that ends at the new root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use kmip::enums::Operation;
use kmip::ProtocolVersion;

/// The two clients' tests take turns: each picks free ports for its challenge servers
/// before the client binds them, and the other test's processes could take one meanwhile.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `N` different ports, each free for UDP and TCP both (the test DNS server takes both):
/// each is held until all are picked, as one let go can be handed out again at once.
fn free_ports<const N: usize>() -> [u16; N] {
    let mut held = Vec::with_capacity(N);
    let mut ports = [0; N];
    for port in &mut ports {
        *port = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            let p = udp.local_addr().unwrap().port();
            if let Ok(tcp) = std::net::TcpListener::bind(("127.0.0.1", p)) {
                held.push((udp, tcp));
                break p;
            }
        };
    }
    ports
}

/// pebble-challtestsrv as a DNS server answering 127.0.0.1 for every name, with a
/// management API that sets TXT records.
struct TestDns {
    child: Child,
    dns: SocketAddr,
    management: SocketAddr,
}

impl TestDns {
    fn start() -> TestDns {
        let [dns, management] = free_ports().map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
        let child = Command::new("pebble-challtestsrv")
            .args(["-dns01", &dns.to_string(), "-management", &management.to_string()])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv6", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble-challtestsrv (Debian package pebble)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(management).is_err() {
            assert!(Instant::now() < deadline, "pebble-challtestsrv did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        TestDns { child, dns, management }
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Strongroom with ACME validation pointed at the test DNS and `http01_port`.
fn start(dir: &Path, dns: &TestDns, ports: (u16, u16), eab_required: bool) -> Server {
    let (http01_port, tls_alpn01_port) = ports;
    let config = dir.join("acme.toml");
    std::fs::write(
        &config,
        format!(
            "[acme]\nhttp01_port = {http01_port}\ntls_alpn01_port = {tls_alpn01_port}\n\
             dns_resolver = \"{}\"\nexternal_account_required = {eab_required}\n",
            dns.dns
        ),
    )
    .unwrap();
    Server::start_with(&dir.join("data"), &["--config", config.to_str().unwrap()])
}

fn directory(server: &Server) -> String {
    format!("https://{}/acme/directory", server.https)
}

fn run(what: &str, cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A hook script for the clients' dns-01 support: sets or clears a TXT record in the test
/// DNS server. `$1` is present|cleanup, `$2` the record name, `$3` the value.
fn txt_hook(dir: &Path, dns: &TestDns) -> PathBuf {
    let path = dir.join("txt-hook.sh");
    let m = dns.management;
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nset -e\ncase \"$1\" in\n\
             present) curl -sf -X POST -d \"{{\\\"host\\\":\\\"$2\\\",\\\"value\\\":\\\"$3\\\"}}\" http://{m}/set-txt ;;\n\
             cleanup) curl -sf -X POST -d \"{{\\\"host\\\":\\\"$2\\\"}}\" http://{m}/clear-txt ;;\n\
             esac\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

/// `openssl verify -crl_check` of the certificate at the head of `chain` (as the ACME client
/// saved it: the certificate, then its issuing intermediate) with the root and the
/// issuer's current CRL: Ok, or the error text.
fn verify_with_crl(server: &Server, data: &Path, chain: &Path) -> Result<(), String> {
    let (status, crl) =
        https_with(server.https, tls_config(data, None), "GET", "/v1/pki/crl/pem", &[], b"");
    assert_eq!(status, 200);
    let bundle = data.join("ca-and-crl.pem");
    let ca = std::fs::read_to_string(data.join("ca.crt")).unwrap();
    std::fs::write(&bundle, format!("{ca}{}", String::from_utf8(crl).unwrap())).unwrap();
    let out = Command::new("openssl")
        .args(["verify", "-crl_check", "-CAfile"])
        .arg(&bundle)
        .arg("-untrusted")
        .arg(chain)
        .arg(chain)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr))
    }
}

/// `openssl ocsp` against the responder: the status word for the certificate at the head
/// of `chain`, whose second certificate is its issuer.
fn ocsp(server: &Server, data: &Path, chain: &Path) -> String {
    let ca = data.join("ca.crt");
    let pem = std::fs::read_to_string(chain).unwrap();
    let end = "-----END CERTIFICATE-----";
    let issuer = pem.split_inclusive(end).nth(1).expect("the chain names the issuer");
    let issuer_path = chain.with_extension("issuer.pem");
    std::fs::write(&issuer_path, issuer.trim_start()).unwrap();
    let out = run(
        "openssl ocsp",
        Command::new("openssl")
            .args(["ocsp", "-issuer"])
            .arg(&issuer_path)
            .arg("-CAfile")
            .arg(&ca)
            .arg("-cert")
            .arg(chain)
            .args(["-url", &format!("https://{}/ocsp", server.https)]),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().next().and_then(|l| l.rsplit(": ").next()).unwrap_or_default().to_owned()
}

fn san(cert: &Path) -> String {
    let out = run(
        "openssl x509",
        Command::new("openssl").args(["x509", "-noout", "-ext", "subjectAltName", "-in"]).arg(cert),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn serial(cert: &Path) -> String {
    let out = run(
        "openssl x509",
        Command::new("openssl").args(["x509", "-noout", "-serial", "-in"]).arg(cert),
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

struct Certbot<'a> {
    dir: PathBuf,
    data: &'a Path,
    server: &'a Server,
}

impl Certbot<'_> {
    fn cmd(&self, sub: &str) -> Command {
        let mut c = Command::new("certbot");
        c.arg(sub)
            .args(["--non-interactive", "--server", &directory(self.server)])
            .arg("--config-dir")
            .arg(self.dir.join("config"))
            .arg("--work-dir")
            .arg(self.dir.join("work"))
            .arg("--logs-dir")
            .arg(self.dir.join("logs"))
            .env("REQUESTS_CA_BUNDLE", self.data.join("ca.crt"));
        c
    }

    fn live(&self, name: &str, file: &str) -> PathBuf {
        self.dir.join("config/live").join(name).join(file)
    }
}

#[test]
fn certbot_obtains_renews_and_revokes_certificates_for_mtls() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = temp_dir("strongroom-acme-certbot");
    let dns = TestDns::start();
    let [http01, tls_alpn01] = free_ports();
    let server = start(&dir, &dns, (http01, tls_alpn01), true);
    let data = dir.join("data");
    // This server requires External Account Binding: an administrator makes the key.
    let eab = Api::admin(&server).ok("POST", "/v1/acme/eab", serde_json::json!(null));
    let (eab_kid, eab_key) = (
        eab["data"]["id"].as_str().unwrap().to_owned(),
        eab["data"]["key"].as_str().unwrap().to_owned(),
    );
    let certbot = Certbot { dir: dir.join("certbot"), data: &data, server: &server };

    // http-01: certbot's standalone server answers on the loopback port Strongroom checks.
    let name = "payments.svc.test";
    run(
        "certbot certonly (http-01)",
        certbot
            .cmd("certonly")
            .args(["--standalone", "--agree-tos", "--email", "ops@example.com"])
            // One argument each: a base64url key may start with '-', which argparse would
            // take for an option.
            .arg(format!("--eab-kid={eab_kid}"))
            .arg(format!("--eab-hmac-key={eab_key}"))
            .args(["--http-01-address", "127.0.0.1", "--http-01-port", &http01.to_string()])
            .args(["-d", name]),
    );
    let cert = certbot.live(name, "cert.pem");
    assert!(san(&cert).contains(&format!("DNS:{name}")));
    verify_with_crl(&server, &data, &certbot.live(name, "fullchain.pem")).unwrap();

    // The certificate is a KMIP client certificate: its subject owns what it creates.
    let certs = dir.join("mtls");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(certbot.live(name, "fullchain.pem"), certs.join("payments.crt")).unwrap();
    std::fs::copy(certbot.live(name, "privkey.pem"), certs.join("payments.key")).unwrap();
    let mut c = Client::connect_with(
        server.kmip,
        tls_config_trusting(&data.join("ca.crt"), &certs, Some("payments")),
    );
    let created =
        c.ok(Operation::CREATE, create_payload(ProtocolVersion::V1_4, &aes_attributes(256)));
    let got = c.ok(Operation::GET, vec![uid(&uid_of(&created))]);
    assert_eq!(key_material(&got).len(), 32);

    // Renewal gives a new certificate (new serial) for the same name.
    let before = serial(&cert);
    // Without a terminal certbot sleeps up to 8 minutes before renewing, unless told not to.
    run(
        "certbot renew",
        certbot.cmd("renew").args(["--force-renewal", "--no-random-sleep-on-renew"]),
    );
    let renewed = certbot.live(name, "cert.pem");
    let renewed_chain = certbot.live(name, "fullchain.pem");
    assert_ne!(serial(&renewed), before, "renewal must issue a new certificate");
    verify_with_crl(&server, &data, &renewed_chain).unwrap();
    assert_eq!(ocsp(&server, &data, &renewed_chain), "good");

    // dns-01 for a wildcard, through certbot's manual hooks and the test DNS server.
    let hook = txt_hook(&dir, &dns);
    let auth =
        format!("{} present _acme-challenge.$CERTBOT_DOMAIN. $CERTBOT_VALIDATION", hook.display());
    let cleanup = format!("{} cleanup _acme-challenge.$CERTBOT_DOMAIN.", hook.display());
    run(
        "certbot certonly (dns-01)",
        certbot
            .cmd("certonly")
            .args(["--manual", "--preferred-challenges", "dns", "--agree-tos"])
            .args(["--manual-auth-hook", &auth, "--manual-cleanup-hook", &cleanup])
            .args(["--cert-name", "wild", "-d", "*.apps.svc.test"]),
    );
    assert!(san(&certbot.live("wild", "cert.pem")).contains("DNS:*.apps.svc.test"));

    // Revocation by the account: the CRL lists it and openssl rejects it.
    run(
        "certbot revoke",
        certbot.cmd("revoke").arg("--cert-path").arg(&renewed).args([
            "--reason",
            "keycompromise",
            "--no-delete-after-revoke",
        ]),
    );
    let err = verify_with_crl(&server, &data, &renewed_chain).unwrap_err();
    assert!(err.contains("certificate revoked"), "{err}");
    assert_eq!(ocsp(&server, &data, &renewed_chain), "revoked");
    verify_with_crl(&server, &data, &certbot.live("wild", "fullchain.pem")).unwrap();

    // Root rotation: the default chain reaches DATA/ca.crt through the cross-certificate;
    // certbot's --preferred-chain takes the alternate one (Link rel="alternate") that ends
    // at the new root, named by its common name.
    let rotated = Api::admin(&server).ok("POST", "/v1/pki/root/rotate", serde_json::Value::Null);
    let root_pem = rotated["data"]["root"]["certificate"].as_str().unwrap().to_owned();
    std::fs::write(data.join("new-root.pem"), &root_pem).unwrap();
    let (_, root) = x509_parser::pem::parse_x509_pem(root_pem.as_bytes()).unwrap();
    let root = root.parse_x509().unwrap();
    let root_cn = root.subject().iter_common_name().next().unwrap().as_str().unwrap().to_owned();
    let http01 = http01.to_string();
    let obtain = |name: &str, preferred: Option<&str>| {
        let mut cmd = certbot.cmd("certonly");
        cmd.args(["--standalone", "--http-01-address", "127.0.0.1", "--http-01-port", &http01])
            .args(["-d", name]);
        if let Some(cn) = preferred {
            cmd.args(["--preferred-chain", cn]);
        }
        run("certbot certonly (after root rotation)", &mut cmd);
        let chain = std::fs::read_to_string(certbot.live(name, "chain.pem")).unwrap();
        chain.matches("BEGIN CERTIFICATE").count()
    };
    assert_eq!(obtain("cross.svc.test", None), 2, "intermediate and cross-certificate");
    verify_with_crl(&server, &data, &certbot.live("cross.svc.test", "fullchain.pem")).unwrap();
    assert_eq!(obtain("direct.svc.test", Some(&root_cn)), 1, "the intermediate alone");
    run(
        "openssl verify (new root)",
        Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(data.join("new-root.pem"))
            .arg("-untrusted")
            .arg(certbot.live("direct.svc.test", "chain.pem"))
            .arg(certbot.live("direct.svc.test", "cert.pem"))
            .current_dir(&data),
    );
    server.stop();
}

#[test]
fn lego_obtains_and_revokes_over_http01_tls_alpn01_and_dns01() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = temp_dir("strongroom-acme-lego");
    let dns = TestDns::start();
    let [http01, tls_alpn01] = free_ports();
    let server = start(&dir, &dns, (http01, tls_alpn01), false);
    let data = dir.join("data");
    let lego = |args: &[&str]| {
        let mut c = Command::new("lego");
        c.args(["--server", &directory(&server), "--accept-tos", "--email", "ops@example.com"])
            .arg("--path")
            .arg(dir.join("lego"))
            .args(args)
            .env("LEGO_CA_CERTIFICATES", data.join("ca.crt"))
            .env("EXEC_PATH", txt_hook(&dir, &dns))
            .env("EXEC_PROPAGATION_TIMEOUT", "20");
        c
    };
    let certs = dir.join("lego/certificates");

    run(
        "lego run (http-01)",
        lego(&["--domains", "db.svc.test", "--http", "--http.port"])
            .arg(format!("127.0.0.1:{http01}"))
            .arg("run"),
    );
    // lego's .crt holds the certificate and the issuer the server sent with it.
    let cert = certs.join("db.svc.test.crt");
    assert!(san(&cert).contains("DNS:db.svc.test"));
    verify_with_crl(&server, &data, &cert).unwrap();
    assert_eq!(ocsp(&server, &data, &cert), "good");

    // tls-alpn-01 (RFC 8737): lego answers the TLS handshake on the port Strongroom checks.
    run(
        "lego run (tls-alpn-01)",
        lego(&["--domains", "grpc.svc.test", "--tls", "--tls.port"])
            .arg(format!("127.0.0.1:{tls_alpn01}"))
            .arg("run"),
    );
    assert!(san(&certs.join("grpc.svc.test.crt")).contains("DNS:grpc.svc.test"));

    let resolvers = dns.dns.to_string();
    run(
        "lego run (dns-01)",
        &mut lego(&[
            "--domains",
            "*.jobs.svc.test",
            "--dns",
            "exec",
            "--dns.resolvers",
            &resolvers,
            "--dns.disable-cp",
            "run",
        ]),
    );
    assert!(san(&certs.join("_.jobs.svc.test.crt")).contains("DNS:*.jobs.svc.test"));

    // lego archives what it revokes: keep a copy to check.
    let kept = dir.join("revoked.crt");
    std::fs::copy(&cert, &kept).unwrap();
    run("lego revoke", &mut lego(&["--domains", "db.svc.test", "revoke"]));
    let cert = kept;
    let err = verify_with_crl(&server, &data, &cert).unwrap_err();
    assert!(err.contains("certificate revoked"), "{err}");
    server.stop();
}
