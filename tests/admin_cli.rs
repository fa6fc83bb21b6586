//! `strongroom admin` against a running server, over its HTTPS API with a token: status,
//! key and certificate listings, one key's attributes, leases, certificate and lease
//! revocation; a bad token is refused with the server's answer; the calls are audited.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;
use kmip::attributes::{names, Attribute};
use kmip::enums::Operation;
use kmip::ProtocolVersion;
use serde_json::{json, Value};

/// Runs `strongroom admin ARGS` for `server`; its exit status and printed JSON (or error).
fn admin(server: &Server, token: Option<&str>, args: &[&str]) -> (bool, Value, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["admin", "--data-dir"])
        .arg(&server.data_dir)
        .args(["--addr", &server.https.to_string()])
        .args(args)
        .env("STRONGROOM_LOG", "warn")
        .env_remove("STRONGROOM_TOKEN");
    if let Some(t) = token {
        cmd.env("STRONGROOM_TOKEN", t);
    }
    let out = cmd.output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.success(), json, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn ok(server: &Server, args: &[&str]) -> Value {
    let (success, json, err) = admin(server, None, args);
    assert!(success, "admin {args:?}: {err}");
    json
}

#[test]
fn admin_commands_over_the_api() {
    let (_dir, server, _certs, mut c) = started("strongroom-admin", "app");
    let mut attrs = aes_attributes(256);
    attrs.push(Attribute::new(names::NAME, name_value("payments-key")));
    let id = uid_of(&c.ok(Operation::CREATE, create_payload(ProtocolVersion::V1_4, &attrs)));

    let status = ok(&server, &["status"]);
    assert_eq!(status["store"], "sqlite");
    assert_eq!(status["leader"], true);
    assert_eq!(status["hsm"], "ok");
    assert_eq!(status["managed_objects"], 1);
    assert!(status["ca"]["subject"].as_str().unwrap().contains("CN="), "{status}");

    let keys = ok(&server, &["keys"]);
    let listed = &keys["objects"][0];
    assert_eq!(
        (listed["id"].as_str(), &listed["names"]),
        (Some(id.as_str()), &json!(["payments-key"]))
    );
    assert_eq!(listed["owner"], "CN=app");
    assert_eq!(ok(&server, &["keys", "--offset", "1"])["objects"], json!([]));
    let key = ok(&server, &["key", &id]);
    assert_eq!(key["state"], 1, "Pre-Active");
    let names: Vec<&Value> =
        key["attributes"].as_array().unwrap().iter().map(|a| &a["name"]).collect();
    assert!(names.contains(&&json!("Cryptographic Length")), "{key}");
    let (found, _, err) = admin(&server, None, &["key", "no-such-object"]);
    assert!(!found && err.contains("404"), "{err}");

    // A certificate and its lease, issued through the API, then revoked with the CLI.
    let api = Api::admin(&server);
    api.ok(
        "POST",
        "/v1/pki/roles/svc",
        json!({ "allowed_domains": ["svc.internal"], "allow_subdomains": true }),
    );
    let issued = api.ok("POST", "/v1/pki/issue/svc", json!({ "common_name": "a.svc.internal" }));
    let serial = issued["data"]["serial_number"].as_str().unwrap().to_owned();
    let lease = issued["lease_id"].as_str().unwrap().to_owned();
    // Listed beside the client certificate `strongroom client-cert` made for the test.
    let listed = |certs: &Value| {
        let all = certs["certificates"].as_array().unwrap();
        assert_eq!(all.len(), 2, "{certs}");
        all.iter().find(|c| c["serial_number"] == serial.as_str()).cloned().unwrap()
    };
    let certs = ok(&server, &["certs"]);
    assert_eq!(listed(&certs)["revocation_time"], Value::Null);
    assert_eq!(ok(&server, &["leases", "pki/issue/svc/"])["keys"].as_array().unwrap().len(), 1);
    ok(&server, &["revoke-cert", &serial]);
    let certs = ok(&server, &["certs"]);
    assert!(listed(&certs)["revocation_time"].as_i64().is_some(), "{certs}");
    assert_eq!(ok(&server, &["status"])["certificates_revoked"], 1);
    ok(&server, &["revoke-lease", &lease]);

    // CA rotation: a new intermediate becomes the default issuer; the old one stays listed.
    let before = ok(&server, &["issuers"]);
    assert_eq!(before["keys"].as_array().unwrap().len(), 2, "root and one intermediate");
    let rotated = ok(&server, &["rotate-ca"]);
    let id = rotated["issuer_id"].as_str().unwrap();
    assert_eq!(rotated["default"], true);
    let after = ok(&server, &["issuers"]);
    assert_eq!(after["keys"].as_array().unwrap().len(), 3);
    assert_eq!(after["keys"][2], id);
    assert_eq!(ok(&server, &["status"])["ca"]["default_issuer"], id);
    let rooted = ok(&server, &["rotate-root"]);
    let (root, intermediate) = (&rooted["root"]["issuer_id"], &rooted["intermediate"]["issuer_id"]);
    let after = ok(&server, &["issuers"]);
    assert_eq!(after["keys"][1], *root, "{after}");
    assert_eq!(after["keys"][4], *intermediate);
    assert_eq!(after["key_info"][intermediate.as_str().unwrap()]["default"], true);
    let revoked = ok(&server, &["revoke-issuer", id, "--reason", "4"]);
    assert_eq!(revoked["revoked"], true);
    let (refused, _, err) =
        admin(&server, None, &["revoke-issuer", intermediate.as_str().unwrap()]);
    assert!(!refused && err.contains("rotate first"), "{err}");
    let looked = api.ok("POST", "/v1/sys/leases/lookup", json!({ "lease_id": lease }));
    assert_eq!(looked["data"]["state"], "revoked", "{looked}");

    // The server decides: a wrong token is refused, and every call was audited.
    let (success, _, err) = admin(&server, Some("not-a-token"), &["status"]);
    assert!(!success && err.contains("403"), "{err}");
    let audit = api.ok("GET", "/v1/sys/audit?limit=1000", json!(null));
    let operations: Vec<&str> = audit["data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["operation"].as_str())
        .collect();
    let audited = [
        "GET /v1/sys/status",
        "GET /v1/sys/keys",
        "POST /v1/pki/revoke",
        "POST /v1/pki/intermediate/rotate",
        "POST /v1/pki/root/rotate",
        "POST /v1/pki/issuer/",
    ];
    for op in audited {
        assert!(operations.iter().any(|o| o.starts_with(op)), "{op} not audited: {operations:?}");
    }
    server.stop();
}
