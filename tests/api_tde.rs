//! The TDE key mount (`/v1/tde/`) over HTTPS: Vault's KV version 2 read path as database
//! plugins use it, versions that follow KMIP Re-key, policies, destruction only with force,
//! and the audit record of each key read. MariaDB itself reads these keys in
//! `tests/mariadb_tde.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use kmip::attributes::{names, Attribute};
use kmip::enums::{LinkType, ObjectType, Operation, RevocationReasonCode};
use kmip::{Tag, Ttlv, Value};
use serde_json::json;

/// The key material of key `name` (latest, or `version`) as the plugin reads it.
fn read_key(api: &Api, name: &str, version: Option<u32>) -> (u16, serde_json::Value) {
    let path = match version {
        Some(v) => format!("/v1/tde/data/{name}?version={v}"),
        None => format!("/v1/tde/data/{name}"),
    };
    api.call("GET", &path, json!(null))
}

fn material(api: &Api, name: &str, version: Option<u32>) -> (u64, String) {
    let (status, body) = read_key(api, name, version);
    assert_eq!(status, 200, "{body}");
    let hex = body["data"]["data"]["data"].as_str().unwrap().to_owned();
    (body["data"]["metadata"]["version"].as_u64().unwrap(), hex)
}

fn locate_name(c: &mut Client, name: &str) -> Vec<String> {
    let r = c.ok(
        Operation::LOCATE,
        vec![Attribute::new(names::NAME, name_value(name)).to_v1(), {
            Attribute::new(names::OBJECT_TYPE, Value::Enumeration(ObjectType::SYMMETRIC_KEY.0))
                .to_v1()
        }],
    );
    r.find_all(Tag::UNIQUE_IDENTIFIER).map(|t| t.as_text().unwrap().to_owned()).collect()
}

