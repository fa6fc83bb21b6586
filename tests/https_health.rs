//! The HTTPS listener: /health answers over TLS with the CA's server certificate, with or
//! without a client certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::*;
use rustls::pki_types::ServerName;

fn get(server: &Server, config: std::sync::Arc<rustls::ClientConfig>, path: &str) -> String {
    let tcp = TcpStream::connect(server.https).unwrap();
    let conn =
        rustls::ClientConnection::new(config, ServerName::try_from("127.0.0.1").unwrap()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(tls, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = tls.read_to_string(&mut out);
    out
}

#[test]
fn health_over_https() {
    let dir = temp_dir("strongroom-https");
    let server = Server::start(&dir);
    let certs = client_cert(&dir, "alice");
    for config in [tls_config(&certs, None), tls_config(&certs, Some("alice"))] {
        let response = get(&server, config, "/health");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.contains(r#""status":"ok""#), "{response}");
    }
    let missing = get(&server, tls_config(&certs, None), "/no-such-route");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    server.stop();
}
