//! Short-lived certificates by API: roles, issuance (key generated here) and signing of a
//! CSR (openssl's), checked with openssl against the root through the issuing
//! intermediate; the certificate works as a KMIP client certificate; revoking its lease
//! revokes it and the CRL (signed in the HSM) lists it, and the OCSP responder answers
//! good, then revoked, for `openssl ocsp`. CA rotation: a new intermediate issues while
//! the old one's certificates stay valid, revocable, on its own CRL and OCSP. Revocation
//! pointers in certificates, followed by openssl over the plain-HTTP listener.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{client_cert, free_port, plain_http, temp_dir, tls_config, Api, Client, Server};
use kmip::enums::Operation;
use serde_json::json;

/// `openssl ocsp` against Strongroom's responder for `cert`, issued by the CA certificate
/// in `issuer`; returns its status line.
fn ocsp_status(
    server: &Server,
    dir: &std::path::Path,
    issuer: &std::path::Path,
    cert: &std::path::Path,
) -> String {
    let url = format!("https://{}/ocsp", server.https);
    let ca = dir.join("ca.crt");
    let out = openssl(&[
        "ocsp",
        "-issuer",
        issuer.to_str().unwrap(),
        "-CAfile",
        ca.to_str().unwrap(),
        "-cert",
        cert.to_str().unwrap(),
        "-url",
        &url,
    ]);
    out.lines().find(|l| l.starts_with(cert.to_str().unwrap())).unwrap_or(&out).to_owned()
}

