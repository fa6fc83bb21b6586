//! Dynamic database credentials against the real PostgreSQL and MariaDB on this machine
//! (127.0.0.1:5432 and :3306; `scripts/start-test-databases` starts them when they are down): users that exist
//! only for a lease, renewal bounded by the maximum TTL, revocation by id and prefix,
//! expiry (also while Strongroom is stopped), retries while the database is unreachable,
//! root rotation and static roles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{block_on, temp_dir, Api, Server};
use serde_json::json;
use sqlx::Connection;

/// Superuser connections for setup and checks (trust or empty-password root by default).
fn pg_admin() -> String {
    std::env::var("STRONGROOM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn my_admin() -> String {
    std::env::var("STRONGROOM_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

fn pg_exec(sql: &str) {
    block_on(async {
        let mut c = sqlx::PgConnection::connect(&pg_admin()).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at 127.0.0.1:5432 (trust auth, database test; or set \
                 STRONGROOM_TEST_POSTGRES_URL) is needed; scripts/start-test-databases starts it: {e}"
            )
        });
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut c).await.unwrap();
    });
}

fn my_exec(sql: &str) {
    block_on(async {
        let mut c = sqlx::MySqlConnection::connect(&my_admin()).await.unwrap_or_else(|e| {
            panic!(
                "MariaDB at 127.0.0.1:3306 (root, empty password, database test; or set \
                 STRONGROOM_TEST_MYSQL_URL) is needed; scripts/start-test-databases starts it: {e}"
            )
        });
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut c).await.unwrap();
    });
}

/// Logs in to PostgreSQL as `user` (this server trusts 127.0.0.1, so only existence counts).
fn pg_login(user: &str, password: &str) -> Result<(), String> {
    block_on(async {
        let url = format!("postgres://{user}:{password}@127.0.0.1:5432/test");
        let mut c = sqlx::PgConnection::connect(&url).await.map_err(|e| e.to_string())?;
        sqlx::query("SELECT 1").execute(&mut c).await.map_err(|e| e.to_string())?;
        Ok(())
    })
}

fn my_login(user: &str, password: &str) -> Result<(), String> {
    block_on(async {
        let url = format!("mysql://{user}:{password}@127.0.0.1:3306/test");
        let mut c = sqlx::MySqlConnection::connect(&url).await.map_err(|e| e.to_string())?;
        sqlx::query("SELECT 1").execute(&mut c).await.map_err(|e| e.to_string())?;
        Ok(())
    })
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("timed out after {secs}s waiting for {what}");
}

fn suffix() -> String {
    format!("{}_{}", std::process::id(), Instant::now().elapsed().subsec_nanos() % 10000)
}

fn issue(api: &Api, role: &str) -> (String, String, String) {
    let r = api.ok("GET", &format!("/v1/database/creds/{role}"), json!(null));
    (
        r["data"]["username"].as_str().unwrap().to_owned(),
        r["data"]["password"].as_str().unwrap().to_owned(),
        r["lease_id"].as_str().unwrap().to_owned(),
    )
}

fn lease_state(api: &Api, lease: &str) -> String {
    let r = api.ok("POST", "/v1/sys/leases/lookup", json!({ "lease_id": lease }));
    r["data"]["state"].as_str().unwrap().to_owned()
}

