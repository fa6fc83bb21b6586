//! `schemas/openapi.json` describes the API as served: every documented path and method
//! is routed (and refuses a caller without credentials, unless public), and every route in
//! the router's source is documented.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{https_with, temp_dir, tls_config, Server};

/// Every documented (path, method), and those documented as public (`"security": []`).
fn documented() -> (BTreeSet<(String, String)>, BTreeSet<String>) {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/openapi.json"))
            .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let (mut out, mut public) = (BTreeSet::new(), BTreeSet::new());
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "delete"] {
            if let Some(op) = item.get(method) {
                out.insert((path.clone(), method.to_owned()));
                if op["security"] == serde_json::json!([]) {
                    public.insert(path.clone());
                }
            }
        }
    }
    (out, public)
}

/// The routes in the router's source (`.route("PATH", get(..).post(..))`).
fn routed() -> BTreeSet<(String, String)> {
    let src =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http/api/mod.rs"))
            .unwrap();
    let mut out = BTreeSet::new();
    for chunk in src.split(".route(").skip(1) {
        let chunk = chunk.split(".route_layer(").next().unwrap();
        let path = chunk.split('"').nth(1).unwrap().replace("{*prefix}", "{prefix}");
        for method in ["get", "post", "put", "delete"] {
            // `put(` as a word, not the end of `is_input(`.
            let called = chunk.match_indices(&format!("{method}(")).any(|(i, _)| {
                !chunk[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            });
            if called {
                out.insert((path.clone(), method.to_owned()));
            }
        }
    }
    out
}

#[test]
fn every_route_is_documented_and_every_documented_route_is_served() {
    let (documented, public) = documented();
    let routed = routed();
    assert!(routed.len() >= 40, "parsed too few routes: {routed:?}");
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    assert!(undocumented.is_empty(), "routes missing from schemas/openapi.json: {undocumented:?}");
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(unrouted.is_empty(), "documented but not routed: {unrouted:?}");

    let dir = temp_dir("strongroom-openapi");
    let server = Server::start(&dir);
    for (path, method) in &documented {
        let concrete = path
            .replace("{prefix}", "database/creds/x")
            .replace("/issuer/{id}", "/issuer/default")
            .replace(['{', '}'], "");
        let (status, body) = https_with(
            server.https,
            tls_config(&dir, None),
            &method.to_uppercase(),
            &concrete,
            &[],
            b"",
        );
        let want = if public.contains(path) { 200 } else { 401 };
        assert_eq!(status, want, "{method} {concrete}: {}", String::from_utf8_lossy(&body));
    }
    server.stop();
}