/// A CSR for CN=db.svc.internal from `openssl req`, for a new EC key on `curve` written to
/// `key`, signed with SHA-256 whatever the curve.
fn openssl_ec_csr(curve: &str, key: &std::path::Path, csr: &std::path::Path) {
    let curve = format!("ec_paramgen_curve:{curve}");
    let (key, csr) = (key.to_str().unwrap(), csr.to_str().unwrap());
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        &curve,
        "-nodes",
        "-keyout",
        key,
        "-out",
        csr,
        "-subj",
        "/CN=db.svc.internal",
        "-sha256",
    ]);
}

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().expect("openssl (apt install openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn issue_sign_revoke_and_crl() {
    let dir = temp_dir("strongroom-api-pki");
    let server = Server::start(&dir);
    let api = Api::admin(&server);
    api.ok(
        "POST",
        "/v1/pki/roles/svc",
        json!({ "allowed_domains": ["svc.internal"], "allow_subdomains": true, "ttl": "1h", "max_ttl": "24h",
                "allowed_uri_sans": ["spiffe://strongroom.test/*"] }),
    );
    let (status, body) = api.call("POST", "/v1/pki/roles/bad", json!({ "key_type": "dsa" }));
    assert_eq!(status, 400, "{body}");

    // As in Vault, the allowed domain itself only with allow_bare_domains.
    let bare = json!({ "common_name": "svc.internal" });
    assert_eq!(api.call("POST", "/v1/pki/issue/svc", bare.clone()).0, 400);
    let issued = api.ok(
        "POST",
        "/v1/pki/issue/svc",
        json!({ "common_name": "payments.svc.internal", "uri_sans": "spiffe://strongroom.test/payments" }),
    );
    let data = &issued["data"];
    let lease = issued["lease_id"].as_str().unwrap().to_owned();
    assert!(lease.starts_with("pki/issue/svc/"), "{lease}");
    let certs = temp_dir("strongroom-api-pki-out");
    std::fs::write(certs.join("payments.crt"), data["certificate"].as_str().unwrap()).unwrap();
    std::fs::write(certs.join("payments.key"), data["private_key"].as_str().unwrap()).unwrap();
    std::fs::copy(dir.join("ca.crt"), certs.join("ca.crt")).unwrap();
    let crt = certs.join("payments.crt");
    // Issued by the intermediate; the chain ends at the root, DATA/ca.crt.
    let chain = data["ca_chain"].as_array().unwrap();
    assert_eq!(chain.len(), 2, "{data}");
    assert_eq!(chain[0], data["issuing_ca"]);
    assert_eq!(chain[1].as_str().unwrap(), std::fs::read_to_string(dir.join("ca.crt")).unwrap());
    let issuing = certs.join("issuing.crt");
    std::fs::write(&issuing, data["issuing_ca"].as_str().unwrap()).unwrap();
    verify(&dir, &issuing, &crt);
    let alone = Command::new("openssl")
        .args(["verify", "-CAfile", dir.join("ca.crt").to_str().unwrap()])
        .arg(&crt)
        .output()
        .unwrap();
    assert!(!alone.status.success(), "the leaf does not verify without its intermediate");
    let text = openssl(&["x509", "-in", crt.to_str().unwrap(), "-noout", "-text"]);
    assert!(text.contains("DNS:payments.svc.internal"), "{text}");
    assert!(text.contains("URI:spiffe://strongroom.test/payments"), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");

    // The OCSP responder (signed in the HSM, with openssl's nonce echoed) says good.
    let status = ocsp_status(&server, &dir, &issuing, &crt);
    assert!(status.ends_with(": good"), "{status}");

    // The certificate (alone in its file: the server supplies the intermediate) is a
    // working mTLS client identity for KMIP.
    let mut kmip = Client::connect_with(server.kmip, tls_config(&certs, Some("payments")));
    let item = kmip.call(Operation::DISCOVER_VERSIONS, vec![]);
    assert_eq!(item.result_status, kmip::enums::ResultStatus::SUCCESS);
    drop(kmip);

    // Names outside the role are refused.
    let (status, body) =
        api.call("POST", "/v1/pki/issue/svc", json!({ "common_name": "evil.example" }));
    assert_eq!(status, 400, "{body}");

    // Signing a CSR made by openssl keeps its key.
    let key = certs.join("db.key");
    let csr = certs.join("db.csr");
    openssl_ec_csr("P-256", &key, &csr);
    let signed = api.ok(
        "POST",
        "/v1/pki/sign/svc",
        json!({ "common_name": "db.svc.internal", "csr": std::fs::read_to_string(&csr).unwrap(), "ttl": "15m" }),
    );
    assert!(signed["data"]["private_key"].is_null());
    let db_crt = certs.join("db.crt");
    std::fs::write(&db_crt, signed["data"]["certificate"].as_str().unwrap()).unwrap();
    let pub_of = |args: &[&str]| openssl(args);
    assert_eq!(
        pub_of(&["x509", "-in", db_crt.to_str().unwrap(), "-noout", "-pubkey"]),
        pub_of(&["pkey", "-in", key.to_str().unwrap(), "-pubout"]),
    );
    let (status, _) = api.call(
        "POST",
        "/v1/pki/sign/svc",
        json!({ "common_name": "db.svc.internal", "csr": "garbage" }),
    );
    assert_eq!(status, 400);
    // The role's key type binds a CSR's key: a P-384 key signed with SHA-256 (openssl's
    // default) is neither certified nor relabelled as P-256.
    let p384 = certs.join("p384.csr");
    openssl_ec_csr("P-384", &certs.join("p384.key"), &p384);
    let (status, body) = api.call(
        "POST",
        "/v1/pki/sign/svc",
        json!({ "common_name": "db.svc.internal", "csr": std::fs::read_to_string(&p384).unwrap() }),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("p384"), "{body}");
    // Names that are not ASCII are refused (not a dropped connection), as are common
    // names too long for X.509.
    for (cn, alt) in
        [("db.svc.internal", "aévc.internal"), (&*format!("{}.svc.internal", "a".repeat(60)), "")]
    {
        let (status, body) =
            api.call("POST", "/v1/pki/issue/svc", json!({ "common_name": cn, "alt_names": alt }));
        assert_eq!(status, 400, "{body}");
    }

    // Revoking the lease revokes the certificate; the CRL, public as a CA's is, lists it.
    api.ok("POST", "/v1/sys/leases/revoke", json!({ "lease_id": lease }));
    let serial = data["serial_number"].as_str().unwrap();
    let cert = api.ok("GET", &format!("/v1/pki/cert/{serial}"), json!(null));
    assert!(cert["data"]["revocation_time"].as_i64().unwrap() > 0, "{cert}");
    let (status, crl) = common::https_with(
        server.https,
        tls_config(&dir, None),
        "GET",
        "/v1/pki/crl/pem",
        &[],
        b"",
    );
    assert_eq!(status, 200);
    assert!(crl_lists(&dir, &issuing, &crl, serial), "{}", String::from_utf8_lossy(&crl));
    assert!(verify_with_crl(&dir, &issuing, &crt, &crl).is_err(), "the CRL revokes it");
    // OCSP says revoked, over POST and over GET (RFC 6960 Appendix A.1).
    assert!(ocsp_status(&server, &dir, &issuing, &crt).ends_with(": revoked"));
    // And the certificate no longer opens a KMIP connection (checked at each handshake),
    // which the audit trail records as denied.
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut kmip = Client::connect_with(server.kmip, tls_config(&certs, Some("payments")));
        kmip.call(Operation::DISCOVER_VERSIONS, vec![]).result_status
    }));
    assert!(refused.is_err(), "a revoked client certificate is refused");
    // Audit records are committed in batches: wait for it a little.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let denied = api.ok("GET", "/v1/sys/audit?outcome=denied&limit=100", json!(null));
        let events = denied["data"]["events"].as_array().unwrap().clone();
        if events.iter().any(|e| e["operation"] == "connect") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no denied connect audited: {denied}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let ca = dir.join("ca.crt");
    let req = certs.join("req.der");
    openssl(&[
        "ocsp",
        "-issuer",
        issuing.to_str().unwrap(),
        "-cert",
        crt.to_str().unwrap(),
        "-no_nonce",
        "-reqout",
        req.to_str().unwrap(),
    ]);
    let b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        std::fs::read(&req).unwrap(),
    );
    let path = format!("/ocsp/{}", b64.replace('/', "%2F").replace('+', "%2B").replace('=', "%3D"));
    let (status, resp) =
        common::https_with(server.https, tls_config(&dir, None), "GET", &path, &[], b"");
    assert_eq!(status, 200);
    let resp_path = certs.join("resp.der");
    std::fs::write(&resp_path, resp).unwrap();
    let text = openssl(&[
        "ocsp",
        "-respin",
        resp_path.to_str().unwrap(),
        "-issuer",
        issuing.to_str().unwrap(),
        "-CAfile",
        ca.to_str().unwrap(),
        "-cert",
        crt.to_str().unwrap(),
    ]);
    assert!(text.contains(": revoked"), "{text}");
    // `strongroom client-cert`'s certificates are on record too; a request about another
    // issuer's certificates is unauthorized (RFC 6960 §2.3), unsigned; and garbage gets a
    // malformedRequest answer, not an error page.
    let other = client_cert(&dir, "someone");
    let status = ocsp_status(&server, &dir, &issuing, &other.join("someone.crt"));
    assert!(status.ends_with(": good"), "{status}");
    let request = dir.join("foreign.ocsp");
    let someone = other.join("someone.crt");
    openssl(
        &["ocsp", "-issuer", someone.to_str().unwrap(), "-cert", someone.to_str().unwrap()]
            .iter()
            .chain(&["-no_nonce", "-reqout", request.to_str().unwrap()])
            .copied()
            .collect::<Vec<_>>(),
    );
    let post_ocsp = |body: &[u8]| {
        let content_type = [("Content-Type", "application/ocsp-request")];
        common::https_with(
            server.https,
            tls_config(&dir, None),
            "POST",
            "/ocsp",
            &content_type,
            body,
        )
    };
    let unauthorized = post_ocsp(&std::fs::read(&request).unwrap());
    assert_eq!(unauthorized, (200, vec![0x30, 0x03, 0x0A, 0x01, 0x06]));
    assert_eq!(post_ocsp(b"garbage"), (200, vec![0x30, 0x03, 0x0A, 0x01, 0x01]));
    let (status, _) =
        common::https_with(server.https, tls_config(&dir, None), "GET", "/v1/pki/ca/pem", &[], b"");
    assert_eq!(status, 200);
    server.stop();
}

