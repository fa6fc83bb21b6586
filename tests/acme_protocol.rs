//! The ACME server's rules, driven request by request with hand-made JWS: nonces, URLs,
//! signatures, content types and key IDs; accounts (onlyReturnExisting, deactivation);
//! orders for an IP identifier (RFC 8738) validated over http-01 against a responder in
//! this test; CSRs that do not match refused with nothing issued; failed validation;
//! download; revocation with the certificate's own key; External Account Binding and key
//! change; http-01 redirects; open orders per account; pre-authorized identifiers; renewal information (RFC 9773); certificate
//! profiles (`meta.profiles`, EAB keys limited to some). Real clients are in
//! `acme_clients.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::acme::{b64, jwk, new_key, AcmeClient as Client, URL};
use common::*;
use serde_json::{json, Value};

fn path_of(url: &str) -> String {
    url.strip_prefix(URL).unwrap().to_owned()
}

/// Serves http-01 key authorizations on `listener` (token → key authorization).
fn http01_responder(listener: TcpListener, answers: Arc<std::sync::Mutex<Vec<(String, String)>>>) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 2048];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            let path = req.split_whitespace().nth(1).unwrap_or("").to_owned();
            let found = answers
                .lock()
                .unwrap()
                .iter()
                .find(|(t, _)| path == format!("/.well-known/acme-challenge/{t}"))
                .map(|(_, ka)| ka.clone());
            let reply = match found {
                Some(ka) => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{ka}", ka.len()),
                None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_owned(),
            };
            let _ = s.write_all(reply.as_bytes());
        }
    });
}

/// An authorization's http-01 challenge.
fn http01_challenge(authz: &Value) -> Value {
    let challenges = authz["challenges"].as_array().unwrap();
    challenges.iter().find(|ch| ch["type"] == "http-01").unwrap().clone()
}

fn thumbprint(key: &EcdsaKeyPair) -> String {
    let j = jwk(key);
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        j["x"].as_str().unwrap(),
        j["y"].as_str().unwrap()
    );
    use sha2::Digest;
    b64(&sha2::Sha256::digest(canonical.as_bytes()))
}

