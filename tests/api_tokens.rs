//! The REST API's authentication and authorisation: the initial admin token, tokens with
//! policies and TTLs, the Vault-style token header, client certificates, refusals (401,
//! 403) and their audit records, and bad requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{block_on, client_cert, https_with, temp_dir, tls_config, Api, Server};
use serde_json::json;

#[test]
fn tokens_policies_and_their_audit_trail() {
    let dir = temp_dir("strongroom-api-tokens");
    let server = Server::start(&dir);
    let token_file = dir.join("admin.token");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "admin.token must be owner-only, is {mode:o}");
    let admin = Api::admin(&server);
    let me = admin.ok("GET", "/v1/auth/token/lookup-self", json!(null));
    assert_eq!(me["data"]["policies"], json!(["root"]), "{me}");

    // A policy in the documented language; a bad one is refused with its line.
    let policy = r#"
        # database readers
        path "database/roles" { capabilities = ["list"] }
        path "database/roles/*" { capabilities = ["read"] }
        path "database/roles/secret" { capabilities = ["deny"] }
        path "sys/policies/acl/*" { capabilities = ["deny"] }
    "#;
    admin.ok("POST", "/v1/sys/policies/acl/reader", json!({ "policy": policy }));
    let (status, body) = admin.call(
        "POST",
        "/v1/sys/policies/acl/bad",
        json!({ "policy": "path \"x\" {\n capabilities = [\"fly\"] }" }),
    );
    assert_eq!(status, 400);
    assert!(body["errors"][0].as_str().unwrap().contains("line 2"), "{body}");
    let (status, _) = admin.call("POST", "/v1/sys/policies/acl/root", json!({ "policy": "" }));
    assert_eq!(status, 400, "built-in policies cannot be replaced");
    let listed = admin.ok("GET", "/v1/sys/policies/acl", json!(null));
    assert!(listed["data"]["keys"].as_array().unwrap().contains(&json!("reader")), "{listed}");
    // Vault's LIST verb lists too.
    assert_eq!(admin.ok("LIST", "/v1/sys/policies/acl", json!(null)), listed);

    let created = admin.ok(
        "POST",
        "/v1/auth/token/create",
        json!({ "policies": ["reader"], "ttl": "1h", "display_name": "ci" }),
    );
    let token = created["auth"]["client_token"].as_str().unwrap().to_owned();
    let accessor = created["auth"]["accessor"].as_str().unwrap().to_owned();
    assert_eq!(created["auth"]["lease_duration"], 3600);
    let reader = admin.with_token(&token);
    reader.ok("GET", "/v1/database/roles", json!(null));
    let (status, body) = reader.call("POST", "/v1/database/config/x", json!({}));
    assert_eq!(status, 403, "{body}");
    let (status, _) = reader.call("GET", "/v1/sys/policies/acl/reader", json!(null));
    assert_eq!(status, 403, "deny wins on its path");
    // Policies see the path as sent and handlers its decoded segments, so an encoded
    // character (which would slip past the deny above) is refused outright.
    assert_eq!(reader.call("GET", "/v1/database/roles/secret", json!(null)).0, 403);
    assert_eq!(reader.call("GET", "/v1/database/roles/secr%65t", json!(null)).0, 400);
    let (status, _) = reader.call("POST", "/v1/auth/token/create", json!({ "policies": ["root"] }));
    assert_eq!(status, 403, "no token/create capability, and no root to hand out");

    // Vault's header works too; the token sees itself.
    let (status, out) = https_with(
        server.https,
        tls_config(&dir, None),
        "GET",
        "/v1/auth/token/lookup-self",
        &[("X-Vault-Token", &token)],
        b"",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));

    // No token: 401; a wrong one: 403; a revoked one: 403; an expired one: 403.
    let (status, _) =
        https_with(server.https, tls_config(&dir, None), "GET", "/v1/database/roles", &[], b"");
    assert_eq!(status, 401);
    assert_eq!(
        admin.with_token("sr.not-a-token").call("GET", "/v1/database/roles", json!(null)).0,
        403
    );
    reader.ok("POST", "/v1/auth/token/revoke-self", json!(null));
    assert_eq!(reader.call("GET", "/v1/database/roles", json!(null)).0, 403);
    let short =
        admin.ok("POST", "/v1/auth/token/create", json!({ "policies": ["reader"], "ttl": 1 }));
    let short = admin.with_token(short["auth"]["client_token"].as_str().unwrap());
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(short.call("GET", "/v1/database/roles", json!(null)).0, 403, "expired");

    // Client certificates: an administrator gets root, anyone else only the default policy.
    let certs = client_cert(&dir, "someone");
    let (status, _) = https_with(
        server.https,
        tls_config(&certs, Some("someone")),
        "GET",
        "/v1/database/roles",
        &[],
        b"",
    );
    assert_eq!(status, 403);
    // An empty token header is no token: the certificate still identifies the caller.
    for headers in [&[][..], &[("X-Vault-Token", "")][..]] {
        let (status, out) = https_with(
            server.https,
            tls_config(&certs, Some("someone")),
            "GET",
            "/v1/auth/token/lookup-self",
            headers,
            b"",
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
    }

    // Bad requests are clear.
    let (status, body) = admin.call("GET", "/v1/no/such/route", json!(null));
    assert_eq!(status, 404, "{body}");
    let (status, out) = https_with(
        server.https,
        tls_config(&dir, None),
        "POST",
        "/v1/sys/policies/acl/x",
        &[("Authorization", &format!("Bearer {}", admin.token))],
        b"{not json",
    );
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&out).contains("request body"));

    // The audit trail is queryable through the API (root only by default).
    let denied = admin.ok(
        "GET",
        &format!("/v1/sys/audit?principal=token:{accessor}&outcome=denied"),
        json!(null),
    );
    let events = denied["data"]["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["operation"] == "POST /v1/database/config/x"), "{denied}");
    assert!(events.iter().all(|e| e["outcome"] == "denied"), "{denied}");
    // A bad query gets the API's JSON error, as a bad body does.
    let (status, body) = admin.call("GET", "/v1/sys/audit?bogus=1", json!(null));
    assert_eq!(status, 400);
    assert!(body["errors"][0].as_str().unwrap().starts_with("query: "), "{body}");
    let (status, body) =
        admin.call("GET", "/v1/sys/audit?limit=-99999999999999999999", json!(null));
    assert_eq!(status, 400, "{body}");
    // A body is a JSON object (serde alone would read the struct from an array).
    let (status, body) = admin.call("POST", "/v1/auth/token/create", json!([null, null]));
    assert_eq!(status, 400, "{body}");
    // Policies as one comma-separated string, as Vault takes them.
    let t = admin.ok("POST", "/v1/auth/token/create", json!({ "policies": "reader, default" }));
    assert_eq!(t["auth"]["policies"], json!(["reader", "default"]), "{t}");
    // Repeats count once; more than 64 policies are refused.
    let t = admin.ok("POST", "/v1/auth/token/create", json!({ "policies": "reader,reader" }));
    assert_eq!(t["auth"]["policies"], json!(["reader"]), "{t}");
    let many: Vec<String> = (0..65).map(|i| format!("p{i}")).collect();
    let (status, body) = admin.call("POST", "/v1/auth/token/create", json!({ "policies": many }));
    assert_eq!(status, 400, "{body}");

    // `create` makes new things; replacing one (its own policy, here) takes `update`.
    let provision = r#"path "sys/policies/acl/*" { capabilities = ["create"] }
        path "pki/*" { capabilities = ["update"] }"#;
    admin.ok("POST", "/v1/sys/policies/acl/provision", json!({ "policy": provision }));
    let t = admin.ok("POST", "/v1/auth/token/create", json!({ "policies": ["provision"] }));
    let p = admin.with_token(t["auth"]["client_token"].as_str().unwrap());
    let everything = r#"path "*" { capabilities = ["create", "read", "update", "sudo"] }"#;
    let (status, body) =
        p.call("POST", "/v1/sys/policies/acl/provision", json!({ "policy": everything }));
    assert_eq!(status, 403, "{body}");
    p.ok("POST", "/v1/sys/policies/acl/fresh", json!({ "policy": provision }));
    assert_eq!(p.call("POST", "/v1/sys/policies/acl/fresh", json!({ "policy": "" })).0, 403);
    // Replacing the CA's root takes sudo, beyond an issuing grant's update.
    assert_eq!(p.call("POST", "/v1/pki/root/rotate", json!(null)).0, 403);
    server.stop();

    // Every decision is audited with the identity: refusals included, no token in it.
    let events: Vec<(String, String, String)> = block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}", dir.join("strongroom.db").display());
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query_as(
            "SELECT principal, operation, outcome FROM audit WHERE protocol = 'api' ORDER BY seq",
        )
        .fetch_all(&mut db)
        .await
        .unwrap()
    });
    let who = format!("token:{accessor}");
    let has = |p: &str, op: &str, outcome: &str| {
        events.iter().any(|e| e.0 == p && e.1 == op && e.2 == outcome)
    };
    assert!(has(&who, "GET /v1/database/roles", "ok"), "{events:?}");
    assert!(has(&who, "POST /v1/database/config/x", "denied"), "{events:?}");
    assert!(has("unauthenticated", "GET /v1/database/roles", "denied"), "{events:?}");
    assert!(has("CN=someone", "GET /v1/database/roles", "denied"), "{events:?}");
    let all = format!("{events:?}");
    assert!(
        !all.contains(&token) && !all.contains(&admin.token),
        "a token leaked into the audit trail"
    );
}