#[test]
fn postgres_users_live_only_for_their_lease() {
    let root = format!("sr_root_{}", suffix());
    pg_exec(&format!(
        "DROP ROLE IF EXISTS {root}; CREATE ROLE {root} LOGIN SUPERUSER PASSWORD 'initial-pw'"
    ));
    let dir = temp_dir("strongroom-pg-creds");
    let server = Server::start(&dir);
    let api = Api::admin(&server);

    // The connection `pg` for `allowed_roles` (the stored password kept when none is given).
    let configure = |allowed_roles: &str, password: Option<&str>| {
        let mut config = json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:5432/test",
            "username": root, "allowed_roles": allowed_roles,
        });
        if let Some(p) = password {
            config["password"] = p.into();
        }
        api.ok("POST", "/v1/database/config/pg", config);
    };
    configure("ro,short", Some("initial-pw"));
    let config = api.ok("GET", "/v1/database/config/pg", json!(null));
    assert!(!config.to_string().contains("initial-pw"), "password echoed: {config}");
    // A password written into the URL would be stored and shown as the URL is: refused.
    let (status, body) = api.call(
        "POST",
        "/v1/database/config/inline",
        json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": format!("postgresql://{root}:initial-pw@127.0.0.1:5432/test"),
            "username": root, "password": "initial-pw",
        }),
    );
    assert_eq!(status, 400, "{body}");
    let create = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; \
                  GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";";
    api.ok(
        "POST",
        "/v1/database/roles/ro",
        json!({ "db_name": "pg", "creation_statements": [create], "default_ttl": "1h", "max_ttl": "2h" }),
    );
    api.ok(
        "POST",
        "/v1/database/roles/short",
        json!({ "db_name": "pg", "creation_statements": create, "default_ttl": 2, "max_ttl": 10 }),
    );
    api.ok(
        "POST",
        "/v1/database/roles/other",
        json!({ "db_name": "pg", "creation_statements": create }),
    );
    let (status, body) = api.call("GET", "/v1/database/creds/other", json!(null));
    assert_eq!(status, 400, "{body}");
    assert!(body["errors"][0].as_str().unwrap().contains("allowed_roles"), "{body}");

    // A dynamic user logs in, has an expiry in the database, and is gone after revocation.
    let (user, password, lease) = issue(&api, "ro");
    assert!(lease.starts_with("database/creds/ro/"), "{lease}");
    assert!(user.starts_with("v-ro-"), "{user}");
    pg_login(&user, &password).unwrap();
    let renewed =
        api.ok("POST", "/v1/sys/leases/renew", json!({ "lease_id": lease, "increment": 999_999 }));
    let duration = renewed["lease_duration"].as_i64().unwrap();
    assert!((7000..=7200).contains(&duration), "renewal is capped by max_ttl: {renewed}");
    // As in Vault: without an increment the role's default TTL, and a max_ttl lowered since
    // caps the next renewal.
    let renewed = api.ok("POST", "/v1/sys/leases/renew", json!({ "lease_id": lease }));
    let duration = renewed["lease_duration"].as_i64().unwrap();
    assert!((3500..=3600).contains(&duration), "the role's default_ttl: {renewed}");
    let lowered = json!({ "db_name": "pg", "creation_statements": [create], "default_ttl": "10m", "max_ttl": "20m" });
    api.ok("POST", "/v1/database/roles/ro", lowered);
    let renewed =
        api.ok("POST", "/v1/sys/leases/renew", json!({ "lease_id": lease, "increment": 7200 }));
    let duration = renewed["lease_duration"].as_i64().unwrap();
    assert!((1100..=1200).contains(&duration), "the role's max_ttl now: {renewed}");
    let restored = json!({ "db_name": "pg", "creation_statements": [create], "default_ttl": "1h", "max_ttl": "2h" });
    api.ok("POST", "/v1/database/roles/ro", restored);
    // As in Vault, a user made for a token ends with the token.
    let policy = r#"path "database/creds/ro" { capabilities = ["read"] }"#;
    api.ok("POST", "/v1/sys/policies/acl/ro-reader", json!({ "policy": policy }));
    let made =
        api.ok("POST", "/v1/auth/token/create", json!({ "policies": ["ro-reader"], "ttl": "5m" }));
    let reader = api.with_token(made["auth"]["client_token"].as_str().unwrap());
    let short = reader.ok("GET", "/v1/database/creds/ro", json!(null));
    let duration = short["lease_duration"].as_i64().unwrap();
    assert!((1..=300).contains(&duration), "capped by the token's TTL: {short}");
    api.ok("POST", "/v1/sys/leases/revoke", json!({ "lease_id": short["lease_id"] }));
    api.ok("POST", "/v1/sys/leases/revoke", json!({ "lease_id": lease }));
    let err = pg_login(&user, &password).unwrap_err();
    assert!(err.contains("does not exist"), "{err}");
    assert_eq!(lease_state(&api, &lease), "revoked");
    let (status, _) = api.call("POST", "/v1/sys/leases/renew", json!({ "lease_id": lease }));
    assert_eq!(status, 400, "a revoked lease cannot be renewed");

    // Revoking a token revokes the tokens it made and the leases issued to any of them,
    // as in Vault.
    let creds_policy = r#"path "database/creds/*" { capabilities = ["read"] }
        path "auth/token/create" { capabilities = ["update"] }"#;
    api.ok("POST", "/v1/sys/policies/acl/creds", json!({ "policy": creds_policy }));
    let token = |api: &Api, policy: &str| {
        let made = api.ok("POST", "/v1/auth/token/create", json!({ "policies": [policy] }));
        let auth = &made["auth"];
        (
            auth["client_token"].as_str().unwrap().to_owned(),
            auth["accessor"].as_str().unwrap().to_owned(),
        )
    };
    let (parent, parent_accessor) = token(&api, "creds");
    let (child, _) = token(&api.with_token(&parent), "creds");
    let child = api.with_token(&child);
    let (user, password, lease) = issue(&child, "ro");
    pg_login(&user, &password).unwrap();
    api.ok("POST", "/v1/auth/token/revoke-accessor", json!({ "accessor": parent_accessor }));
    assert_eq!(child.call("GET", "/v1/database/creds/ro", json!(null)).0, 403);
    assert!(pg_login(&user, &password).is_err(), "a revoked token's user still logs in");
    assert_eq!(lease_state(&api, &lease), "revoked");

    // Revoking or listing by prefix takes sudo, and a prefix is a path: `database/creds/r`
    // is not `database/creds/ro`.
    let (_, _, lease) = issue(&api, "ro");
    let leases_policy = r#"path "sys/leases/*" { capabilities = ["update", "list"] }"#;
    api.ok("POST", "/v1/sys/policies/acl/leases", json!({ "policy": leases_policy }));
    let no_sudo = api.with_token(&token(&api, "leases").0);
    let revoke_ro = "/v1/sys/leases/revoke-prefix/database/creds/ro";
    assert_eq!(no_sudo.call("POST", revoke_ro, json!(null)).0, 403);
    assert_eq!(no_sudo.call("GET", "/v1/sys/leases/lookup/database/creds", json!(null)).0, 403);
    api.ok("POST", "/v1/sys/leases/revoke-prefix/database/creds/r", json!(null));
    assert_eq!(lease_state(&api, &lease), "active");
    api.ok("POST", revoke_ro, json!(null));
    assert_eq!(lease_state(&api, &lease), "revoked");

    // Bad input: an unknown template variable is refused when the role is written; SQL that
    // fails leaves no user behind and no lease active; an unknown role is a 404.
    let (status, body) = api.call(
        "POST",
        "/v1/database/roles/ro",
        json!({ "db_name": "pg", "creation_statements": "CREATE ROLE \"{{nmae}}\"" }),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body["errors"][0].as_str().unwrap().contains("{{nmae}}"), "{body}");
    api.ok(
        "POST",
        "/v1/database/roles/broken",
        json!({ "db_name": "pg", "creation_statements": "CREATE ROLE \"{{name}}\" LOGIN; SELEC 1;" }),
    );
    configure("ro,short,broken", None);
    let (status, body) = api.call("GET", "/v1/database/creds/broken", json!(null));
    assert_eq!(status, 502, "{body}");
    assert!(body["errors"][0].as_str().unwrap().contains("syntax error"), "{body}");
    let left: i64 = block_on(async {
        let mut c = sqlx::PgConnection::connect(&pg_admin()).await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM pg_roles WHERE rolname LIKE 'v-broken-%'")
            .fetch_one(&mut c)
            .await
            .unwrap()
    });
    assert_eq!(left, 0, "a failed creation left a user behind");
    let leases = api.ok("GET", "/v1/sys/leases/lookup/database/creds/broken", json!(null));
    for key in leases["data"]["keys"].as_array().unwrap() {
        let id = format!("database/creds/broken/{}", key.as_str().unwrap());
        assert_eq!(lease_state(&api, &id), "revoked");
    }
    assert_eq!(api.call("GET", "/v1/database/creds/nobody", json!(null)).0, 404);

    // A revocation while the user is still being made (here, of the role's prefix) would
    // find no user to drop: the user is dropped once made, and not given out.
    let slow = "CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}'; SELECT pg_sleep(2);";
    api.ok(
        "POST",
        "/v1/database/roles/slow",
        json!({ "db_name": "pg", "creation_statements": slow }),
    );
    configure("ro,short,broken,slow", None);
    let slow_users = || -> i64 {
        block_on(async {
            let mut c = sqlx::PgConnection::connect(&pg_admin()).await.unwrap();
            sqlx::query_scalar("SELECT COUNT(*) FROM pg_roles WHERE rolname LIKE 'v-slow-%'")
                .fetch_one(&mut c)
                .await
                .unwrap()
        })
    };
    let before = slow_users();
    let (status, body) = std::thread::scope(|scope| {
        let issuing = scope.spawn(|| api.call("GET", "/v1/database/creds/slow", json!(null)));
        std::thread::sleep(Duration::from_millis(800));
        api.ok("POST", "/v1/sys/leases/revoke-prefix/database/creds/slow", json!(null));
        issuing.join().unwrap()
    });
    assert_eq!(status, 400, "{body}");
    assert!(body["errors"][0].as_str().unwrap().contains("no longer active"), "{body}");
    assert_eq!(slow_users(), before, "a user made while its lease was revoked is still there");

    // A lease is revoked by its role's statements as they were when it was issued, even
    // once the role is gone (the defaults would leave this table behind).
    let table = format!("kept_{}", suffix());
    api.ok(
        "POST",
        "/v1/database/roles/slow",
        json!({ "db_name": "pg", "creation_statements": format!(
                    "CREATE ROLE \"{{{{name}}}}\" LOGIN; CREATE TABLE {table} (x int);"),
                "revocation_statements": format!("DROP TABLE {table}; DROP ROLE \"{{{{name}}}}\";") }),
    );
    let (_, _, lease) = issue(&api, "slow");
    api.ok("DELETE", "/v1/database/roles/slow", json!(null));
    api.ok("POST", "/v1/sys/leases/revoke", json!({ "lease_id": lease }));
    let tables: i64 = block_on(async {
        let mut c = sqlx::PgConnection::connect(&pg_admin()).await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM pg_tables WHERE tablename = $1")
            .bind(&table)
            .fetch_one(&mut c)
            .await
            .unwrap()
    });
    assert_eq!(tables, 0, "the role's own revocation did not run");
    // While the role exists its statements as they are now revoke: a broken one can be
    // fixed.
    let made = "CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}';";
    let broken = json!({ "db_name": "pg", "creation_statements": made,
                         "revocation_statements": "SELEC 1" });
    api.ok("POST", "/v1/database/roles/slow", broken);
    let (user, password, lease) = issue(&api, "slow");
    let (status, body) = api.call("POST", "/v1/sys/leases/revoke", json!({ "lease_id": lease }));
    assert_eq!(status, 502, "{body}");
    let fixed = json!({ "db_name": "pg", "creation_statements": made,
                        "revocation_statements": [] });
    api.ok("POST", "/v1/database/roles/slow", fixed);
    api.ok("POST", "/v1/sys/leases/revoke", json!({ "lease_id": lease }));
    assert!(pg_login(&user, &password).is_err(), "the fixed revocation did not drop the user");

    // Expiry: the reaper revokes on its own.
    let (user, password, lease) = issue(&api, "short");
    pg_login(&user, &password).unwrap();
    wait_for("the expired user to be dropped", 20, || pg_login(&user, &password).is_err());
    wait_for("the lease to be marked revoked", 5, || lease_state(&api, &lease) == "revoked");

    // A lease that expires while Strongroom is stopped is revoked after the restart.
    let (user, password, _) = issue(&api, "short");
    server.stop();
    std::thread::sleep(Duration::from_secs(3));
    pg_login(&user, &password).expect("nobody revoked it while Strongroom was down");
    let server = Server::start(&dir);
    wait_for("the user to be dropped after restart", 20, || pg_login(&user, &password).is_err());

    // Listing leases under a role.
    let api = Api::admin(&server);
    let listed = api.ok("GET", "/v1/sys/leases/lookup/database/creds/short", json!(null));
    assert_eq!(listed["data"]["keys"].as_array().unwrap().len(), 2, "{listed}");

    // Revocation runs without a password or expiration: a role whose revocation needs
    // one is refused, not left to fail at every expiry.
    let (status, body) = api.call(
        "POST",
        "/v1/database/roles/odd",
        json!({ "db_name": "pg", "creation_statements": create,
                "revocation_statements": "ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}'" }),
    );
    assert_eq!(status, 400, "{body}");

    // A connection whose users still hold leases stays: they could not be dropped.
    let (_, _, lease) = issue(&api, "ro");
    let (status, body) = api.call("DELETE", "/v1/database/config/pg", json!(null));
    assert_eq!(status, 400, "{body}");
    api.ok("POST", "/v1/sys/leases/revoke", json!({ "lease_id": lease }));
    api.ok("DELETE", "/v1/database/config/pg", json!(null));
    server.stop();
    pg_exec(&format!("DROP ROLE IF EXISTS {root}"));
}