fn wait_for(c: &mut Client, url: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = c.post(&path_of(url), None).json();
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn csr(names: &[&str], key: &rcgen::KeyPair) -> String {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    // rcgen's default subject is not an ordered name; a CSR with no subject is fine.
    params.distinguished_name = rcgen::DistinguishedName::new();
    b64(params.serialize_request(key).unwrap().der())
}

#[test]
fn jws_nonce_url_and_account_rules() {
    let dir = temp_dir("strongroom-acme-jws");
    let server = Server::start(&dir);
    let mut c = Client::new(&server, &dir);

    let d = c.raw("GET", "/acme/directory", "text/plain", b"");
    assert_eq!(d.json()["newAccount"], format!("{URL}/acme/new-account"));
    let n = c.raw("HEAD", "/acme/new-nonce", "text/plain", b"");
    assert_eq!(n.status, 200);
    assert_eq!(n.header("cache-control"), Some("no-store"));
    assert_eq!(c.raw("GET", "/acme/new-nonce", "text/plain", b"").status, 204);

    let r = c.post("/acme/new-account", Some(json!({"onlyReturnExisting": true})));
    assert_eq!((r.status, r.problem().as_str()), (400, "accountDoesNotExist"));
    let created = c.register();
    assert_eq!(created.status, 201);
    let kid = c.kid.clone().unwrap();
    c.kid = None;
    let again = c.register();
    assert_eq!(
        (again.status, c.kid.clone().unwrap()),
        (200, kid.clone()),
        "same key, same account"
    );

    // A used nonce, a missing one: badNonce, with a fresh nonce to retry with.
    let header = c.header("/acme/account/x");
    let used = header["nonce"].as_str().unwrap().to_owned();
    let body = c.jws(&c.key, header, None);
    c.raw("POST", &path_of(&kid), "application/jose+json", &body);
    let mut replay = c.header(&path_of(&kid));
    replay["nonce"] = used.into();
    let r = c.raw("POST", &path_of(&kid), "application/jose+json", &c.jws(&c.key, replay, None));
    assert_eq!((r.status, r.problem().as_str()), (400, "badNonce"));
    assert!(r.header("replay-nonce").is_some());
    let mut none = c.header(&path_of(&kid));
    none.as_object_mut().unwrap().remove("nonce");
    let r = c.raw("POST", &path_of(&kid), "application/jose+json", &c.jws(&c.key, none, None));
    assert_eq!(r.problem(), "badNonce");

    // The signed URL must be the one requested.
    let wrong = c.header("/acme/new-order");
    let r = c.raw("POST", &path_of(&kid), "application/jose+json", &c.jws(&c.key, wrong, None));
    assert_eq!((r.status, r.problem().as_str()), (403, "unauthorized"));
    // Another key's signature; an unsupported algorithm; an unknown account.
    let header = c.header(&path_of(&kid));
    let r =
        c.raw("POST", &path_of(&kid), "application/jose+json", &c.jws(&new_key(), header, None));
    assert_eq!((r.status, r.problem().as_str()), (400, "malformed"));
    let mut hs = c.header(&path_of(&kid));
    hs["alg"] = "HS256".into();
    let r = c.raw("POST", &path_of(&kid), "application/jose+json", &c.jws(&c.key, hs, None));
    assert_eq!(r.problem(), "badSignatureAlgorithm");
    assert!(r.json()["algorithms"].as_array().is_some_and(|a| a.contains(&json!("ES256"))));
    let mut ghost = c.header("/acme/new-order");
    ghost["kid"] = format!("{URL}/acme/account/nobody").into();
    let r = c.raw(
        "POST",
        "/acme/new-order",
        "application/jose+json",
        &c.jws(&c.key, ghost, Some(&json!({}))),
    );
    assert_eq!(r.problem(), "accountDoesNotExist");
    // Not JOSE, not JSON. (Bodies over the listener's limit are refused before they are
    // read; a client still sending then sees the connection close, so no assertion here.)
    let r = c.raw("POST", "/acme/new-order", "application/json", b"{}");
    assert_eq!(r.status, 415);
    assert_eq!(
        c.raw("POST", "/acme/new-order", "application/jose+json", b"{oops").problem(),
        "malformed"
    );

    // Contacts are checked; deactivation ends the account.
    let r = c.post(&path_of(&kid), Some(json!({"contact": ["tel:+1"]})));
    assert_eq!(r.problem(), "unsupportedContact");
    let r = c.post(&path_of(&kid), Some(json!({"contact": ["mailto:nobody"]})));
    assert_eq!(r.problem(), "invalidContact");
    let r = c.post(&path_of(&kid), Some(json!({"contact": ["mailto:ops@example.com"]})));
    assert_eq!(r.json()["contact"], json!(["mailto:ops@example.com"]), "{r:?}");
    let r = c.post(&path_of(&kid), Some(json!({"status": "deactivated"})));
    assert_eq!(r.json()["status"], "deactivated");
    // RFC 8555 §7.3.6: 401 for any request of a deactivated account.
    let r = c.post(
        "/acme/new-order",
        Some(json!({"identifiers": [{"type": "dns", "value": "a.test"}]})),
    );
    assert_eq!((r.status, r.problem().as_str()), (401, "unauthorized"));
    let r = c.post(&path_of(&kid), Some(json!({})));
    assert_eq!((r.status, r.problem().as_str()), (401, "unauthorized"), "not revived");
    let kid_now = c.kid.take();
    let r = c.post("/acme/new-account", Some(json!({"onlyReturnExisting": true})));
    assert_eq!((r.status, r.problem().as_str()), (401, "unauthorized"), "{r:?}");
    c.kid = kid_now;

    // Refusals are in the audit trail with their problem.
    let admin = Api::admin(&server);
    let denied = admin.ok("GET", "/v1/sys/audit?outcome=denied&limit=1000", json!(null));
    let denied = denied["data"]["events"].as_array().unwrap().clone();
    assert!(
        denied.iter().any(|e| e["protocol"] == "acme"
            && e["detail"].as_str().is_some_and(|d| d.starts_with("unauthorized: the JWS url"))),
        "{denied:?}"
    );
    server.stop();
}

#[test]
fn orders_validation_finalize_and_revocation() {
    orders_validation_finalize_and_revocation_on(&[]);
}

/// The same on a PostgreSQL store, where finalize claims a ready order as it reads it.
#[test]
fn orders_validation_finalize_and_revocation_on_postgresql() {
    let db = PgDatabase::new("acme_orders");
    orders_validation_finalize_and_revocation_on(&["--store-url", &db.url]);
}

fn orders_validation_finalize_and_revocation_on(store: &[&str]) {
    let dir = temp_dir("strongroom-acme-orders");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answers = Arc::new(std::sync::Mutex::new(Vec::new()));
    http01_responder(listener, answers.clone());
    let config = dir.join("acme.toml");
    std::fs::write(&config, format!("[acme]\nhttp01_port = {port}\n")).unwrap();
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend_from_slice(store);
    let server = Server::start_with(&dir, &args);
    let mut c = Client::new(&server, &dir);
    c.register();

    for (ids, problem) in [
        (json!([{"type": "dns", "value": "bad_name.test"}]), "rejectedIdentifier"),
        (json!([{"type": "email", "value": "a@b.test"}]), "unsupportedIdentifier"),
        (json!([]), "malformed"),
    ] {
        let r = c.post("/acme/new-order", Some(json!({"identifiers": ids})));
        assert_eq!(r.problem(), problem, "{ids}");
    }

    // An order for 127.0.0.1 (an IP identifier, RFC 8738), proven over http-01.
    let r = c.post(
        "/acme/new-order",
        Some(json!({"identifiers": [{"type": "ip", "value": "127.0.0.1"}]})),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let order_url = r.header("location").unwrap().to_owned();
    let order = r.json();
    assert_eq!(order["status"], "pending");
    let finalize = path_of(order["finalize"].as_str().unwrap());
    let key = rcgen::KeyPair::generate().unwrap();
    let r = c.post(&finalize, Some(json!({"csr": csr(&["127.0.0.1"], &key)})));
    assert_eq!((r.status, r.problem().as_str()), (403, "orderNotReady"));

    let authz_url = order["authorizations"][0].as_str().unwrap().to_owned();
    let authz = c.post(&path_of(&authz_url), None).json();
    assert_eq!(authz["identifier"], json!({"type": "ip", "value": "127.0.0.1"}));
    let chall = http01_challenge(&authz);
    let token = chall["token"].as_str().unwrap().to_owned();
    answers.lock().unwrap().push((token.clone(), format!("{token}.{}", thumbprint(&c.key))));
    let r = c.post(&path_of(chall["url"].as_str().unwrap()), Some(json!({})));
    assert_eq!(r.status, 200, "{r:?}");
    wait_for(&mut c, &authz_url, |a| a["status"] == "valid");
    assert_eq!(c.post(&path_of(&order_url), None).json()["status"], "ready");
    // A POST-as-GET has an empty payload (RFC 8555 §6.3); `{}` is not one.
    assert_eq!(c.post(&path_of(&order_url), Some(json!({}))).problem(), "malformed");

    // A CSR for other names is refused and nothing is issued: the order stays ready.
    let r = c.post(&finalize, Some(json!({"csr": csr(&["127.0.0.1", "extra.test"], &key)})));
    assert_eq!(r.problem(), "badCSR");
    let r = c.post(&finalize, Some(json!({"csr": "!!!"})));
    assert_eq!(r.problem(), "badCSR");
    assert_eq!(c.post(&path_of(&order_url), None).json()["status"], "ready");

    let done = c.post(&finalize, Some(json!({"csr": csr(&["127.0.0.1"], &key)})));
    assert_eq!(done.json()["status"], "valid", "{done:?}");
    let cert_url = done.json()["certificate"].as_str().unwrap().to_owned();
    let pem = c.post(&path_of(&cert_url), None);
    assert_eq!(pem.header("content-type"), Some("application/pem-certificate-chain"));
    let chain = String::from_utf8(pem.body.clone()).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
    let leaf_der = rustls::pki_types::pem::PemObject::from_pem_slice(chain.as_bytes())
        .map(|c: rustls::pki_types::CertificateDer<'static>| c.to_vec())
        .unwrap();
    let r = c.post(&finalize, Some(json!({"csr": csr(&["127.0.0.1"], &key)})));
    assert_eq!(r.problem(), "orderNotReady", "finalized once only");

    // Another account sees neither the order nor the certificate.
    let mut other = Client::new(&server, &dir);
    other.register();
    assert_eq!(other.post(&path_of(&order_url), None).status, 404);
    assert_eq!(other.post(&path_of(&cert_url), None).status, 404);

    // A failed validation makes the authorization and the order invalid.
    let r = other.post(
        "/acme/new-order",
        Some(json!({"identifiers": [{"type": "ip", "value": "127.0.0.1"}]})),
    );
    let o2 = r.json();
    let a2 = other.post(&path_of(o2["authorizations"][0].as_str().unwrap()), None).json();
    let ch2 = a2["challenges"][0]["url"].as_str().unwrap().to_owned();
    other.post(&path_of(&ch2), Some(json!({})));
    let failed = wait_for(&mut other, o2["authorizations"][0].as_str().unwrap(), |a| {
        a["status"] == "invalid"
    });
    let error = &failed["challenges"][0]["error"];
    assert_eq!(error["type"], "urn:ietf:params:acme:error:incorrectResponse", "{failed}");
    let o2url = r.header("location").unwrap().to_owned();
    assert_eq!(other.post(&path_of(&o2url), None).json()["status"], "invalid");

    // Revocation with the certificate's own key (jwk), by someone holding no account.
    let cert_key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.serialize_der()).unwrap();
    let mut holder = Client::new(&server, &dir);
    holder.key = cert_key;
    // 7 is unused; removeFromCRL (8) is for delta CRLs, not a reason to revoke; the CA's
    // compromise (2, 10) is not the subscriber's to claim, and a hold (6) has no release.
    for reason in [2, 6, 7, 8, 10] {
        let revoke = json!({"certificate": b64(&leaf_der), "reason": reason});
        let r = holder.post("/acme/revoke-cert", Some(revoke));
        assert_eq!(r.problem(), "badRevocationReason", "{reason}");
    }
    let revoke = json!({"certificate": b64(&leaf_der), "reason": 1});
    assert_eq!(other.post("/acme/revoke-cert", Some(revoke.clone())).problem(), "unauthorized");
    assert_eq!(holder.post("/acme/revoke-cert", Some(revoke.clone())).status, 200);
    assert_eq!(holder.post("/acme/revoke-cert", Some(revoke)).problem(), "alreadyRevoked");
    server.stop();
}

type Routes = Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>;

/// Answers each GET on `listener` (over TLS with `tls`) with the whole HTTP response
/// `routes` holds for its path, or 404.
fn route_responder(listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>, routes: Routes) {
    fn answer(s: &mut (impl Read + Write), routes: &Routes) {
        let mut req = Vec::new();
        let mut buf = [0u8; 2048];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => req.extend_from_slice(&buf[..n]),
            }
        }
        let req = String::from_utf8_lossy(&req).into_owned();
        let path = req.split_whitespace().nth(1).unwrap_or("").to_owned();
        let reply = routes.lock().unwrap().get(&path).cloned();
        let reply =
            reply.unwrap_or_else(|| "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into());
        let _ = s.write_all(reply.as_bytes());
        let _ = s.flush();
    }
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(tcp) = stream else { continue };
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            match &tls {
                None => answer(&mut { tcp }, &routes),
                Some(config) => {
                    let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                    let mut s = rustls::StreamOwned::new(conn, tcp);
                    answer(&mut s, &routes);
                    s.conn.send_close_notify();
                    let _ = s.flush();
                }
            }
        }
    });
}

