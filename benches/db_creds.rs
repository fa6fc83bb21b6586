//! Load run: dynamic PostgreSQL credentials through the REST API (release build, SoftHSM,
//! SQLite), against the real PostgreSQL on 127.0.0.1:5432. Measures credentials issued per
//! second with many leases outstanding, lease-expiry revocations per second (leases that
//! expired while Strongroom was stopped, revoked by the reaper after the restart), and the
//! server's memory with 100k leases stored. The peer, in the same run, is the same SQL sent
//! straight to PostgreSQL (connect, create or drop the role, disconnect): the floor any
//! credential service pays.
//!
//! `cargo bench --bench db_creds` for the measurement (`BENCH_OUTSTANDING`, default 10000
//! leases; `BENCH_SECS`, default 5 s a cell); under `cargo test` a short smoke run.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{block_on, temp_dir, Api, Server};
use serde_json::json;
use sqlx::Connection;

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";
const CREATE: &str =
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; \
                      GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";";

/// Strongroom's default PostgreSQL revocation, which the reaper runs for each lease.
const REVOKE: &str =
    "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{{name}}') THEN \
     PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}'; \
     REASSIGN OWNED BY \"{{name}}\" TO CURRENT_USER; DROP OWNED BY \"{{name}}\"; \
     DROP ROLE \"{{name}}\"; END IF; END $$;";

fn pg(sql: &str) {
    block_on(async {
        let mut c =
            sqlx::PgConnection::connect(PG_ADMIN).await.expect("PostgreSQL on 127.0.0.1:5432");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut c).await.unwrap();
    });
}

fn count_roles(prefix: &str) -> i64 {
    block_on(async {
        let mut c = sqlx::PgConnection::connect(PG_ADMIN).await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM pg_roles WHERE rolname LIKE $1")
            .bind(format!("{prefix}%"))
            .fetch_one(&mut c)
            .await
            .unwrap()
    })
}

