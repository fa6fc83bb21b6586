//! Short-lived certificates by API: roles, issuance (key generated here) and signing of a
//! CSR (openssl's), checked with openssl; the certificate works as a KMIP client
//! certificate; revoking its lease revokes it and the CRL (signed in the HSM) lists it, and
//! the OCSP responder answers good, then revoked, for `openssl ocsp`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{temp_dir, tls_config, Api, Client, Server};
use kmip::enums::Operation;
use serde_json::json;

/// `openssl ocsp` against Strongroom's responder for `cert`; returns its status line.
fn ocsp_status(server: &Server, dir: &std::path::Path, cert: &std::path::Path) -> String {
    let url = format!("https://{}/ocsp", server.https);
    let ca = dir.join("ca.crt");
    let ca = ca.to_str().unwrap();
    let out = openssl(&[
        "ocsp",
        "-issuer",
        ca,
        "-CAfile",
        ca,
        "-cert",
        cert.to_str().unwrap(),
        "-url",
        &url,
    ]);
    out.lines().find(|l| l.starts_with(cert.to_str().unwrap())).unwrap_or(&out).to_owned()
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
    openssl(&["verify", "-CAfile", dir.join("ca.crt").to_str().unwrap(), crt.to_str().unwrap()]);
    let text = openssl(&["x509", "-in", crt.to_str().unwrap(), "-noout", "-text"]);
    assert!(text.contains("DNS:payments.svc.internal"), "{text}");
    assert!(text.contains("URI:spiffe://strongroom.test/payments"), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");

    // The OCSP responder (signed in the HSM, with openssl's nonce echoed) says good.
    assert!(
        ocsp_status(&server, &dir, &crt).ends_with(": good"),
        "{}",
        ocsp_status(&server, &dir, &crt)
    );

    // The certificate is a working mTLS client identity for KMIP.
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
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        csr.to_str().unwrap(),
        "-subj",
        "/CN=db.svc.internal",
    ]);
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
    let crl_path = certs.join("crl.pem");
    std::fs::write(&crl_path, &crl).unwrap();
    let listed = openssl(&[
        "crl",
        "-in",
        crl_path.to_str().unwrap(),
        "-CAfile",
        dir.join("ca.crt").to_str().unwrap(),
        "-noout",
        "-text",
    ]);
    assert!(listed.to_lowercase().contains(&format!("serial number: {serial}")), "{listed}");
    // OCSP says revoked, over POST and over GET (RFC 6960 Appendix A.1).
    assert!(ocsp_status(&server, &dir, &crt).ends_with(": revoked"));
    let ca = dir.join("ca.crt");
    let req = certs.join("req.der");
    openssl(&[
        "ocsp",
        "-issuer",
        ca.to_str().unwrap(),
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
        ca.to_str().unwrap(),
        "-CAfile",
        ca.to_str().unwrap(),
        "-cert",
        crt.to_str().unwrap(),
    ]);
    assert!(text.contains(": revoked"), "{text}");
    // A certificate the store does not know (made by `strongroom client-cert`) is unknown,
    // and garbage gets a malformedRequest answer, not an error page.
    let other = common::client_cert(&dir, "someone");
    assert!(ocsp_status(&server, &dir, &other.join("someone.crt")).ends_with(": unknown"));
    let (status, resp) = common::https_with(
        server.https,
        tls_config(&dir, None),
        "POST",
        "/ocsp",
        &[("Content-Type", "application/ocsp-request")],
        b"garbage",
    );
    assert_eq!((status, resp), (200, vec![0x30, 0x03, 0x0A, 0x01, 0x01]));
    let (status, _) =
        common::https_with(server.https, tls_config(&dir, None), "GET", "/v1/pki/ca/pem", &[], b"");
    assert_eq!(status, 200);
    server.stop();
}