/// http-01 follows redirects as Let's Encrypt does: to HTTPS (any certificate), back to
/// HTTP, relative paths; at most 10, and only to the configured HTTP and HTTPS ports.
#[test]
fn http01_follows_redirects() {
    let dir = temp_dir("strongroom-acme-redirects");
    let plain = TcpListener::bind("127.0.0.1:0").unwrap();
    let secure = TcpListener::bind("127.0.0.1:0").unwrap();
    let (p, q) = (plain.local_addr().unwrap().port(), secure.local_addr().unwrap().port());
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into()),
        )
        .unwrap();
    let (plain_routes, secure_routes) = (Routes::default(), Routes::default());
    route_responder(plain, None, plain_routes.clone());
    route_responder(secure, Some(Arc::new(tls)), secure_routes.clone());
    let config = dir.join("acme.toml");
    std::fs::write(&config, format!("[acme]\nhttp01_port = {p}\ntls_alpn01_port = {q}\n")).unwrap();
    let server = Server::start_with(&dir, &["--config", config.to_str().unwrap()]);
    let redirect = |status: u16, to: &str| {
        format!("HTTP/1.1 {status} Moved\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n")
    };

    // Each case on an account of its own, whose http-01 challenge for 127.0.0.1 is tried
    // once the routes for its token are set; the authorization as it ends.
    let attempt = |set_routes: &dyn Fn(&str, &str)| {
        let mut c = Client::new(&server, &dir);
        c.register();
        let ids = json!([{"type": "ip", "value": "127.0.0.1"}]);
        let order = c.post("/acme/new-order", Some(json!({"identifiers": ids}))).json();
        let authz_url = order["authorizations"][0].as_str().unwrap().to_owned();
        let authz = c.post(&path_of(&authz_url), None).json();
        let chall = http01_challenge(&authz);
        let token = chall["token"].as_str().unwrap().to_owned();
        set_routes(&token, &format!("{token}.{}", thumbprint(&c.key)));
        assert_eq!(c.post(&path_of(chall["url"].as_str().unwrap()), Some(json!({}))).status, 200);
        let done = wait_for(&mut c, &authz_url, |a| a["status"] != "pending");
        let error = http01_challenge(&done)["error"].clone();
        (done["status"].as_str().unwrap().to_owned(), error)
    };
    let start = |token: &str| format!("/.well-known/acme-challenge/{token}");

    // HTTP to HTTPS (self-signed), back to HTTP on the default (configured) port, then a
    // relative path.
    let (status, error) = attempt(&|token, ka| {
        let mut plain = plain_routes.lock().unwrap();
        plain.insert(start(token), redirect(301, &format!("https://127.0.0.1:{q}/tls/{token}")));
        let back = redirect(308, &format!("http://127.0.0.1/back/{token}"));
        secure_routes.lock().unwrap().insert(format!("/tls/{token}"), back);
        plain.insert(format!("/back/{token}"), redirect(302, &format!("done/{token}")));
        let ok = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{ka}\n", ka.len() + 1);
        plain.insert(format!("/back/done/{token}"), ok);
    });
    assert_eq!((status.as_str(), &error), ("valid", &Value::Null), "{error}");

    // A loop ends after 10 redirects.
    let (status, error) = attempt(&|token, _| {
        plain_routes.lock().unwrap().insert(start(token), redirect(302, &start(token)));
    });
    assert_eq!(status, "invalid");
    assert_eq!(error["type"], "urn:ietf:params:acme:error:connection", "{error}");
    assert!(error["detail"].as_str().unwrap().contains("more than 10 redirects"), "{error}");

    // Other ports and schemes are not followed.
    for (to, why) in [
        ("http://127.0.0.1:1/x".to_owned(), format!("http redirects may go to port {p} only")),
        (format!("ftp://127.0.0.1:{p}/x"), "only http and https URLs are followed".to_owned()),
    ] {
        let (status, error) = attempt(&|token, _| {
            plain_routes.lock().unwrap().insert(start(token), redirect(307, &to));
        });
        assert_eq!(status, "invalid");
        assert!(error["detail"].as_str().unwrap().contains(&why), "{error}");
    }
    // A redirect without a Location is a wrong answer.
    let (status, error) = attempt(&|token, _| {
        let bare = "HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n".to_owned();
        plain_routes.lock().unwrap().insert(start(token), bare);
    });
    assert_eq!(status, "invalid");
    assert_eq!(error["type"], "urn:ietf:params:acme:error:incorrectResponse", "{error}");
    server.stop();
}