#[test]
fn versions_follow_rotation_and_kmip_rekey() {
    let dir = temp_dir("strongroom-tde");
    let server = Server::start(&dir);
    let admin = Api::admin(&server);

    // What MariaDB's plugin checks at start: the mount is KV version 2.
    let tune = admin.ok("GET", "/v1/sys/mounts/tde/tune", json!(null));
    assert_eq!(tune["options"]["version"], "2", "{tune}");
    assert_eq!(admin.call("GET", "/v1/sys/mounts/other/tune", json!(null)).0, 404);

    // Key 1, owned by the KMIP client CN=dba so it can manage it over KMIP too.
    let created = admin.ok("POST", "/v1/tde/keys/1", json!({ "owner": "CN=dba" }));
    assert_eq!(created["data"]["version"], 1);
    let (status, body) = admin.call("POST", "/v1/tde/keys/1", json!(null));
    assert_eq!(status, 409, "creating twice: {body}");
    let (v, k1) = material(&admin, "1", None);
    assert_eq!((v, k1.len()), (1, 64), "AES-256 as hex");

    let rotated = admin.ok("POST", "/v1/tde/keys/1/rotate", json!(null));
    assert_eq!(rotated["data"]["version"], 2);
    let (v, k2) = material(&admin, "1", None);
    assert_eq!(v, 2);
    assert_ne!(k1, k2);
    assert_eq!(material(&admin, "1", Some(1)), (1, k1.clone()), "old versions stay readable");
    assert_eq!(material(&admin, "1", Some(0)).0, 2, "version 0 is the latest");
    for (path, want) in [
        ("/v1/tde/data/1?version=3", 404),
        ("/v1/tde/data/9", 404),
        ("/v1/tde/data/bad%20name", 400),
        ("/v1/other/data/1", 404),
    ] {
        let (status, body) = admin.call("GET", path, json!(null));
        assert_eq!(status, want, "{path}: {body}");
        assert!(body["errors"][0].is_string(), "{path}: {body}");
    }

    // The key as KMIP clients see it: one object named tde/1 (the latest), Re-key adds
    // version 3, and the old versions are linked objects.
    let certs = client_cert(&dir, "dba");
    let mut c = Client::connect(&server, &certs, "dba");
    let found = locate_name(&mut c, "tde/1");
    assert_eq!(found.len(), 1, "{found:?}");
    let got = c.ok(Operation::GET, vec![uid(&found[0])]);
    assert_eq!(hex::encode(key_material(&got)), k2);
    let rekeyed = uid_of(&c.ok(Operation::RE_KEY, vec![uid(&found[0])]));
    let k3 = hex::encode(key_material(&c.ok(Operation::GET, vec![uid(&rekeyed)])));
    assert_eq!(material(&admin, "1", None), (3, k3));
    assert_eq!(material(&admin, "1", Some(2)), (2, k2.clone()));

    let meta = admin.ok("GET", "/v1/tde/metadata/1", json!(null));
    assert_eq!(meta["data"]["current_version"], 3, "{meta}");
    assert_eq!(meta["data"]["versions"]["1"]["destroyed"], false, "{meta}");
    let listed = admin.ok("LIST", "/v1/tde/metadata", json!(null));
    assert_eq!(listed["data"]["keys"], json!(["1"]), "{listed}");
    let info = admin.ok("GET", "/v1/tde/keys/1", json!(null));
    assert_eq!(info["data"]["versions"][2]["id"], rekeyed.as_str(), "{info}");
    assert_eq!(info["data"]["versions"][0]["owner"], "CN=dba", "{info}");

    // Links are a client's to set, but a version is only what Re-key made one: a key's
    // owner cannot link its key to another owner's and have the API serve that.
    let bob_certs = client_cert(&dir, "bob");
    let mut bob = Client::connect(&server, &bob_certs, "bob");
    let theirs =
        uid_of(&bob.ok(Operation::CREATE, create_payload(bob.version, &aes_attributes(256))));
    let their_key = hex::encode(key_material(&bob.ok(Operation::GET, vec![uid(&theirs)])));
    admin.ok("POST", "/v1/tde/keys/5", json!({ "owner": "CN=dba" }));
    let five = locate_name(&mut c, "tde/5").pop().unwrap();
    let link = Value::Structure(vec![
        enumeration(Tag::LINK_TYPE, LinkType::REPLACED_OBJECT_LINK.0),
        text(Tag::LINKED_OBJECT_IDENTIFIER, &theirs),
    ]);
    c.ok(Operation::ADD_ATTRIBUTE, vec![uid(&five), Attribute::new("Link", link).to_v1()]);
    let (status, body) = read_key(&admin, "5", Some(1));
    assert_eq!(status, 500, "{body}");
    assert!(!body.to_string().contains(&their_key), "{body}");

    // A revoked latest version no longer encrypts (403) but still decrypts by number.
    c.ok(
        Operation::REVOKE,
        vec![uid(&rekeyed), revocation(RevocationReasonCode::CESSATION_OF_OPERATION)],
    );
    let (status, body) = read_key(&admin, "1", None);
    assert_eq!(status, 403, "{body}");
    assert_eq!(material(&admin, "1", Some(3)).0, 3);
    // Rotating it gives a version that encrypts again: the revocation's Deactivation Date
    // is not carried over.
    let rotated = admin.ok("POST", "/v1/tde/keys/1/rotate", json!(null));
    assert_eq!(material(&admin, "1", None).0, 4);
    // A version scheduled for later (Re-key with an Offset: Pre-Active for an hour) is not
    // the one to encrypt with until then.
    let four = rotated["data"]["id"].as_str().unwrap();
    c.ok(Operation::RE_KEY, vec![uid(four), Ttlv::new(Tag::OFFSET, Value::Interval(3600))]);
    assert_eq!(material(&admin, "1", None).0, 4);
    assert_eq!(material(&admin, "1", Some(4)).0, 4);
    assert_eq!(admin.ok("GET", "/v1/tde/metadata/1", json!(null))["data"]["current_version"], 5);
    let in_use = json!({ "versions": [4], "force": true });
    assert_eq!(admin.call("POST", "/v1/tde/destroy/1", in_use).0, 409, "the version in use");
    server.stop();
}

/// Rotations at the same moment each add one version or are refused (409): none re-keys a
/// version another has already replaced, which would leave a key outside the chain.
#[test]
fn concurrent_rotations_keep_one_chain() {
    let dir = temp_dir("strongroom-tde-race");
    let server = Server::start(&dir);
    let admin = Api::admin(&server);
    admin.ok("POST", "/v1/tde/keys/r", json!(null));
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let rotate = || admin.call("POST", "/v1/tde/keys/r/rotate", json!(null)).0;
        let handles: Vec<_> = (0..8).map(|_| s.spawn(rotate)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| [200, 409].contains(s)), "{statuses:?}");
    let rotated = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(material(&admin, "r", None).0 as usize, 1 + rotated, "{statuses:?}");
    let objects = admin.ok("GET", "/v1/sys/keys", json!(null));
    let count = objects["data"]["objects"].as_array().unwrap().len();
    assert_eq!(count, 1 + rotated, "every key is a version: {objects}");
    server.stop();
}