#[test]
fn mariadb_users_root_rotation_static_roles_and_retries() {
    let s = suffix();
    let root = format!("sr_root_{s}");
    let app = format!("sr_app_{s}");
    my_exec(&format!(
        "CREATE USER '{root}'@'%' IDENTIFIED BY 'initial-pw'; \
         GRANT ALL PRIVILEGES ON *.* TO '{root}'@'%' WITH GRANT OPTION; \
         CREATE USER '{app}'@'%' IDENTIFIED BY 'app-original'; GRANT SELECT ON test.* TO '{app}'@'%'"
    ));
    let dir = temp_dir("strongroom-my-creds");
    let server = Server::start(&dir);
    let api = Api::admin(&server);
    let url = "mysql://{{username}}:{{password}}@127.0.0.1:3306/test";
    let config = json!({
        "plugin_name": "mysql-database-plugin", "connection_url": url,
        "username": root, "password": "initial-pw", "allowed_roles": ["web", "app"],
    });
    api.ok("POST", "/v1/database/config/my", config);
    let wrong = json!({
        "plugin_name": "mysql-database-plugin", "connection_url": url,
        "username": root, "password": "wrong", "allowed_roles": "*",
    });
    let (status, body) = api.call("POST", "/v1/database/config/bad", wrong.clone());
    assert_eq!(status, 502, "verify_connection refuses a wrong password: {body}");
    // A nested object given as an array is refused, not read field by field.
    let mut listed = wrong;
    listed["password_policy"] = json!([20, "-"]);
    let (status, body) = api.call("POST", "/v1/database/config/bad", listed);
    assert_eq!(status, 400, "{body}");
    api.ok(
        "POST",
        "/v1/database/roles/web",
        json!({
            "db_name": "my",
            "creation_statements": "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; GRANT SELECT ON test.* TO '{{name}}'@'%';",
            "default_ttl": "10m",
        }),
    );

    let (user, password, _) = issue(&api, "web");
    assert!(user.len() <= 32, "{user}");
    my_login(&user, &password).unwrap();
    // A session open at the revocation ends with it (DROP USER alone leaves it working).
    block_on(async {
        let url = format!("mysql://{user}:{password}@127.0.0.1:3306/test");
        let mut open = sqlx::MySqlConnection::connect(&url).await.unwrap();
        sqlx::query("SELECT 1").execute(&mut open).await.unwrap();
        api.ok("POST", "/v1/sys/leases/revoke-prefix/database/creds/web", json!(null));
        let after = sqlx::query("SELECT 1").execute(&mut open).await;
        assert!(after.is_err(), "a revoked user's open session still works");
    });
    assert!(my_login(&user, &password).is_err());

    // Root rotation: afterwards the old password is useless, and Strongroom still works.
    api.ok("POST", "/v1/database/rotate-root/my", json!(null));
    assert!(my_login(&root, "initial-pw").is_err(), "old root password still works");
    let (user, password, lease) = issue(&api, "web");
    my_login(&user, &password).unwrap();

    // A rotation that fails after the database took the new password (MariaDB commits
    // ALTER USER at once) keeps that password: Strongroom still gets in.
    let mut failing = json!({
        "plugin_name": "mysql-database-plugin", "connection_url": url,
        "username": root, "allowed_roles": ["web", "app"],
        "root_rotation_statements":
            ["ALTER USER '{{username}}'@'%' IDENTIFIED BY '{{password}}'", "SELEC 1"],
    });
    api.ok("POST", "/v1/database/config/my", failing.clone());
    assert_eq!(api.call("POST", "/v1/database/rotate-root/my", json!(null)).0, 502);
    let (other, other_password, other_lease) = issue(&api, "web");
    my_login(&other, &other_password).unwrap();
    api.ok("POST", "/v1/sys/leases/revoke", json!({ "lease_id": other_lease }));
    failing.as_object_mut().unwrap().remove("root_rotation_statements");
    api.ok("POST", "/v1/database/config/my", failing);

    // The database goes away: revocation fails clearly, is retried, and succeeds later.
    let unreachable = json!({
        "plugin_name": "mysql-database-plugin", "connection_url": "mysql://{{username}}:{{password}}@127.0.0.1:1/test",
        "username": root, "allowed_roles": ["web", "app"], "verify_connection": false,
    });
    api.ok("POST", "/v1/database/config/my", unreachable);
    let (status, body) = api.call("POST", "/v1/sys/leases/revoke", json!({ "lease_id": lease }));
    assert_eq!(status, 502, "{body}");
    let looked = api.ok("POST", "/v1/sys/leases/lookup", json!({ "lease_id": lease }));
    assert_eq!(looked["data"]["state"], "revoke_failed", "{looked}");
    assert!(looked["data"]["last_error"].as_str().unwrap().contains("database"), "{looked}");
    my_login(&user, &password).expect("still there while the database was unreachable");
    let reachable = json!({
        "plugin_name": "mysql-database-plugin", "connection_url": url,
        "username": root, "allowed_roles": ["web", "app"],
    });
    api.ok("POST", "/v1/database/config/my", reachable);
    wait_for("the retried revocation", 20, || my_login(&user, &password).is_err());
    wait_for("the lease to be marked revoked", 5, || lease_state(&api, &lease) == "revoked");

    // The connection's own user is not a static role: rotate-root is for it.
    let (status, body) = api.call(
        "POST",
        "/v1/database/static-roles/app",
        json!({ "db_name": "my", "username": root.to_uppercase(), "rotation_period": "1h" }),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body["errors"][0].as_str().unwrap().contains("rotate-root"), "{body}");

    // A static role: Strongroom takes over an existing user's password.
    api.ok(
        "POST",
        "/v1/database/static-roles/app",
        json!({ "db_name": "my", "username": app, "rotation_period": "1h" }),
    );
    assert!(my_login(&app, "app-original").is_err(), "the original password was rotated away");
    let first = api.ok("GET", "/v1/database/static-creds/app", json!(null));
    let first_pw = first["data"]["password"].as_str().unwrap().to_owned();
    my_login(&app, &first_pw).unwrap();
    api.ok("POST", "/v1/database/rotate-role/app", json!(null));
    let second = api.ok("GET", "/v1/database/static-creds/app", json!(null));
    let second_pw = second["data"]["password"].as_str().unwrap();
    assert_ne!(first_pw, second_pw);
    my_login(&app, second_pw).unwrap();
    assert!(my_login(&app, &first_pw).is_err());

    server.stop();
    my_exec(&format!("DROP USER IF EXISTS '{root}'@'%'; DROP USER IF EXISTS '{app}'@'%'"));
}