/// `openssl verify` of `cert` against the root in `dir`, through `issuing`.
fn verify(dir: &std::path::Path, issuing: &std::path::Path, cert: &std::path::Path) {
    let ca = dir.join("ca.crt");
    openssl(&[
        "verify",
        "-CAfile",
        ca.to_str().unwrap(),
        "-untrusted",
        issuing.to_str().unwrap(),
        cert.to_str().unwrap(),
    ]);
}

/// `openssl verify -crl_check` of `cert` with `crl` (PEM); the error text when it fails.
fn verify_with_crl(
    dir: &std::path::Path,
    issuing: &std::path::Path,
    cert: &std::path::Path,
    crl: &[u8],
) -> Result<(), String> {
    let crl_path = cert.with_extension("crl.pem");
    std::fs::write(&crl_path, crl).unwrap();
    let out = Command::new("openssl")
        .args(["verify", "-crl_check", "-CAfile"])
        .arg(dir.join("ca.crt"))
        .arg("-untrusted")
        .arg(issuing)
        .arg("-CRLfile")
        .arg(&crl_path)
        .arg(cert)
        .output()
        .unwrap();
    match out.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout)),
    }
}

/// Whether `crl` (PEM), whose signature openssl checks with `issuing`'s key, lists `serial`.
fn crl_lists(dir: &std::path::Path, issuing: &std::path::Path, crl: &[u8], serial: &str) -> bool {
    let crl_path = dir.join("check.crl.pem");
    std::fs::write(&crl_path, crl).unwrap();
    let text = openssl(&[
        "crl",
        "-in",
        crl_path.to_str().unwrap(),
        "-CAfile",
        issuing.to_str().unwrap(),
        "-noout",
        "-text",
    ]);
    text.to_lowercase().contains(&format!("serial number: {serial}"))
}

/// A server on `dir` started with `config` (TOML) if any, and its admin API with a role
/// `svc` for names under svc.internal.
fn start_with_role(dir: &std::path::Path, config: Option<&str>) -> (Server, Api) {
    let server = match config {
        Some(text) => {
            let path = dir.join("test.toml");
            std::fs::write(&path, text).unwrap();
            Server::start_with(dir, &["--config", path.to_str().unwrap()])
        }
        None => Server::start(dir),
    };
    let api = Api::admin(&server);
    api.ok(
        "POST",
        "/v1/pki/roles/svc",
        json!({ "allowed_domains": ["svc.internal"], "allow_subdomains": true }),
    );
    (server, api)
}

/// Issues NAME.svc.internal under `svc` and writes NAME.crt, NAME.key (KMIP client
/// identity files) and NAME-issuer.crt into `out`; returns the answer's `data`.
fn issue_into(api: &Api, out: &std::path::Path, name: &str) -> serde_json::Value {
    let data = api.ok(
        "POST",
        "/v1/pki/issue/svc",
        json!({ "common_name": format!("{name}.svc.internal") }),
    )["data"]
        .clone();
    for (file, field) in
        [("crt", "certificate"), ("key", "private_key"), ("-issuer.crt", "issuing_ca")]
    {
        let file =
            if file.starts_with('-') { format!("{name}{file}") } else { format!("{name}.{file}") };
        std::fs::write(out.join(file), data[field].as_str().unwrap()).unwrap();
    }
    data
}

fn get(server: &Server, dir: &std::path::Path, path: &str) -> Vec<u8> {
    let (status, body) =
        common::https_with(server.https, tls_config(dir, None), "GET", path, &[], b"");
    assert_eq!(status, 200, "GET {path}: {}", String::from_utf8_lossy(&body));
    body
}