/// An account may have `[acme] max_open_orders` orders pending or ready; one whose
/// authorization is deactivated no longer counts, nor is listed.
#[test]
fn open_orders_per_account_are_capped() {
    let dir = temp_dir("strongroom-acme-open-orders");
    let config = dir.join("acme.toml");
    std::fs::write(&config, "[acme]\nmax_open_orders = 2\n").unwrap();
    let server = Server::start_with(&dir, &["--config", config.to_str().unwrap()]);
    let mut c = Client::new(&server, &dir);
    let orders_url = c.register().json()["orders"].as_str().unwrap().to_owned();
    let order = |c: &mut Client, name: &str| {
        let ids = json!([{"type": "dns", "value": name}]);
        c.post("/acme/new-order", Some(json!({"identifiers": ids})))
    };
    let first = order(&mut c, "a.test").json();
    assert_eq!(order(&mut c, "b.test").status, 201);
    let refused = order(&mut c, "c.test");
    assert_eq!((refused.status, refused.problem().as_str()), (429, "rateLimited"));
    assert_eq!(refused.header("retry-after"), Some("3600"));
    // Another account is not held back.
    let mut other = Client::new(&server, &dir);
    other.register();
    assert_eq!(order(&mut other, "c.test").status, 201);

    let authz = path_of(first["authorizations"][0].as_str().unwrap());
    let r = c.post(&authz, Some(json!({"status": "deactivated"})));
    assert_eq!(r.json()["status"], "deactivated", "{r:?}");
    assert_eq!(order(&mut c, "c.test").status, 201);
    let listed = c.post(&path_of(&orders_url), None).json();
    assert_eq!(listed["orders"].as_array().unwrap().len(), 2, "{listed}");
    server.stop();
}