#[test]
fn policies_force_and_audit() {
    let dir = temp_dir("strongroom-tde-policy");
    let server = Server::start(&dir);
    let admin = Api::admin(&server);
    admin.ok("POST", "/v1/tde/keys/7", json!({ "bits": 128 }));
    admin.ok("POST", "/v1/tde/keys/7/rotate", json!(null));
    let (status, body) = admin.call("POST", "/v1/tde/keys/8", json!({ "bits": 100 }));
    assert_eq!(status, 400, "{body}");

    // The policy a MariaDB server's token gets: read keys and the mount's settings.
    let policy = r#"
        path "tde/data/*" { capabilities = ["read"] }
        path "sys/mounts/tde/tune" { capabilities = ["read"] }
    "#;
    admin.ok("PUT", "/v1/sys/policies/acl/mariadb", json!({ "policy": policy }));
    let token = admin.ok("POST", "/v1/auth/token/create", json!({ "policies": ["mariadb"] }));
    let db = admin.with_token(token["auth"]["client_token"].as_str().unwrap());
    assert_eq!(material(&db, "7", None).1.len(), 32, "AES-128 as hex");
    assert_eq!(material(&db, "7", Some(1)).0, 1);
    assert_eq!(db.call("POST", "/v1/tde/keys/7/rotate", json!(null)).0, 403);
    assert_eq!(db.call("POST", "/v1/tde/keys/9", json!(null)).0, 403);
    assert_eq!(db.call("GET", "/v1/tde/metadata/7", json!(null)).0, 403);
    assert_eq!(admin.with_token("s.wrong").call("GET", "/v1/tde/data/7", json!(null)).0, 403);
    let (status, _) =
        https_with(server.https, tls_config(&dir, None), "GET", "/v1/tde/data/7", &[], b"");
    assert_eq!(status, 401);
    // Only root may hand a key to another owner.
    admin.ok(
        "PUT",
        "/v1/sys/policies/acl/tde-admin",
        json!({ "policy": "path \"tde/*\" { capabilities = [\"create\", \"update\", \"read\"] }" }),
    );
    let t = admin.ok("POST", "/v1/auth/token/create", json!({ "policies": ["tde-admin"] }));
    let ops = admin.with_token(t["auth"]["client_token"].as_str().unwrap());
    let (status, body) = ops.call("POST", "/v1/tde/keys/8", json!({ "owner": "CN=x" }));
    assert_eq!(status, 403, "{body}");
    ops.ok("POST", "/v1/tde/keys/8", json!(null));
    ops.ok("POST", "/v1/tde/keys/8/rotate", json!(null));
    // `create` makes keys; rotating or destroying them takes `update`.
    admin.ok(
        "PUT",
        "/v1/sys/policies/acl/tde-provision",
        json!({ "policy": "path \"tde/*\" { capabilities = [\"create\", \"read\"] }" }),
    );
    let t = admin.ok("POST", "/v1/auth/token/create", json!({ "policies": ["tde-provision"] }));
    let provision = admin.with_token(t["auth"]["client_token"].as_str().unwrap());
    provision.ok("POST", "/v1/tde/keys/10", json!(null));
    assert_eq!(provision.call("POST", "/v1/tde/keys/10/rotate", json!(null)).0, 403);
    let destroy = json!({ "versions": [1], "force": true });
    assert_eq!(provision.call("POST", "/v1/tde/destroy/10", destroy).0, 403);

    // Destruction needs force; destroyed versions read as missing.
    let (status, body) = admin.call("POST", "/v1/tde/destroy/7", json!({ "versions": [1] }));
    assert_eq!(status, 409, "{body}");
    let message = body["errors"][0].as_str().unwrap();
    assert!(message.contains("force") && message.contains("last read"), "{body}");
    assert_eq!(material(&db, "7", Some(1)).0, 1, "a refused destroy changes nothing");
    let done = admin.ok("POST", "/v1/tde/destroy/7", json!({ "versions": [1], "force": true }));
    assert_eq!(done["data"]["destroyed_versions"], json!([1]), "{done}");
    assert_eq!(read_key(&db, "7", Some(1)).0, 404);
    assert_eq!(material(&db, "7", None).0, 2);
    let meta = admin.ok("GET", "/v1/tde/metadata/7", json!(null));
    assert_eq!(meta["data"]["versions"]["1"]["destroyed"], true, "{meta}");
    assert_eq!(meta["data"]["oldest_version"], 2, "{meta}");
    // The latest version alone is not destroyed (the key would be stuck); every version,
    // by number, deletes the key and frees its name.
    admin.ok("POST", "/v1/tde/keys/7/rotate", json!(null));
    let latest_only = json!({ "versions": [3], "force": true });
    let (status, body) = admin.call("POST", "/v1/tde/destroy/7", latest_only);
    assert_eq!(status, 409, "{body}");
    assert!(body["errors"][0].as_str().unwrap().contains("rotate the key first"), "{body}");
    admin.ok("POST", "/v1/tde/destroy/10", json!({ "versions": [1], "force": true }));
    assert_eq!(read_key(&db, "10", None).0, 404);
    admin.ok("POST", "/v1/tde/keys/10", json!(null));

    assert_eq!(admin.call("DELETE", "/v1/tde/keys/7", json!(null)).0, 409);
    admin.ok("DELETE", "/v1/tde/keys/7?force=true", json!(null));
    assert_eq!(read_key(&db, "7", None).0, 404);
    assert_eq!(read_key(&db, "7", Some(2)).0, 404);
    // The name is free again: a new key 7 starts at version 1.
    admin.ok("POST", "/v1/tde/keys/7", json!(null));
    assert_eq!(material(&db, "7", None).0, 1);
    let listed = admin.ok("LIST", "/v1/tde/keys", json!(null));
    assert_eq!(listed["data"]["keys"], json!(["10", "7", "8"]), "{listed}");
    // With a trailing slash, as Vault clients may list.
    let listed = admin.ok("GET", "/v1/tde/metadata/?list=true", json!(null));
    assert_eq!(listed["data"]["keys"], json!(["10", "7", "8"]), "{listed}");

    // Every key read is in the audit trail with the object and version; refusals too.
    let accessor = token["auth"]["accessor"].as_str().unwrap();
    let events = admin.ok(
        "GET",
        &format!("/v1/sys/audit?principal=token:{accessor}&limit=1000"),
        json!(null),
    );
    let events = events["data"]["events"].as_array().unwrap();
    let reads: Vec<_> = events
        .iter()
        .filter(|e| e["operation"].as_str().unwrap().starts_with("GET /v1/tde/data/7"))
        .collect();
    assert!(reads.len() >= 5, "{events:?}");
    assert!(
        reads.iter().any(|e| e["outcome"] == "ok"
            && e["object_id"].is_string()
            && e["detail"] == "key 7 version 2"),
        "{reads:?}"
    );
    assert!(reads.iter().any(|e| e["outcome"] == "error 404"), "{reads:?}");
    assert!(
        events
            .iter()
            .any(|e| e["outcome"] == "denied" && e["operation"] == "POST /v1/tde/keys/7/rotate"),
        "{events:?}"
    );
    server.stop();
}

