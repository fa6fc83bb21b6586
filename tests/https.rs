//! The HTTPS listener: /health with or without a client certificate, and KMIP over HTTPS
//! (`POST /kmip`) in the TTLV, XML and JSON encodings, which requires a client certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use kmip::enums::{Operation, ResultReason, ResultStatus};
use kmip::message::ResponseMessage;
use kmip::ttlv::binary::Limits;
use kmip::ttlv::{binary, json, xml};
use kmip::ProtocolVersion;

#[test]
fn health_over_https() {
    let dir = temp_dir("strongroom-https");
    let server = Server::start(&dir);
    let certs = client_cert(&dir, "alice");
    for config in [tls_config(&certs, None), tls_config(&certs, Some("alice"))] {
        let (status, body) = https(&server, config, "GET", "/health", "text/plain", b"");
        assert_eq!(status, 200);
        assert!(String::from_utf8_lossy(&body).contains(r#""status":"ok""#));
    }
    let (status, _) = https(&server, tls_config(&certs, None), "GET", "/nope", "text/plain", b"");
    assert_eq!(status, 404);
    server.stop();
}

#[test]
fn kmip_over_https_in_three_encodings() {
    let dir = temp_dir("strongroom-https-kmip");
    let server = Server::start(&dir);
    let certs = client_cert(&dir, "alice");
    let alice = || tls_config(&certs, Some("alice"));
    let limits = Limits::default();
    let create = request(
        ProtocolVersion::V2_1,
        vec![(Operation::CREATE, create_payload(ProtocolVersion::V2_1, &aes_attributes(256)))],
    )
    .to_ttlv();

    // XML (the form of the OASIS test cases).
    let (status, body) =
        https(&server, alice(), "POST", "/kmip", "text/xml", xml::encode(&create).as_bytes());
    assert_eq!(status, 200);
    let r = ResponseMessage::from_ttlv(
        &xml::decode(std::str::from_utf8(&body).unwrap(), &limits).unwrap(),
    )
    .unwrap();
    assert_eq!(r.batch_items[0].result_status, ResultStatus::SUCCESS);
    let id = uid_of(r.batch_items[0].payload.as_ref().unwrap());

    // JSON: Get the same key.
    let get = request(ProtocolVersion::V2_1, vec![(Operation::GET, vec![uid(&id)])]).to_ttlv();
    let (status, body) =
        https(&server, alice(), "POST", "/kmip", "application/json", json::encode(&get).as_bytes());
    assert_eq!(status, 200);
    let r = ResponseMessage::from_ttlv(
        &json::decode(std::str::from_utf8(&body).unwrap(), &limits).unwrap(),
    )
    .unwrap();
    let key = key_material(r.batch_items[0].payload.as_ref().unwrap());
    assert_eq!(key.len(), 32);

    // TTLV over HTTPS, and the same key over the KMIP port.
    let (status, body) =
        https(&server, alice(), "POST", "/kmip", "application/octet-stream", &binary::encode(&get));
    assert_eq!(status, 200);
    let r = ResponseMessage::from_ttlv(&binary::decode(&body, &limits).unwrap()).unwrap();
    assert_eq!(key_material(r.batch_items[0].payload.as_ref().unwrap()), key);
    let mut c = Client::connect(&server, &certs, "alice");
    assert_eq!(key_material(&c.ok(Operation::GET, vec![uid(&id)])), key);

    // No client certificate: refused; another client: KMIP Permission Denied.
    let anon = tls_config(&certs, None);
    let (status, _) =
        https(&server, anon, "POST", "/kmip", "text/xml", xml::encode(&get).as_bytes());
    assert_eq!(status, 401);
    let bob = client_cert(&dir, "bob");
    let (_, body) = https(
        &server,
        tls_config(&bob, Some("bob")),
        "POST",
        "/kmip",
        "text/xml",
        xml::encode(&get).as_bytes(),
    );
    let r = ResponseMessage::from_ttlv(
        &xml::decode(std::str::from_utf8(&body).unwrap(), &limits).unwrap(),
    )
    .unwrap();
    assert_eq!(r.batch_items[0].result_reason, Some(ResultReason::PERMISSION_DENIED));

    // Unsupported media type; malformed XML gets a KMIP Invalid Message.
    let (status, _) = https(&server, alice(), "POST", "/kmip", "text/plain", b"hello");
    assert_eq!(status, 415);
    let (status, body) =
        https(&server, alice(), "POST", "/kmip", "text/xml", b"<RequestMessage><Oops");
    assert_eq!(status, 200);
    let r = ResponseMessage::from_ttlv(
        &xml::decode(std::str::from_utf8(&body).unwrap(), &limits).unwrap(),
    )
    .unwrap();
    assert_eq!(r.batch_items[0].result_reason, Some(ResultReason::INVALID_MESSAGE));
    // A body over the size limit is refused; without a certificate, before it is read.
    let big = vec![b' '; 2 << 20];
    let (status, _) = https(&server, alice(), "POST", "/kmip", "text/xml", &big);
    assert_eq!(status, 413);
    let (status, _) = https(&server, tls_config(&certs, None), "POST", "/kmip", "text/xml", &big);
    assert_eq!(status, 401);
    // Elsewhere the limit is 256 KiB.
    let jws = &big[..300 << 10];
    let (status, body) =
        https(&server, alice(), "POST", "/acme/new-account", "application/jose+json", jws);
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("malformed") && body.contains("limit"), "{body}");
    server.stop();
}

/// A request whose body stops arriving is answered 408 once `request_timeout_secs` has
/// passed, without a client certificate too: a client cannot hold a connection (and its
/// slot) by trickling a body it never finishes.
#[test]
fn a_body_that_stops_arriving_is_timed_out() {
    use std::io::{Read, Write};
    let dir = temp_dir("strongroom-https-slow");
    let config = dir.join("slow.toml");
    std::fs::write(&config, "[kmip]\nrequest_timeout_secs = 2\n").unwrap();
    let server = Server::start_with(&dir, &["--config", config.to_str().unwrap()]);
    let certs = client_cert(&dir, "alice");
    let tcp = std::net::TcpStream::connect(server.https).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(tls_config(&certs, None), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let head =
        "POST /acme/new-order HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/jose+json\r\n\
                Content-Length: 100000\r\n\r\n0123456789";
    tls.write_all(head.as_bytes()).unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    server.stop();
}

/// Clients need no certificate on the HTTPS listener, so one address may hold at most an
/// eighth of its connections (`[kmip] max_connections`, 16 here: 2) without one, however
/// idle; clients with a certificate of this CA are not counted once connected.
#[test]
fn one_address_holds_an_eighth_of_the_connections() {
    let dir = temp_dir("strongroom-https-per-address");
    let config = dir.join("few.toml");
    std::fs::write(&config, "[kmip]\nmax_connections = 16\n").unwrap();
    let server = Server::start_with(&dir, &["--config", config.to_str().unwrap()]);
    let certs = client_cert(&dir, "alice");
    let connect = |identity: Option<&str>| {
        let mut tcp = std::net::TcpStream::connect(server.https).unwrap();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut conn = rustls::ClientConnection::new(tls_config(&certs, identity), name).unwrap();
        conn.complete_io(&mut tcp).ok()?;
        // An answer: the server has checked the certificate, if any.
        std::io::Write::write_all(&mut conn.writer(), b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .ok()?;
        conn.complete_io(&mut tcp).ok()?;
        let mut answer = [0u8; 12];
        let mut stream = rustls::Stream::new(&mut conn, &mut tcp);
        std::io::Read::read_exact(&mut stream, &mut answer).ok()?;
        Some((conn, tcp))
    };
    let open = || connect(None);
    // Clients with a certificate of this CA do not count against their address once
    // connected.
    let known: Vec<_> = (0..3).map(|_| connect(Some("alice")).expect("a known client")).collect();
    let held: Vec<_> = (0..2).map(|_| open().expect("within the allowance")).collect();
    assert!(open().is_none(), "a third connection from the same address");
    drop(known);
    drop(held);
    // Freed as the server sees them close.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while open().is_none() {
        assert!(std::time::Instant::now() < deadline, "the slots were not freed");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    server.stop();
}