/// The External Account Binding for `key`, MACed with the EAB key (HS256).
fn eab(id: &str, hmac_key: &[u8], key: &EcdsaKeyPair) -> Value {
    let protected =
        b64(json!({"alg": "HS256", "kid": id, "url": format!("{URL}/acme/new-account")})
            .to_string()
            .as_bytes());
    let payload = b64(jwk(key).to_string().as_bytes());
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, hmac_key),
        format!("{protected}.{payload}").as_bytes(),
    );
    json!({"protected": protected, "payload": payload, "signature": b64(tag.as_ref())})
}

#[test]
fn external_account_binding_and_key_change() {
    let dir = temp_dir("strongroom-acme-eab");
    let config = dir.join("acme.toml");
    std::fs::write(&config, "[acme]\nexternal_account_required = true\n").unwrap();
    let server = Server::start_with(&dir, &["--config", config.to_str().unwrap()]);
    let admin = Api::admin(&server);
    let mut c = Client::new(&server, &dir);
    let d = c.raw("GET", "/acme/directory", "text/plain", b"").json();
    assert_eq!(d["meta"]["externalAccountRequired"], true);
    let r = c.post("/acme/new-account", Some(json!({"termsOfServiceAgreed": true})));
    assert_eq!(r.problem(), "externalAccountRequired");

    let made = admin.ok("POST", "/v1/acme/eab", json!(null));
    let id = made["data"]["id"].as_str().unwrap().to_owned();
    let hmac_key = B64.decode(made["data"]["key"].as_str().unwrap()).unwrap();
    let bad = eab(&id, b"not the key", &c.key);
    let r = c.post("/acme/new-account", Some(json!({"externalAccountBinding": bad})));
    assert_eq!(r.problem(), "unauthorized");
    let other_key = new_key();
    let for_other = eab(&id, &hmac_key, &other_key);
    let r = c.post("/acme/new-account", Some(json!({"externalAccountBinding": for_other})));
    assert_eq!(r.problem(), "unauthorized", "an EAB for another key");
    let binding = eab(&id, &hmac_key, &c.key);
    let r = c.post("/acme/new-account", Some(json!({"externalAccountBinding": binding})));
    assert_eq!(r.status, 201, "{r:?}");
    let kid = r.header("location").unwrap().to_owned();
    c.kid = Some(kid.clone());
    // Bound once only; bound keys stay listed and cannot be deleted.
    let mut second = Client::new(&server, &dir);
    let again = eab(&id, &hmac_key, &second.key);
    let r = second.post("/acme/new-account", Some(json!({"externalAccountBinding": again})));
    assert_eq!(r.problem(), "unauthorized");
    let listed = admin.ok("GET", "/v1/acme/eab", json!(null));
    assert_eq!(listed["data"]["keys"][0]["account"], kid.rsplit('/').next().unwrap(), "{listed}");
    assert_eq!(admin.call("DELETE", &format!("/v1/acme/eab/{id}"), json!(null)).0, 404);
    let spare = admin.ok("POST", "/v1/acme/eab", json!(null));
    let spare_id = spare["data"]["id"].as_str().unwrap();
    assert_eq!(admin.call("DELETE", &format!("/v1/acme/eab/{spare_id}"), json!(null)).0, 204);
    // Creating EAB keys is an administrator's act.
    let t = admin.ok("POST", "/v1/auth/token/create", json!({"policies": ["default"]}));
    let plain = admin.with_token(t["auth"]["client_token"].as_str().unwrap());
    assert_eq!(plain.call("POST", "/v1/acme/eab", json!(null)).0, 403);

    // keyChange: the account moves to a new key; the old one no longer signs for it. The
    // inner JWS must not carry a nonce (§7.3.5).
    let new = new_key();
    let with_nonce = json!({"alg": "ES256", "jwk": jwk(&new), "nonce": "n",
                            "url": format!("{URL}/acme/key-change")});
    let inner = c.jws(&new, with_nonce, Some(&json!({"account": kid, "oldKey": jwk(&c.key)})));
    let inner: Value = serde_json::from_slice(&inner).unwrap();
    assert_eq!(c.post("/acme/key-change", Some(inner)).problem(), "malformed");
    let inner_header =
        json!({"alg": "ES256", "jwk": jwk(&new), "url": format!("{URL}/acme/key-change")});
    let inner = c.jws(&new, inner_header, Some(&json!({"account": kid, "oldKey": jwk(&c.key)})));
    let inner: Value = serde_json::from_slice(&inner).unwrap();
    let r = c.post("/acme/key-change", Some(inner));
    assert_eq!(r.status, 200, "{r:?}");
    let old = r.json();
    assert_eq!(old["status"], "valid");
    let r = c.post(&path_of(&kid), None);
    assert_eq!(r.problem(), "malformed", "the old key's signature no longer verifies");
    c.key = new;
    assert_eq!(c.post(&path_of(&kid), None).json()["status"], "valid");
    server.stop();
}

