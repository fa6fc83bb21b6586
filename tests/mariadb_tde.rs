//! MariaDB encrypts its tables with keys from Strongroom: a real MariaDB server (its own
//! data directory and socket, started here) loads the unmodified `hashicorp_key_management`
//! plugin pointed at Strongroom's `/v1/tde` mount, with a token limited to reading keys.
//! Covered: encrypted tables and redo log, nothing in clear on disk, restarts, rotation in
//! Strongroom picked up by MariaDB (new pages under the new version, background
//! re-encryption, old versions still read), destroy refused without force, and the plugin's
//! cache with Strongroom stopped, both with `use-cache-on-timeout` on and off.
//!
//! Needs `mariadb-server` and `mariadb-plugin-hashicorp-key-management` (installed by
//! `scripts/install-test-deps`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const PLUGIN: &str = "/usr/lib/mysql/plugin/hashicorp_key_management.so";
const SECRET_ROWS: &str = "plaintext-holder-";
const CONTROL_ROWS: &str = "control-plaintext-";

/// How the plugin is configured for one MariaDB start.
struct PluginSettings<'a> {
    vault_url: &'a str,
    ca: &'a Path,
    token: &'a str,
    use_cache_on_timeout: bool,
    encryption_threads: u32,
}

/// A MariaDB server on a private data directory, reachable through its socket only.
struct MariaDb {
    dir: PathBuf,
    child: Child,
}