#[test]
fn ca_rotation_keeps_old_certificates_valid_and_revocable() {
    let dir = temp_dir("strongroom-ca-rotation");
    let (server, api) = start_with_role(&dir, None);
    let out = temp_dir("strongroom-ca-rotation-out");
    std::fs::copy(dir.join("ca.crt"), out.join("ca.crt")).unwrap();
    let files =
        |name: &str| (out.join(format!("{name}.crt")), out.join(format!("{name}-issuer.crt")));

    let issuers = api.ok("GET", "/v1/pki/issuers", json!(null));
    let ids: Vec<String> = serde_json::from_value(issuers["data"]["keys"].clone()).unwrap();
    assert_eq!(ids.len(), 2, "the root and one intermediate: {issuers}");
    assert_eq!(ids[0], "root");
    let first = ids[1].clone();
    assert_eq!(issuers["data"]["key_info"][&first]["default"], true);
    let old = issue_into(&api, &out, "old");
    // Another leaf of the first intermediate, not revoked itself (see below).
    issue_into(&api, &out, "sibling");
    let old_serial = old["serial_number"].as_str().unwrap().to_owned();
    let (old_crt, old_issuer) = files("old");

    // Rotation: a new intermediate, signed by the same root, issues from now on.
    let rotated = api.ok("POST", "/v1/pki/intermediate/rotate", json!(null));
    let second = rotated["data"]["issuer_id"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(rotated["data"]["default"], true);
    let new = issue_into(&api, &out, "new");
    let (new_crt, new_issuer) = files("new");
    assert_ne!(new["issuing_ca"], old["issuing_ca"]);
    assert_eq!(
        String::from_utf8(get(&server, &dir, &format!("/v1/pki/issuer/{second}/pem"))).unwrap(),
        new["issuing_ca"].as_str().unwrap()
    );
    verify(&dir, &new_issuer, &new_crt);
    verify(&dir, &old_issuer, &old_crt);
    let chain = String::from_utf8(get(&server, &dir, "/v1/pki/ca_chain")).unwrap();
    assert!(chain.starts_with(new["issuing_ca"].as_str().unwrap()), "{chain}");

    // Both work as KMIP client certificates on listeners started before the rotation.
    for name in ["old", "new"] {
        let mut kmip = Client::connect_with(server.kmip, tls_config(&out, Some(name)));
        let item = kmip.call(Operation::DISCOVER_VERSIONS, vec![]);
        assert_eq!(item.result_status, kmip::enums::ResultStatus::SUCCESS, "{name}");
    }

    // The old certificate is revoked on its own issuer's CRL and OCSP, not on the new one's.
    api.ok("POST", "/v1/pki/revoke", json!({ "serial_number": old_serial }));
    let old_crl = get(&server, &dir, &format!("/v1/pki/issuer/{first}/crl/pem"));
    assert!(crl_lists(&out, &old_issuer, &old_crl, &old_serial));
    let err = verify_with_crl(&dir, &old_issuer, &old_crt, &old_crl).unwrap_err();
    assert!(err.contains("revoked"), "{err}");
    let default_crl = get(&server, &dir, "/v1/pki/crl/pem");
    assert!(!crl_lists(&out, &new_issuer, &default_crl, &old_serial));
    verify_with_crl(&dir, &new_issuer, &new_crt, &default_crl).unwrap();
    assert!(ocsp_status(&server, &dir, &old_issuer, &old_crt).ends_with(": revoked"));
    assert!(ocsp_status(&server, &dir, &new_issuer, &new_crt).ends_with(": good"));
    let (status, _) = common::https_with(
        server.https,
        tls_config(&dir, None),
        "GET",
        "/v1/pki/issuer/nosuch/crl",
        &[],
        b"",
    );
    assert_eq!(status, 404);
    // Only a caller whose policy allows it may rotate.
    let token = api.ok("POST", "/v1/auth/token/create", json!({ "policies": ["default"] }))["auth"]
        ["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) =
        api.with_token(&token).call("POST", "/v1/pki/intermediate/rotate", json!(null));
    assert_eq!(status, 403);

    // Revoking the old intermediate (not the default one, not a root): the root's CRL lists
    // it, `openssl verify -crl_check_all` refuses what it issued, and its client
    // certificates no longer authenticate, with or without the intermediate in the chain.
    let handshake_with = |config: std::sync::Arc<rustls::ClientConfig>| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let mut kmip = Client::connect_with(server.kmip, config);
            kmip.call(Operation::DISCOVER_VERSIONS, vec![]).result_status
        }))
        .is_ok()
    };
    // A client resuming its TLS session skips the handshake's checks: it is refused too.
    let resuming = tls_config(&out, Some("sibling"));
    assert!(handshake_with(resuming.clone()), "before the revocation");
    for (id, why) in [(second.as_str(), "the default issuer"), ("root", "a root")] {
        let (status, body) = api.call("POST", &format!("/v1/pki/issuer/{id}/revoke"), json!(null));
        assert_eq!(status, 400, "{why}: {body}");
    }
    let revoked = api.ok("POST", &format!("/v1/pki/issuer/{first}/revoke"), json!({ "reason": 1 }));
    assert_eq!(revoked["data"]["revoked"], true);
    let (status, _) = api.call("POST", &format!("/v1/pki/issuer/{first}/revoke"), json!(null));
    assert_eq!(status, 400, "once");
    let (_, parsed) =
        x509_parser::pem::parse_x509_pem(old["issuing_ca"].as_str().unwrap().as_bytes()).unwrap();
    let first_serial = hex::encode(parsed.parse_x509().unwrap().raw_serial());
    let root_crl = get(&server, &dir, "/v1/pki/issuer/root/crl/pem");
    assert!(crl_lists(&out, &dir.join("ca.crt"), &root_crl, &first_serial));
    let crls = out.join("both.crl.pem");
    std::fs::write(&crls, [root_crl, old_crl.clone()].concat()).unwrap();
    let old_all = Command::new("openssl")
        .args(["verify", "-crl_check_all", "-CAfile"])
        .arg(dir.join("ca.crt"))
        .arg("-CRLfile")
        .arg(&crls)
        .arg("-untrusted")
        .arg(&old_issuer)
        .arg(&old_crt)
        .output()
        .unwrap();
    assert!(!old_all.status.success());
    let text = String::from_utf8_lossy(&old_all.stderr).to_string()
        + &String::from_utf8_lossy(&old_all.stdout);
    assert!(text.contains("revoked"), "{text}");
    let fresh = issue_into(&api, &out, "fresh");
    assert_eq!(fresh["issuing_ca"], new["issuing_ca"], "the default issuer goes on");
    assert!(handshake_with(tls_config(&out, Some("fresh"))), "under the live intermediate");
    assert!(!handshake_with(tls_config(&out, Some("old"))), "the old leaf alone");
    assert!(!handshake_with(resuming), "a leaf of the revoked intermediate, resuming");
    // The old leaf with the revoked intermediate in the chain it sends.
    use rustls::pki_types::pem::PemObject;
    let chain = vec![
        rustls::pki_types::CertificateDer::from_pem_file(&old_crt).unwrap(),
        rustls::pki_types::CertificateDer::from_pem_file(&old_issuer).unwrap(),
    ];
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(out.join("old.key")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_file(dir.join("ca.crt")).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    assert!(!handshake_with(std::sync::Arc::new(config)), "with the revoked intermediate");
    server.stop();

    // After a restart the newest intermediate still issues and the old one still answers.
    let server = Server::start(&dir);
    let api = Api::admin(&server);
    let issuers = api.ok("GET", "/v1/pki/issuers", json!(null));
    assert_eq!(issuers["data"]["keys"], json!(["root", first, second]));
    assert_eq!(issuers["data"]["key_info"][&second]["default"], true);
    let again = api.ok("POST", "/v1/pki/issue/svc", json!({ "common_name": "x.svc.internal" }));
    assert_eq!(again["data"]["issuing_ca"], new["issuing_ca"]);
    assert!(ocsp_status(&server, &dir, &old_issuer, &old_crt).ends_with(": revoked"));
    server.stop();
}