#[test]
fn preauthorized_identifiers_and_renewal_information() {
    let dir = temp_dir("strongroom-acme-preauth");
    let config = dir.join("acme.toml");
    std::fs::write(&config, "[acme]\npreauthorized = [\"*.svc.internal\", \"10.0.0.0/8\"]\n")
        .unwrap();
    let server = Server::start_with(&dir, &["--config", config.to_str().unwrap()]);
    let mut c = Client::new(&server, &dir);
    c.register();
    let ids =
        json!([{"type": "dns", "value": "pay.svc.internal"}, {"type": "ip", "value": "10.2.3.4"}]);
    let r = c.post("/acme/new-order", Some(json!({"identifiers": ids})));
    let order = r.json();
    assert_eq!(order["status"], "ready", "{order}");
    let key = rcgen::KeyPair::generate().unwrap();
    let done = c.post(
        &path_of(order["finalize"].as_str().unwrap()),
        Some(json!({"csr": csr(&["pay.svc.internal", "10.2.3.4"], &key)})),
    );
    assert_eq!(done.json()["status"], "valid", "{done:?}");

    // ARI (RFC 9773): the certificate's renewal window, and an order that replaces it.
    let pem = c.post(&path_of(done.json()["certificate"].as_str().unwrap()), None).body;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    let aki = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
        .unwrap();
    let cert_id = format!("{}.{}", b64(&aki), b64(cert.tbs_certificate.raw_serial()));
    let dir_json = c.raw("GET", "/acme/directory", "text/plain", b"").json();
    assert_eq!(dir_json["renewalInfo"], format!("{URL}/acme/renewal-info"));
    let info = c.raw("GET", &format!("/acme/renewal-info/{cert_id}"), "text/plain", b"");
    assert_eq!(info.status, 200, "{info:?}");
    assert!(info.header("retry-after").is_some());
    let start = info.json()["suggestedWindow"]["start"].as_str().unwrap().to_owned();
    let not_before = cert.validity().not_before.to_datetime();
    let not_after = cert.validity().not_after.to_datetime();
    let start = time::OffsetDateTime::parse(&start, &time::format_description::well_known::Rfc3339)
        .unwrap();
    assert!(start > not_before && start < not_after, "{start} within {not_before}..{not_after}");
    assert_eq!(
        c.raw("GET", "/acme/renewal-info/nonsense", "text/plain", b"").problem(),
        "malformed"
    );
    let renew = json!({"identifiers": ids, "replaces": cert_id});
    let r = c.post("/acme/new-order", Some(renew.clone()));
    assert_eq!(r.json()["replaces"], cert_id.as_str(), "{r:?}");
    assert_eq!(c.post("/acme/new-order", Some(renew.clone())).problem(), "alreadyReplaced");
    // Also when its serial is spelled with a leading zero byte.
    let zero_serial = [&[0u8][..], cert.tbs_certificate.raw_serial()].concat();
    let padded =
        json!({"identifiers": ids, "replaces": format!("{}.{}", b64(&aki), b64(&zero_serial))});
    assert_eq!(c.post("/acme/new-order", Some(padded)).problem(), "alreadyReplaced");
    // An order that failed (its authorization deactivated) replaces nothing: the next may
    // (RFC 9773 §5).
    let authz = r.json()["authorizations"][0].as_str().unwrap().to_owned();
    let gone = c.post(&path_of(&authz), Some(json!({"status": "deactivated"})));
    assert_eq!(gone.json()["status"], "deactivated", "{gone:?}");
    let again = c.post("/acme/new-order", Some(renew.clone()));
    assert_eq!(
        (again.status, again.json()["replaces"].clone()),
        (201, json!(cert_id)),
        "{again:?}"
    );
    let mut stranger = Client::new(&server, &dir);
    stranger.register();
    assert_eq!(stranger.post("/acme/new-order", Some(renew)).problem(), "unauthorized");

    // Names outside the policy are still validated.
    let r = c.post(
        "/acme/new-order",
        Some(json!({"identifiers": [{"type": "dns", "value": "svc.internal"}]})),
    );
    assert_eq!(r.json()["status"], "pending");
    server.stop();
}