impl MariaDb {
    fn install(dir: &Path) {
        assert!(Path::new(PLUGIN).exists(), "{PLUGIN} missing: run scripts/install-test-deps");
        let out = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--user=root", "--auth-root-authentication-method=normal"])
            .args(["--skip-test-db", "--innodb-log-file-size=8M"])
            .arg(format!("--datadir={}", dir.join("data").display()))
            .output()
            .expect("mariadb-install-db (package mariadb-server)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    fn start(dir: &Path, p: &PluginSettings<'_>) -> MariaDb {
        let log = dir.join("error.log");
        let _ = std::fs::remove_file(&log);
        let on_off = |b: bool| if b { "ON" } else { "OFF" };
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--socket={}", dir.join("sock").display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .arg(format!("--log-error={}", log.display()))
            .args(["--skip-networking", "--user=root", "--innodb-log-file-size=8M"])
            .args(["--innodb-buffer-pool-size=32M", "--plugin-load-add=hashicorp_key_management"])
            .arg(format!("--hashicorp-key-management-vault-url={}", p.vault_url))
            .arg(format!("--hashicorp-key-management-vault-ca={}", p.ca.display()))
            // Ask Strongroom for the latest version every time, so rotation shows at once.
            .arg("--hashicorp-key-management-cache-version-timeout=0")
            .arg(format!(
                "--hashicorp-key-management-use-cache-on-timeout={}",
                on_off(p.use_cache_on_timeout)
            ))
            .args(["--innodb-encrypt-tables=ON", "--innodb-encrypt-log=ON"])
            .arg(format!("--innodb-encryption-threads={}", p.encryption_threads))
            // The token comes from the environment, as it should outside tests too.
            .env("VAULT_TOKEN", p.token)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd");
        let mut db = MariaDb { dir: dir.to_owned(), child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while db.sql("SELECT 1").is_err() {
            if let Ok(Some(status)) = db.child.try_wait() {
                panic!("mariadbd exited with {status}:\n{}", db.log_tail());
            }
            assert!(Instant::now() < deadline, "mariadbd did not start:\n{}", db.log_tail());
            std::thread::sleep(Duration::from_millis(200));
        }
        db
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
        log.lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Runs statements; the tab-separated rows, or the client's error message.
    fn sql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new("mariadb")
            .args(["--no-defaults", "-uroot", "-N", "-B"])
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .args(["-e", sql])
            .output()
            .expect("mariadb client");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    fn query(&self, sql: &str) -> String {
        self.sql(sql).unwrap_or_else(|e| panic!("{sql}: {e}\n{}", self.log_tail()))
    }

    /// `(scheme, key id, current key version, minimum key version)` of a tablespace.
    fn encryption(&self, table: &str) -> (u32, u32, u32, u32) {
        let row = self.query(&format!(
            "SELECT ENCRYPTION_SCHEME, CURRENT_KEY_ID, CURRENT_KEY_VERSION, MIN_KEY_VERSION \
             FROM information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE NAME = '{table}'"
        ));
        let v: Vec<u32> = row.split('\t').map(|x| x.parse().unwrap()).collect();
        assert_eq!(v.len(), 4, "{table}: {row:?}");
        (v[0], v[1], v[2], v[3])
    }

    fn wait_for(&self, what: &str, mut done: impl FnMut(&MariaDb) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(180);
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", self.log_tail());
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Clean shutdown, so everything is flushed to the data files.
    fn stop(mut self) {
        let status = Command::new("mariadb-admin")
            .args(["--no-defaults", "-uroot"])
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .arg("shutdown")
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap();
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Files under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_containing(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                out.push(path);
            }
        }
    }
    out
}

/// Versions of key 1 the MariaDB token read, from Strongroom's audit trail.
fn versions_read(admin: &Api, accessor: &str) -> Vec<String> {
    let events = admin.ok(
        "GET",
        &format!("/v1/sys/audit?principal=token:{accessor}&outcome=ok&limit=1000"),
        json!(null),
    );
    let mut seen: Vec<String> = events["data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["detail"].as_str().map(str::to_owned))
        .collect();
    seen.sort();
    seen.dedup();
    seen
}

#[test]
fn mariadb_encrypts_with_keys_from_strongroom() {
    let dir = temp_dir("strongroom-mariadb-tde");
    let sr_dir = dir.join("strongroom");
    let db_dir = dir.join("mariadb");
    std::fs::create_dir_all(&db_dir).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut server = Server::start_listening(&sr_dir, &listen, &[], &[]);
    let admin = Api::admin(&server);

    // Key 1 (InnoDB's default key id) and a token that may only read keys.
    admin.ok("POST", "/v1/tde/keys/1", json!(null));
    let policy = "path \"tde/data/*\" { capabilities = [\"read\"] }\n\
                  path \"sys/mounts/tde/tune\" { capabilities = [\"read\"] }";
    admin.ok("PUT", "/v1/sys/policies/acl/mariadb", json!({ "policy": policy }));
    let t = admin.ok("POST", "/v1/auth/token/create", json!({ "policies": ["mariadb"] }));
    let token = t["auth"]["client_token"].as_str().unwrap().to_owned();
    let accessor = t["auth"]["accessor"].as_str().unwrap().to_owned();

    let vault_url = format!("https://{listen}/v1/tde");
    let ca = sr_dir.join("ca.crt");
    let cached = PluginSettings {
        vault_url: &vault_url,
        ca: &ca,
        token: &token,
        use_cache_on_timeout: true,
        encryption_threads: 1,
    };
    MariaDb::install(&db_dir);
    let db = MariaDb::start(&db_dir, &cached);
    db.query(
        "CREATE DATABASE shop; USE shop; \
         CREATE TABLE shop.cards (id INT PRIMARY KEY, holder VARCHAR(200)) ENGINE=InnoDB; \
         INSERT INTO shop.cards SELECT seq, CONCAT('plaintext-holder-', seq) FROM seq_1_to_2000; \
         CREATE TABLE shop.plain (id INT PRIMARY KEY, v VARCHAR(200)) ENCRYPTED=NO; \
         INSERT INTO shop.plain SELECT seq, CONCAT('control-plaintext-', seq) FROM seq_1_to_50",
    );
    assert_eq!(db.encryption("shop/cards"), (1, 1, 1, 1), "encrypted under key 1 version 1");
    db.stop();

    // Nothing of the encrypted rows is on disk in clear (data files, redo log, system
    // tablespace); the unencrypted control table shows the scan would find them.
    assert_eq!(
        files_containing(&db_dir.join("data"), SECRET_ROWS.as_bytes()),
        Vec::<PathBuf>::new()
    );
    let control = files_containing(&db_dir.join("data"), CONTROL_ROWS.as_bytes());
    assert!(control.iter().any(|p| p.ends_with("shop/plain.ibd")), "{control:?}");

    // Restarted, MariaDB reads the keys back from Strongroom and the rows decrypt.
    let db = MariaDb::start(&db_dir, &cached);
    assert_eq!(db.query("SELECT COUNT(*) FROM shop.cards"), "2000");
    assert_eq!(db.query("SELECT holder FROM shop.cards WHERE id = 1234"), "plaintext-holder-1234");

    // Rotation in Strongroom: MariaDB takes up version 2 for new writes, old pages still
    // decrypt with version 1 (read by number), also after a restart.
    let rotated = admin.ok("POST", "/v1/tde/keys/1/rotate", json!(null));
    assert_eq!(rotated["data"]["version"], 2);
    db.wait_for("key version 2 in use", |db| db.encryption("shop/cards").2 == 2);
    db.query(
        "USE shop; INSERT INTO shop.cards SELECT seq, CONCAT('plaintext-holder-', seq) \
         FROM seq_2001_to_3000",
    );
    db.stop();
    let db = MariaDb::start(&db_dir, &cached);
    assert_eq!(db.query("SELECT COUNT(*) FROM shop.cards"), "3000");
    assert_eq!(db.query("SELECT holder FROM shop.cards WHERE id = 2999"), "plaintext-holder-2999");
    let read = versions_read(&admin, &accessor);
    for v in ["key 1 version 1", "key 1 version 2"] {
        assert!(read.iter().any(|r| r == v), "{v} not read: {read:?}");
    }

    // Two versions on (MariaDB's default innodb_encryption_rotate_key_age is 1), the
    // background key rotation re-encrypts every page still under version 1.
    admin.ok("POST", "/v1/tde/keys/1/rotate", json!(null));
    db.wait_for("pages re-encrypted past version 1", |db| db.encryption("shop/cards").3 >= 2);
    assert_eq!(db.query("SELECT COUNT(*) FROM shop.cards"), "3000");
    // The redo log still names version 1, so destroying it by mistake would stop MariaDB
    // from starting: refused without force.
    let (status, body) = admin.call("POST", "/v1/tde/destroy/1", json!({ "versions": [1] }));
    assert_eq!(status, 409, "{body}");
    let why = body["errors"][0].as_str().unwrap();
    assert!(why.contains(&format!("by token:{accessor}")), "names MariaDB's last read: {why}");

    // Strongroom stopped, with use-cache-on-timeout on: MariaDB goes on from its cache,
    // even for a new encrypted table.
    server.stop();
    assert_eq!(db.query("SELECT COUNT(*) FROM shop.cards"), "3000");
    db.query(
        "CREATE TABLE shop.during_outage (id INT) ENCRYPTED=YES; \
              INSERT INTO shop.during_outage VALUES (1)",
    );
    db.stop();
    server = Server::start_listening(&sr_dir, &listen, &[], &[]);

    // With use-cache-on-timeout off, a new encrypted table needs Strongroom; tables whose
    // key versions MariaDB already fetched keep working from its cache, and creation works
    // again once Strongroom is back. (No background encryption threads here: MariaDB 10.11
    // aborts if those cannot get a key.)
    let strict = PluginSettings { use_cache_on_timeout: false, encryption_threads: 0, ..cached };
    let db = MariaDb::start(&db_dir, &strict);
    assert_eq!(db.query("SELECT COUNT(*) FROM shop.during_outage"), "1");
    // Reading every page fetches every key version the table's pages still use.
    assert_eq!(db.query("SELECT COUNT(*) FROM shop.cards"), "3000");
    server.stop();
    let err = db.sql("CREATE TABLE shop.refused (id INT) ENCRYPTED=YES").unwrap_err();
    assert!(err.contains("hashicorp"), "{err}");
    assert_eq!(db.query("SELECT COUNT(*) FROM shop.cards"), "3000");
    server = Server::start_listening(&sr_dir, &listen, &[], &[]);
    db.query("CREATE TABLE shop.after_outage (id INT) ENCRYPTED=YES");
    db.stop();

    assert_eq!(
        files_containing(&db_dir.join("data"), SECRET_ROWS.as_bytes()),
        Vec::<PathBuf>::new()
    );
    server.stop();
}