/// `strongroom tde ...` on the data directory of a running server.
fn cli(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(BIN)
        .arg("tde")
        .arg(args[0])
        .arg("--data-dir")
        .arg(dir)
        .args(&args[1..])
        .env("STRONGROOM_LOG", "warn")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(if out.status.success() { &out.stdout } else { &out.stderr });
    (out.status.success(), text.into_owned())
}

#[test]
fn command_line_manages_keys_beside_the_running_server() {
    let dir = temp_dir("strongroom-tde-cli");
    let server = Server::start(&dir);
    let admin = Api::admin(&server);
    let (ok, out) = cli(&dir, &["create", "5", "--bits", "192"]);
    assert!(ok, "{out}");
    assert!(out.starts_with("key 5 version 1: "), "{out}");
    let (_, k1) = material(&admin, "5", None);
    assert_eq!(k1.len(), 48);
    let (ok, out) = cli(&dir, &["rotate", "5"]);
    assert!(ok && out.starts_with("key 5 version 2: "), "{out}");
    assert_eq!(material(&admin, "5", None).0, 2);
    let (ok, out) = cli(&dir, &["show", "5"]);
    assert!(ok, "{out}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.lines().all(|l| l.contains("Active")), "{out}");

    let (ok, out) = cli(&dir, &["destroy", "5", "--versions", "1"]);
    assert!(!ok && out.contains("force"), "{out}");
    assert_eq!(material(&admin, "5", Some(1)).1, k1);
    let (ok, out) = cli(&dir, &["destroy", "5", "--versions", "1", "--force"]);
    assert!(ok, "{out}");
    assert_eq!(read_key(&admin, "5", Some(1)).0, 404);
    let (ok, out) = cli(&dir, &["rotate", "6"]);
    assert!(!ok && out.contains("key 6 does not exist"), "{out}");
    server.stop();
}