/// ACME profiles (draft-aaron-acme-profiles): the directory lists them, an order names one
/// (or gets the default), the certificate follows it (validity, key usages), identifiers
/// outside a profile and unknown profiles are refused, and an External Account Binding key
/// can limit its account to some profiles.
#[test]
fn certificate_profiles() {
    let dir = temp_dir("strongroom-acme-profiles");
    let config = dir.join("acme.toml");
    std::fs::write(
        &config,
        r#"[acme]
preauthorized = ["*.svc.internal"]
default_profile = "mtls"

[acme.profiles.mtls]
description = "24-hour certificates for mutual TLS"
validity = "24h"

[acme.profiles.server]
description = "7-day TLS server certificates for the web tier"
validity = "7d"
client_auth = false
identifiers = ["*.web.svc.internal"]
excluded_identifiers = ["*.admin.web.svc.internal", "db.web.svc.internal"]
revocation_pointers = false
key_types = ["p256", "rsa3072"]

[acme.profiles.ephemeral]
description = "1-hour certificates, not stored"
validity = "1h"
store = false

[ca]
url = "http://ca.svc.internal"

[access]
admins = ["CN=boss.svc.internal", "CN=boss.web.svc.internal"]
"#,
    )
    .unwrap();
    let server = Server::start_with(&dir, &["--config", config.to_str().unwrap()]);
    let mut c = Client::new(&server, &dir);
    let d = c.raw("GET", "/acme/directory", "text/plain", b"").json();
    assert_eq!(
        d["meta"]["profiles"],
        json!({"ephemeral": "1-hour certificates, not stored",
               "mtls": "24-hour certificates for mutual TLS",
               "server": "7-day TLS server certificates for the web tier"})
    );
    c.register();

    // Issues under `profile` (None: the default) for `name`: the certificate's validity in
    // hours, whether it allows client authentication, its profile, whether it names a CRL.
    let mut issue =
        |profile: Option<&str>, name: &str| -> Result<(i64, bool, Value, bool), String> {
            let mut payload = json!({"identifiers": [{"type": "dns", "value": name}]});
            if let Some(p) = profile {
                payload["profile"] = json!(p);
            }
            let r = c.post("/acme/new-order", Some(payload));
            if r.status != 201 {
                return Err(r.problem());
            }
            let order = r.json();
            let key = rcgen::KeyPair::generate().unwrap();
            let done = c.post(
                &path_of(order["finalize"].as_str().unwrap()),
                Some(json!({"csr": csr(&[name], &key)})),
            );
            let done = done.json();
            assert_eq!(done["status"], "valid", "{done}");
            let pem = c.post(&path_of(done["certificate"].as_str().unwrap()), None).body;
            let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
            let cert = pem.parse_x509().unwrap();
            let v = cert.validity();
            let hours = (v.not_after.timestamp() - v.not_before.timestamp() + 1800) / 3600;
            let eku = cert.extended_key_usage().unwrap().unwrap().value.clone();
            assert!(eku.server_auth);
            let crl = cert.extensions().iter().any(|e| {
                matches!(
                    e.parsed_extension(),
                    x509_parser::extensions::ParsedExtension::CRLDistributionPoints(_)
                )
            });
            Ok((hours, eku.client_auth, done["profile"].clone(), crl))
        };
    let issued = issue(None, "a.svc.internal").unwrap();
    assert_eq!(issued, (24, true, json!("mtls"), true), "the default profile");
    let issued = issue(Some("server"), "www.web.svc.internal").unwrap();
    assert_eq!(issued, (7 * 24, false, json!("server"), false), "no revocation pointers");
    assert_eq!(issue(Some("server"), "db.svc.internal").unwrap_err(), "rejectedIdentifier");
    // The profile's excluded subtrees win over its permitted ones.
    for excluded in ["db.web.svc.internal", "x.admin.web.svc.internal"] {
        assert_eq!(issue(Some("server"), excluded).unwrap_err(), "rejectedIdentifier");
    }
    assert_eq!(issue(Some("server"), "admin.web.svc.internal").unwrap().2, json!("server"));
    assert_eq!(issue(Some("nosuch"), "a.svc.internal").unwrap_err(), "invalidProfile");
    // A client certificate's subject is an identity: an administrator's is not for ACME,
    // while a server-only certificate may carry the name.
    assert_eq!(issue(None, "boss.svc.internal").unwrap_err(), "rejectedIdentifier");
    assert!(!issue(Some("server"), "boss.web.svc.internal").unwrap().1, "no clientAuth");
    let issued = issue(Some("ephemeral"), "tmp.svc.internal").unwrap();
    assert_eq!(issued, (1, true, json!("ephemeral"), false), "unstored: no revocation pointers");
    // Key types the profile does not take: badCSR, and the order stays ready for another.
    let r = c.post(
        "/acme/new-order",
        Some(json!({"identifiers": [{"type": "dns", "value": "p384.web.svc.internal"}],
                    "profile": "server"})),
    );
    let finalize = path_of(r.json()["finalize"].as_str().unwrap());
    let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let refused = c.post(&finalize, Some(json!({"csr": csr(&["p384.web.svc.internal"], &p384)})));
    assert_eq!(refused.problem(), "badCSR", "{refused:?}");
    assert!(refused.json()["detail"].as_str().unwrap().contains("p384"), "{refused:?}");
    let p256 = rcgen::KeyPair::generate().unwrap();
    let done = c.post(&finalize, Some(json!({"csr": csr(&["p384.web.svc.internal"], &p256)})));
    assert_eq!(done.json()["status"], "valid", "{done:?}");

    // A DNS name may be in the CSR's common name alone (RFC 8555 §7.4).
    let r = c.post(
        "/acme/new-order",
        Some(json!({"identifiers": [{"type": "dns", "value": "cn-only.svc.internal"}]})),
    );
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, "cn-only.svc.internal");
    let cn_only =
        b64(params.serialize_request(&rcgen::KeyPair::generate().unwrap()).unwrap().der());
    let done =
        c.post(&path_of(r.json()["finalize"].as_str().unwrap()), Some(json!({"csr": cn_only})));
    assert_eq!(done.json()["status"], "valid", "{done:?}");
    // A name too long for a common name cannot be an order's only one.
    let long = format!("{}.svc.internal", "a".repeat(60));
    let r =
        c.post("/acme/new-order", Some(json!({"identifiers": [{"type": "dns", "value": long}]})));
    assert_eq!(r.problem(), "rejectedIdentifier", "{r:?}");

    // No-store mode: the certificate downloads, but the CA keeps no record of it, so it is
    // neither listed nor revocable.
    let r = c.post(
        "/acme/new-order",
        Some(json!({"identifiers": [{"type": "dns", "value": "tmp2.svc.internal"}],
                    "profile": "ephemeral"})),
    );
    let key = rcgen::KeyPair::generate().unwrap();
    let done = c.post(
        &path_of(r.json()["finalize"].as_str().unwrap()),
        Some(json!({"csr": csr(&["tmp2.svc.internal"], &key)})),
    );
    let pem = c.post(&path_of(done.json()["certificate"].as_str().unwrap()), None).body;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let serial = hex::encode(pem.parse_x509().unwrap().raw_serial());
    let (status, _) =
        Api::admin(&server).call("GET", &format!("/v1/pki/cert/{serial}"), json!(null));
    assert_eq!(status, 404, "not recorded");
    let revoked = c.post("/acme/revoke-cert", Some(json!({"certificate": b64(&pem.contents)})));
    assert_eq!(revoked.problem(), "unauthorized", "{revoked:?}");

    // An EAB key limited to `server`: its account may not order `mtls`.
    let admin = Api::admin(&server);
    let (status, body) = admin.call("POST", "/v1/acme/eab", json!({"profiles": ["nosuch"]}));
    assert_eq!(status, 400, "{body}");
    let made = admin.ok("POST", "/v1/acme/eab", json!({"profiles": ["server"]}));
    assert_eq!(made["data"]["profiles"], json!(["server"]));
    let id = made["data"]["id"].as_str().unwrap().to_owned();
    let hmac_key = B64.decode(made["data"]["key"].as_str().unwrap()).unwrap();
    let mut bound = Client::new(&server, &dir);
    let binding = eab(&id, &hmac_key, &bound.key);
    let r = bound.post(
        "/acme/new-account",
        Some(json!({"termsOfServiceAgreed": true, "externalAccountBinding": binding})),
    );
    assert_eq!(r.status, 201, "{r:?}");
    bound.kid = r.header("location").map(str::to_owned);
    let order = |c: &mut Client, profile: &str| {
        c.post(
            "/acme/new-order",
            Some(json!({"identifiers": [{"type": "dns", "value": "x.web.svc.internal"}],
                        "profile": profile})),
        )
    };
    assert_eq!(order(&mut bound, "mtls").problem(), "unauthorized");
    assert_eq!(order(&mut bound, "server").status, 201);
    let listed = admin.ok("GET", "/v1/acme/eab", json!(null));
    assert_eq!(listed["data"]["keys"][0]["profiles"], json!(["server"]), "{listed}");

    // An order placed before its name became an administrator's is not finalized after.
    let r = c.post(
        "/acme/new-order",
        Some(json!({"identifiers": [{"type": "dns", "value": "ops.svc.internal"}]})),
    );
    let finalize = path_of(r.json()["finalize"].as_str().unwrap());
    server.stop();
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace("admins = [", "admins = [\"CN=ops.svc.internal\", ");
    std::fs::write(&config, text).unwrap();
    let server = Server::start_with(&dir, &["--config", config.to_str().unwrap()]);
    c.addr = server.https;
    c.nonce = None;
    let key = rcgen::KeyPair::generate().unwrap();
    let refused = c.post(&finalize, Some(json!({"csr": csr(&["ops.svc.internal"], &key)})));
    assert_eq!(refused.problem(), "rejectedIdentifier", "{refused:?}");
    server.stop();
}