/// With `[ca] http_listen` and `[ca] url`, certificates name their issuer's CRL and the
/// OCSP responder, served over plain HTTP: `openssl verify -crl_download` fetches the CRL
/// from the certificate's distribution point and `openssl ocsp` asks the URL the
/// certificate names, before and after revocation.
#[test]
fn revocation_pointers_over_plain_http() {
    let dir = temp_dir("strongroom-pki-http");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = format!("[ca]\nhttp_listen = \"127.0.0.1:{port}\"\nurl = \"{base}/\"\n");
    let (server, api) = start_with_role(&dir, Some(&config));
    let out = temp_dir("strongroom-pki-http-out");
    let data = issue_into(&api, &out, "a");
    let (crt, issuing) = (out.join("a.crt"), out.join("a-issuer.crt"));
    std::fs::write(&issuing, data["issuing_ca"].as_str().unwrap()).unwrap();

    let ocsp_uri = openssl(&["x509", "-in", crt.to_str().unwrap(), "-noout", "-ocsp_uri"]);
    assert_eq!(ocsp_uri.trim(), format!("{base}/ocsp"));
    let text = openssl(&["x509", "-in", crt.to_str().unwrap(), "-noout", "-text"]);
    let issuer_id = api.ok("GET", "/v1/pki/issuer/default", json!(null))["data"]["issuer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains(&format!("URI:{base}/v1/pki/issuer/{issuer_id}/crl")), "{text}");
    assert!(
        text.contains(&format!("CA Issuers - URI:{base}/v1/pki/issuer/{issuer_id}/der")),
        "{text}"
    );
    // Freshest CRL names the delta CRL, which the plain-HTTP listener serves.
    let delta_url = format!("{base}/v1/pki/issuer/{issuer_id}/crl/delta");
    let at = text.find("X509v3 Freshest CRL").unwrap_or_else(|| panic!("{text}"));
    assert!(text[at..].contains(&format!("URI:{delta_url}")), "{text}");
    let delta = dir.join("delta.crl");
    std::fs::write(&delta, http_get(port, &format!("/v1/pki/issuer/{issuer_id}/crl/delta")))
        .unwrap();
    let delta_text =
        openssl(&["crl", "-inform", "DER", "-in", delta.to_str().unwrap(), "-noout", "-text"]);
    assert!(delta_text.contains("Delta CRL Indicator: critical"), "{delta_text}");
    // The full CRL names the delta too.
    let full = dir.join("full.crl");
    std::fs::write(&full, http_get(port, &format!("/v1/pki/issuer/{issuer_id}/crl"))).unwrap();
    let full_text =
        openssl(&["crl", "-inform", "DER", "-in", full.to_str().unwrap(), "-noout", "-text"]);
    let at = full_text.find("X509v3 Freshest CRL").unwrap_or_else(|| panic!("{full_text}"));
    assert!(full_text[at..].contains(&format!("URI:{delta_url}")), "{full_text}");

    // The caIssuers URL serves the issuing certificate (DER) over plain HTTP.
    let der = http_get(port, &format!("/v1/pki/issuer/{issuer_id}/der"));
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(data["issuing_ca"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(der, pem.contents);

    let verify = || {
        Command::new("openssl")
            .args(["verify", "-crl_check", "-crl_download", "-CAfile"])
            .arg(dir.join("ca.crt"))
            .arg("-untrusted")
            .arg(&issuing)
            .arg(&crt)
            .output()
            .unwrap()
    };
    let ok = verify();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let ocsp = || {
        let out = openssl(&[
            "ocsp",
            "-issuer",
            issuing.to_str().unwrap(),
            "-CAfile",
            dir.join("ca.crt").to_str().unwrap(),
            "-cert",
            crt.to_str().unwrap(),
            "-url",
            ocsp_uri.trim(),
        ]);
        out.lines().next().unwrap_or_default().rsplit(": ").next().unwrap_or_default().to_owned()
    };
    assert_eq!(ocsp(), "good");

    api.ok("POST", "/v1/pki/revoke", json!({ "serial_number": data["serial_number"] }));
    let revoked = verify();
    assert!(!revoked.status.success());
    assert!(
        String::from_utf8_lossy(&revoked.stderr).contains("revoked")
            || String::from_utf8_lossy(&revoked.stdout).contains("revoked")
    );
    assert_eq!(ocsp(), "revoked");
    // Nothing else is on the plain listener.
    let (status, _) = plain_http(port, "/v1/sys/status");
    assert_eq!(status, 404);
    server.stop();
}

fn http_get(port: u16, path: &str) -> Vec<u8> {
    let (status, body) = plain_http(port, path);
    assert_eq!(status, 200, "GET {path}");
    body
}

/// `[ca] key_type = "p384"`: root and intermediate are P-384 keys in the HSM signing with
/// ECDSA-SHA384; their certificates verify, work for KMIP mTLS, and OCSP answers verify.
#[test]
fn p384_hierarchy() {
    let dir = temp_dir("strongroom-pki-p384");
    let (server, api) = start_with_role(&dir, Some("[ca]\nkey_type = \"p384\"\n"));
    let out = temp_dir("strongroom-pki-p384-out");
    std::fs::copy(dir.join("ca.crt"), out.join("ca.crt")).unwrap();
    issue_into(&api, &out, "a");
    let (crt, issuing) = (out.join("a.crt"), out.join("a-issuer.crt"));
    for (cert, what) in [(dir.join("ca.crt"), "root"), (issuing.clone(), "intermediate")] {
        let text = openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-text"]);
        assert!(text.contains("NIST CURVE: P-384"), "{what}: {text}");
        assert!(text.contains("ecdsa-with-SHA384"), "{what}: {text}");
    }
    verify(&dir, &issuing, &crt);
    let mut kmip = Client::connect_with(server.kmip, tls_config(&out, Some("a")));
    let item = kmip.call(Operation::DISCOVER_VERSIONS, vec![]);
    assert_eq!(item.result_status, kmip::enums::ResultStatus::SUCCESS);
    assert!(ocsp_status(&server, &dir, &issuing, &crt).ends_with(": good"));
    server.stop();
}

/// Root rotation: a new root (key in the HSM) cross-signed by the first, and a new
/// intermediate under it. New certificates chain to `DATA/ca.crt` through the
/// cross-certificate, and to the new root directly; older ones stay valid; clients sending
/// only their certificate still authenticate; a restart loads it all back.
#[test]
fn root_rotation_cross_signs_the_new_root() {
    let dir = temp_dir("strongroom-root-rotation");
    let (server, api) = start_with_role(&dir, None);
    let out = temp_dir("strongroom-root-rotation-out");
    std::fs::copy(dir.join("ca.crt"), out.join("ca.crt")).unwrap();
    let issue = |api: &Api, name: &str| {
        let d = issue_into(api, &out, name);
        let chain: Vec<String> = serde_json::from_value(d["ca_chain"].clone()).unwrap();
        (out.join(format!("{name}.crt")), chain)
    };
    let (old, old_chain) = issue(&api, "old");
    assert_eq!(old_chain.len(), 2, "intermediate and root");

    let rotated = api.ok("POST", "/v1/pki/root/rotate", json!(null))["data"].clone();
    assert_eq!(rotated["root"]["kind"], "root");
    assert_eq!(rotated["intermediate"]["default"], true);
    let new_root = out.join("new-root.crt");
    std::fs::write(&new_root, rotated["root"]["certificate"].as_str().unwrap()).unwrap();
    let (new, chain) = issue(&api, "new");
    assert_eq!(chain.len(), 3, "intermediate, cross-certificate, DATA/ca.crt's root");
    assert_eq!(chain[0], rotated["intermediate"]["certificate"].as_str().unwrap());
    assert_eq!(chain[2], std::fs::read_to_string(dir.join("ca.crt")).unwrap());
    let cross = out.join("cross.crt");
    std::fs::write(&cross, &chain[1]).unwrap();
    let field = |cert: &std::path::Path, what: &str| {
        openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", what]).trim().to_owned()
    };
    let cross_subject = field(&cross, "-subject");
    assert_eq!(cross_subject, field(&new_root, "-subject"), "the new root's name");
    assert_eq!(
        field(&cross, "-issuer").replace("issuer=", ""),
        field(&dir.join("ca.crt"), "-subject").replace("subject=", "")
    );
    assert_eq!(field(&cross, "-pubkey"), field(&new_root, "-pubkey"), "and its key");

    // Through the cross-certificate to the old root, and directly to the new one.
    let untrusted = out.join("new-chain.pem");
    std::fs::write(&untrusted, chain[..2].concat()).unwrap();
    verify(&dir, &untrusted, &new);
    let intermediate = out.join("new-intermediate.pem");
    std::fs::write(&intermediate, &chain[0]).unwrap();
    let direct = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(&new_root)
        .arg("-untrusted")
        .arg(&intermediate)
        .arg(&new)
        .output()
        .unwrap();
    assert!(direct.status.success(), "{}", String::from_utf8_lossy(&direct.stderr));
    let old_intermediate = out.join("old-intermediate.pem");
    std::fs::write(&old_intermediate, &old_chain[0]).unwrap();
    verify(&dir, &old_intermediate, &old);
    assert!(ocsp_status(&server, &dir, &intermediate, &new).ends_with(": good"));
    let issuers = api.ok("GET", "/v1/pki/issuers", json!(null));
    let root_id = rotated["root"]["issuer_id"].as_str().unwrap();
    assert_eq!(issuers["data"]["key_info"][root_id]["kind"], "root", "{issuers}");

    // Certificates alone in their files: the listener supplies the intermediate and the
    // cross-certificate to reach its roots.
    for name in ["old", "new"] {
        let mut kmip = Client::connect_with(server.kmip, tls_config(&out, Some(name)));
        let item = kmip.call(Operation::DISCOVER_VERSIONS, vec![]);
        assert_eq!(item.result_status, kmip::enums::ResultStatus::SUCCESS, "{name}");
    }
    server.stop();

    // After a restart the server's own certificate comes from the new intermediate and
    // still verifies for clients holding only DATA/ca.crt (the API call below).
    let server = Server::start(&dir);
    let api = Api::admin(&server);
    let server_chain = std::fs::read_to_string(dir.join("server.crt")).unwrap();
    assert!(server_chain.contains(chain[1].as_str()), "the server sends the cross-certificate");
    let (_, again) = issue(&api, "again");
    assert_eq!(again, chain);
    let mut kmip = Client::connect_with(server.kmip, tls_config(&out, Some("new")));
    assert_eq!(
        kmip.call(Operation::DISCOVER_VERSIONS, vec![]).result_status,
        kmip::enums::ResultStatus::SUCCESS
    );

    // A second rotation: the chain runs through both cross-certificates to DATA/ca.crt,
    // and verifies (no path length limit on the way).
    api.ok("POST", "/v1/pki/root/rotate", json!(null));
    let (third, chain) = issue(&api, "third");
    assert_eq!(chain.len(), 4, "intermediate, two cross-certificates, DATA/ca.crt's root");
    let untrusted = out.join("third-chain.pem");
    std::fs::write(&untrusted, chain[..3].concat()).unwrap();
    verify(&dir, &untrusted, &third);
    let mut kmip = Client::connect_with(server.kmip, tls_config(&out, Some("third")));
    assert_eq!(
        kmip.call(Operation::DISCOVER_VERSIONS, vec![]).result_status,
        kmip::enums::ResultStatus::SUCCESS
    );
    server.stop();
}

/// `[ca]` name constraints: the intermediate carries them (critical, as OpenSSL reads
/// them), certificates inside them verify, and names outside are refused where they are
/// asked for: the API with 400, ACME's newOrder with rejectedIdentifier.
#[test]
fn name_constraints_bind_the_intermediate_and_every_issuance() {
    let dir = temp_dir("strongroom-name-constraints");
    let config = dir.join("constraints.toml");
    std::fs::write(
        &config,
        "[ca]\npermitted_dns_domains = [\"svc.internal\", \"localhost\"]\n\
         excluded_dns_domains = [\"secret.svc.internal\"]\n\
         permitted_ip_ranges = [\"127.0.0.0/8\", \"10.0.0.0/8\"]\n",
    )
    .unwrap();
    let data = dir.join("data");
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()]);
    let api = Api::admin(&server);
    api.ok(
        "POST",
        "/v1/pki/roles/svc",
        json!({ "allowed_domains": ["svc.internal", "example.com"], "allow_subdomains": true }),
    );
    let issued =
        api.ok("POST", "/v1/pki/issue/svc", json!({ "common_name": "payments.svc.internal" }));
    let out = temp_dir("strongroom-name-constraints-out");
    let (issuing, crt) = (out.join("issuing.crt"), out.join("payments.crt"));
    std::fs::write(&issuing, issued["data"]["issuing_ca"].as_str().unwrap()).unwrap();
    std::fs::write(&crt, issued["data"]["certificate"].as_str().unwrap()).unwrap();
    let text = openssl(&["x509", "-in", issuing.to_str().unwrap(), "-noout", "-text"]);
    assert!(text.contains("X509v3 Name Constraints: critical"), "{text}");
    for part in
        ["DNS:svc.internal", "DNS:localhost", "IP:10.0.0.0/255.0.0.0", "DNS:secret.svc.internal"]
    {
        assert!(text.contains(part), "{part} in\n{text}");
    }
    verify(&data, &issuing, &crt);

    // The role allows these; the intermediate's constraints do not.
    for name in ["api.example.com", "vault.secret.svc.internal"] {
        let (status, body) = api.call("POST", "/v1/pki/issue/svc", json!({ "common_name": name }));
        assert_eq!(status, 400, "{name}: {body}");
        assert!(body.to_string().contains("name constraints"), "{body}");
    }

    let mut acme = common::acme::AcmeClient::new(&server, &data);
    acme.register();
    let order = |acme: &mut common::acme::AcmeClient, name: &str| {
        let ids = json!({ "identifiers": [{ "type": "dns", "value": name }] });
        acme.post("/acme/new-order", Some(ids))
    };
    assert_eq!(order(&mut acme, "web.svc.internal").status, 201);
    let refused = order(&mut acme, "web.example.com");
    assert_eq!((refused.status, refused.problem().as_str()), (400, "rejectedIdentifier"));
    server.stop();
}

/// Delta CRLs (RFC 5280 §5.2.4): an old full CRL that lacks a later revocation, completed
/// by the delta CRL, makes `openssl verify -crl_check -use_deltas` refuse the certificate;
/// the delta carries a critical Delta CRL Indicator with a base no later than the full
/// CRL's number, and lists only what was revoked since its base.
#[test]
fn delta_crls_complete_an_older_full_crl() {
    let dir = temp_dir("strongroom-delta-crl");
    let (server, api) = start_with_role(&dir, None);
    let out = temp_dir("strongroom-delta-crl-out");
    let serial = |data: serde_json::Value| data["serial_number"].as_str().unwrap().to_owned();
    let first_serial = serial(issue_into(&api, &out, "first"));
    let second_serial = serial(issue_into(&api, &out, "second"));
    let (first, second) = (out.join("first.crt"), out.join("second.crt"));
    let issuing = out.join("first-issuer.crt");
    api.ok("POST", "/v1/pki/revoke", json!({ "serial_number": first_serial }));
    let full = get(&server, &dir, "/v1/pki/crl/pem");
    api.ok("POST", "/v1/pki/revoke", json!({ "serial_number": second_serial }));
    let delta = get(&server, &dir, "/v1/pki/crl/delta/pem");

    let (full_path, delta_path) = (out.join("full.crl.pem"), out.join("delta.crl.pem"));
    std::fs::write(&full_path, &full).unwrap();
    std::fs::write(&delta_path, &delta).unwrap();
    let text = openssl(&["crl", "-in", delta_path.to_str().unwrap(), "-noout", "-text"]);
    assert!(text.contains("X509v3 Delta CRL Indicator: critical"), "{text}");
    let number = |text: &str, label: &str| -> u64 {
        let at = text.find(label).unwrap_or_else(|| panic!("{label} in {text}"));
        let line = text[at..].lines().nth(1).unwrap().trim();
        u64::from_str_radix(line.trim_start_matches("0x"), 16)
            .or_else(|_| line.parse())
            .unwrap_or_else(|_| panic!("{line}"))
    };
    let base = number(&text, "Delta CRL Indicator");
    let full_text = openssl(&["crl", "-in", full_path.to_str().unwrap(), "-noout", "-text"]);
    let full_number = number(&full_text, "X509v3 CRL Number");
    assert!(base <= full_number, "the full CRL is at least the base");
    // One numbering for both (RFC 5280 §5.2.4), only increasing, even within one second:
    // OpenSSL applies a delta only when its number exceeds the full CRL's.
    let delta_number = number(&text, "X509v3 CRL Number");
    assert!(delta_number > full_number, "{delta_number} after {full_number}");
    let newer = get(&server, &dir, "/v1/pki/crl/pem");
    let newer_path = out.join("newer.crl.pem");
    std::fs::write(&newer_path, &newer).unwrap();
    let newer_text = openssl(&["crl", "-in", newer_path.to_str().unwrap(), "-noout", "-text"]);
    assert!(number(&newer_text, "X509v3 CRL Number") > delta_number, "{newer_text}");
    for serial in [&first_serial, &second_serial] {
        let hex = serial.replace(':', "").to_ascii_uppercase();
        assert!(text.to_ascii_uppercase().contains(&hex), "{serial} in the delta:\n{text}");
    }

    let verify = |cert: &std::path::Path, deltas: bool| {
        let mut cmd = Command::new("openssl");
        cmd.args(["verify", "-crl_check"]);
        if deltas {
            cmd.arg("-use_deltas").arg("-CRLfile").arg(&delta_path);
        }
        cmd.arg("-CAfile")
            .arg(dir.join("ca.crt"))
            .arg("-untrusted")
            .arg(&issuing)
            .arg("-CRLfile")
            .arg(&full_path)
            .arg(cert);
        cmd.output().unwrap().status.success()
    };
    assert!(!verify(&first, false), "the full CRL lists the first");
    assert!(verify(&second, false), "the older full CRL does not list the second");
    assert!(!verify(&second, true), "with the delta, the second is revoked");
    server.stop();
}

/// `[ca] key_type = "rsa3072"`: the root and intermediate keys are RSA keys generated in
/// the HSM, and everything they sign (certificates, CRLs, OCSP answers) is
/// sha256WithRSAEncryption that OpenSSL checks; a certificate from them authenticates a
/// KMIP client over mutual TLS.
#[test]
fn rsa_ca_keys_sign_certificates_crls_and_ocsp() {
    let data = temp_dir("strongroom-rsa-ca");
    let (server, api) = start_with_role(&data, Some("[ca]\nkey_type = \"rsa3072\"\n"));
    let out = temp_dir("strongroom-rsa-ca-out");
    let d = &issue_into(&api, &out, "rsa");
    let (issuing, crt) = (out.join("rsa-issuer.crt"), out.join("rsa.crt"));
    std::fs::copy(data.join("ca.crt"), out.join("ca.crt")).unwrap();
    for cert in [data.join("ca.crt"), issuing.clone()] {
        let text = openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-text"]);
        assert!(text.contains("Public-Key: (3072 bit)"), "{text}");
        assert!(text.contains("Signature Algorithm: sha256WithRSAEncryption"), "{text}");
    }
    let leaf = openssl(&["x509", "-in", crt.to_str().unwrap(), "-noout", "-text"]);
    assert!(leaf.contains("Signature Algorithm: sha256WithRSAEncryption"), "{leaf}");
    verify(&data, &issuing, &crt);
    assert!(ocsp_status(&server, &data, &issuing, &crt).ends_with(": good"));

    let mut kmip = Client::connect_with(server.kmip, tls_config(&out, Some("rsa")));
    let item = kmip.call(Operation::DISCOVER_VERSIONS, vec![]);
    assert_eq!(item.result_status, kmip::enums::ResultStatus::SUCCESS);
    drop(kmip);

    api.ok("POST", "/v1/pki/revoke", json!({ "serial_number": d["serial_number"] }));
    let crl = get(&server, &data, "/v1/pki/crl/pem");
    let why = verify_with_crl(&data, &issuing, &crt, &crl).unwrap_err();
    assert!(why.contains("revoked"), "{why}");
    let delta = get(&server, &data, "/v1/pki/crl/delta/pem");
    assert!(crl_lists(&data, &issuing, &delta, d["serial_number"].as_str().unwrap()));
    assert!(ocsp_status(&server, &data, &issuing, &crt).contains(": revoked"));
    server.stop();
}

/// A certificate's subject is its holder's identity on the KMIP and API listeners: a
/// token that may issue under a role still cannot have an administrator's name issued;
/// a root token can.
#[test]
fn only_root_issues_an_administrators_name() {
    let dir = temp_dir("strongroom-pki-admin-name");
    let config = "[access]\nadmins = [\"CN=boss.svc.internal\"]\n";
    let (server, api) = start_with_role(&dir, Some(config));
    let policy = r#"path "pki/issue/svc" { capabilities = ["update"] }"#;
    api.ok("POST", "/v1/sys/policies/acl/issuer", json!({ "policy": policy }));
    let made = api.ok("POST", "/v1/auth/token/create", json!({ "policies": ["issuer"] }));
    let issuer = api.with_token(made["auth"]["client_token"].as_str().unwrap());
    let boss = json!({ "common_name": "boss.svc.internal" });
    let (status, body) = issuer.call("POST", "/v1/pki/issue/svc", boss.clone());
    assert_eq!(status, 403, "{body}");
    issuer.ok("POST", "/v1/pki/issue/svc", json!({ "common_name": "web.svc.internal" }));
    api.ok("POST", "/v1/pki/issue/svc", boss);
    server.stop();
}

/// As with Vault's PKI certificates, a certificate issued to a short-lived token keeps its
/// role's lifetime (its lease with it): a deploy job's token can enrol a service.
#[test]
fn certificates_outlive_the_token_they_were_issued_to() {
    let dir = temp_dir("strongroom-pki-token-ttl");
    let (server, api) = start_with_role(&dir, None);
    let policy = r#"path "pki/issue/svc" { capabilities = ["update"] }"#;
    api.ok("POST", "/v1/sys/policies/acl/issuer", json!({ "policy": policy }));
    let made =
        api.ok("POST", "/v1/auth/token/create", json!({ "policies": ["issuer"], "ttl": "10m" }));
    let issuer = api.with_token(made["auth"]["client_token"].as_str().unwrap());
    let issued = issuer.ok("POST", "/v1/pki/issue/svc", json!({ "common_name": "a.svc.internal" }));
    assert!(issued["lease_duration"].as_i64().unwrap() > 3600, "{issued}");
    server.stop();
}

/// `strongroom client-cert`'s certificates are on record like every other the CA issues:
/// revoked by serial, one no longer authenticates, and OCSP and the CRL say so.
#[test]
fn client_cert_certificates_can_be_revoked() {
    let dir = temp_dir("strongroom-pki-client-cert-revoke");
    let server = Server::start(&dir);
    let api = Api::admin(&server);
    let out = client_cert(&dir, "app");
    let pem = std::fs::read(out.join("app.crt")).unwrap();
    let (_, parsed) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let cert = parsed.parse_x509().unwrap();
    let serial = hex::encode(cert.raw_serial());
    // An end-entity certificate says so, and names its key (RFC 5280 §4.2.1.2, §4.2.1.9).
    assert!(!cert.is_ca());
    assert!(cert.basic_constraints().unwrap().is_some(), "Basic Constraints cA FALSE");
    let ski = cert.extensions().iter().any(|e| {
        matches!(
            e.parsed_extension(),
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(_)
        )
    });
    assert!(ski, "Subject Key Identifier");
    let connects = || {
        std::panic::catch_unwind(|| {
            let mut kmip = Client::connect(&server, &out, "app");
            kmip.call(Operation::DISCOVER_VERSIONS, vec![]).result_status
        })
        .is_ok()
    };
    assert!(connects(), "before the revocation");
    let cert = api.ok("GET", &format!("/v1/pki/cert/{serial}"), json!(null));
    assert_eq!(cert["data"]["revocation_time"], 0, "{cert}");
    // With a reason (RFC 5280's codes; 7 is unused).
    let (status, body) =
        api.call("POST", "/v1/pki/revoke", json!({ "serial_number": serial, "reason": 7 }));
    assert_eq!(status, 400, "{body}");
    api.ok("POST", "/v1/pki/revoke", json!({ "serial_number": serial, "reason": 1 }));
    assert!(!connects(), "after the revocation");
    server.stop();
}