/// Runs `op` on `threads` threads for `secs`; returns operations per second.
fn rate(threads: usize, secs: f64, op: impl Fn(usize) + Send + Sync + 'static) -> f64 {
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (op, stop, done) = (op.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    op(t * 1_000_000 + i);
                    i += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// The peer: one role created (or dropped) per connection, straight to PostgreSQL.
fn direct(sql: String) {
    block_on(async move {
        let mut c = sqlx::PgConnection::connect(PG_ADMIN).await.unwrap();
        let mut tx = c.begin().await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        c.close().await.unwrap();
    });
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let env = |k: &str, d: f64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let secs = if bench { env("BENCH_SECS", 5.0) } else { 0.3 };
    let outstanding = if bench { env("BENCH_OUTSTANDING", 10_000.0) as usize } else { 20 };
    let expiring = if bench { 1000 } else { 10 };
    let stored = if bench { 100_000 } else { 1000 };

    let root = format!("sr_bench_{}", std::process::id());
    pg(&format!("CREATE ROLE {root} LOGIN SUPERUSER PASSWORD 'bench'"));
    let dir = temp_dir("strongroom-bench-creds");
    let server = Server::start(&dir);
    let api = Api::admin(&server);
    api.ok(
        "POST",
        "/v1/database/config/pg",
        json!({ "plugin_name": "postgresql-database-plugin",
                "connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:5432/test",
                "username": root, "password": "bench", "allowed_roles": "*" }),
    );
    api.ok(
        "POST",
        "/v1/database/roles/bench",
        json!({ "db_name": "pg", "creation_statements": CREATE, "default_ttl": "2h" }),
    );
    api.ok(
        "POST",
        "/v1/database/roles/exp",
        json!({ "db_name": "pg", "creation_statements": CREATE, "default_ttl": 2 }),
    );

    // Outstanding leases first, issued on 4 threads.
    let t = Instant::now();
    let per = outstanding.div_ceil(4);
    let fill: Vec<_> = (0..4)
        .map(|_| {
            let api = api.clone();
            std::thread::spawn(move || {
                for _ in 0..per {
                    api.ok("GET", "/v1/database/creds/bench", json!(null));
                }
            })
        })
        .collect();
    for h in fill {
        h.join().unwrap();
    }
    println!("filled {} outstanding leases in {:.1} s", per * 4, t.elapsed().as_secs_f64());

    println!("\ncredentials issued per second (PostgreSQL, {} leases outstanding)", per * 4);
    println!("{:>8} {:>12} {:>14} {:>7}", "threads", "strongroom", "direct SQL", "ratio");
    for threads in [1, 4] {
        let a = api.clone();
        let ours = rate(threads, secs, move |_| {
            a.ok("GET", "/v1/database/creds/bench", json!(null));
        });
        let peer = rate(threads, secs, move |i| {
            let name = format!("peer_{}_{threads}_{i}", std::process::id());
            direct(
                CREATE
                    .replace("{{name}}", &name)
                    .replace("{{password}}", "Aa1-peerpassword")
                    .replace("{{expiration}}", "2099-01-01 00:00:00+00:00"),
            );
        });
        println!("{threads:>8} {ours:>12.1} {peer:>14.1} {:>6.0}%", 100.0 * ours / peer);
    }

    // Lease-expiry revocations: leases that expired while Strongroom was stopped.
    let per = expiring / 4;
    let fill: Vec<_> = (0..4)
        .map(|_| {
            let api = api.clone();
            std::thread::spawn(move || {
                for _ in 0..per {
                    api.ok("GET", "/v1/database/creds/exp", json!(null));
                }
            })
        })
        .collect();
    for h in fill {
        h.join().unwrap();
    }
    server.stop();
    std::thread::sleep(Duration::from_secs(3));
    let n = count_roles("v-exp-");
    let t = Instant::now();
    let server = Server::start(&dir);
    while count_roles("v-exp-") > 0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let ours = n as f64 / t.elapsed().as_secs_f64();
    let names: Vec<String> =
        (0..n).map(|i| format!("peer_drop_{}_{i}", std::process::id())).collect();
    for chunk in names.chunks(500) {
        let sql: String = chunk.iter().map(|r| format!("CREATE ROLE \"{r}\" LOGIN;")).collect();
        pg(&sql);
    }
    let t = Instant::now();
    for r in &names {
        direct(REVOKE.replace("{{name}}", r));
    }
    let peer = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "\nlease-expiry revocations per second ({n} expired while stopped, revoked after restart)"
    );
    println!("{:>12} {:>14} {:>7}", "strongroom", "direct SQL", "ratio");
    println!("{ours:>12.1} {peer:>14.1} {:>6.0}%", 100.0 * ours / peer);

    // Memory with many stored leases (the reaper and API keep none in memory).
    let before = rss_kib(server.pid());
    server.stop();
    block_on(async {
        let url = format!("sqlite://{}", dir.join("strongroom.db").display());
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        for i in 0..stored {
            sqlx::query(
                "INSERT INTO leases (id, kind, data, issued_at, expires_at, max_expires_at, renewable, \
                 state, next_attempt_at, issued_to) VALUES (?, 'pki', '{}', 0, ?, ?, 1, 'active', ?, 'bench')",
            )
            .bind(format!("pki/issue/bench/{i:08}"))
            .bind(4_000_000_000i64)
            .bind(4_000_000_000i64)
            .bind(4_000_000_000i64)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    });
    let server = Server::start(&dir);
    let api = Api::admin(&server);
    for _ in 0..50 {
        api.ok("GET", "/v1/database/creds/bench", json!(null));
    }
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kib(server.pid());
    println!("\nserver memory: {before} KiB after the runs above; {after} KiB restarted with {stored} more leases stored");

    api.ok("POST", "/v1/sys/leases/revoke-prefix/database/creds/bench", json!(null));
    server.stop();
    pg(&format!(
        "DO $$ DECLARE r record; BEGIN FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'peer_%' \
         LOOP EXECUTE format('DROP OWNED BY %I; DROP ROLE %I', r.rolname, r.rolname); END LOOP; END $$; \
         DROP ROLE IF EXISTS {root}"
    ));
}
