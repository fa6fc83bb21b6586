//! `strongroom backup` copies the database (sealed key material included) while the server
//! runs; `strongroom restore` brings it back after the database is lost, and refuses a
//! backup whose keys were sealed by another HSM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use kmip::enums::Operation;
use kmip::ProtocolVersion;

fn cli(args: &[&str], dir: &Path, file_flag: &str, file: &Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .arg(file_flag)
        .arg(file)
        .env("STRONGROOM_LOG", "warn")
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn backup_restore_and_a_foreign_backup() {
    let (dir, server, certs, mut c) = started("strongroom-backup", "app");
    let id = uid_of(
        &c.ok(Operation::CREATE, create_payload(ProtocolVersion::V1_4, &aes_attributes(256))),
    );
    let key = key_material(&c.ok(Operation::GET, vec![uid(&id)]));
    let backups = temp_dir("strongroom-backup-files");
    let file = backups.join("one.db");
    let (ok, out) = cli(&["backup"], &dir, "--out", &file);
    assert!(ok, "{out}");
    let (ok, out) = cli(&["backup"], &dir, "--out", &file);
    assert!(!ok && out.contains("already exists"), "{out}");
    // A mistyped data directory is no empty database to back up.
    let typo = dir.with_file_name(format!("{}-typo", dir.file_name().unwrap().to_string_lossy()));
    let (ok, out) = cli(&["backup"], &typo, "--out", &backups.join("none.db"));
    assert!(!ok && out.contains("no database"), "{out}");
    assert!(!typo.exists(), "nothing made at the mistyped path");
    // Created after the backup: gone after the restore.
    let later = uid_of(
        &c.ok(Operation::CREATE, create_payload(ProtocolVersion::V1_4, &aes_attributes(128))),
    );
    // Not under the running server, which would go on writing to the replaced file.
    let (ok, out) = cli(&["restore"], &dir, "--from", &file);
    assert!(!ok && out.contains("in use"), "{out}");
    drop(c);
    server.stop();

    for suffix in ["db", "db-wal", "db-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("strongroom.{suffix}")));
    }
    let (ok, out) = cli(&["restore"], &dir, "--from", &file);
    assert!(ok, "{out}");
    let server = Server::start(&dir);
    let mut c = Client::connect(&server, &certs, "app");
    assert_eq!(key_material(&c.ok(Operation::GET, vec![uid(&id)])), key);
    let missing = c.call(Operation::GET, vec![uid(&later)]);
    assert_eq!(missing.result_status, kmip::enums::ResultStatus::OPERATION_FAILED);
    server.stop();

    // Another installation (another SoftHSM token, another key-encryption key) cannot use it.
    let other = temp_dir("strongroom-backup-other");
    Server::start(&other).stop();
    let (ok, out) = cli(&["restore"], &other, "--from", &file);
    assert!(!ok && out.contains("another HSM key"), "{out}");
}

/// A PostgreSQL store: `strongroom backup --store-url URL` runs pg_dump while the server
/// runs; after the database is emptied, `restore` (pg_restore into psql, in one transaction)
/// brings the keys back, having checked first that the dump's sealed keys open with this
/// HSM, so a foreign dump is refused before anything is replaced.
#[test]
fn postgres_backup_and_restore() {
    let db = PgDatabase::new("backup");
    let dir = temp_dir("strongroom-pg-backup");
    let store = ["--store-url", db.url.as_str()];
    let server = Server::start_with(&dir, &store);
    let certs = client_cert_env(&dir, "app", &store, &[]);
    let mut c = Client::connect(&server, &certs, "app");
    let id = uid_of(
        &c.ok(Operation::CREATE, create_payload(ProtocolVersion::V1_4, &aes_attributes(256))),
    );
    let key = key_material(&c.ok(Operation::GET, vec![uid(&id)]));
    let backups = temp_dir("strongroom-pg-backup-files");
    let file = backups.join("pg.dump");
    let (ok, out) = cli(&["backup", "--store-url", &db.url], &dir, "--out", &file);
    assert!(ok, "{out}");
    // Owner-only from the start, and nothing left beside it.
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    assert_eq!(std::fs::read_dir(&backups).unwrap().count(), 1);
    drop(c);
    server.stop();

    // Lose the data, then restore it.
    psql(&db.url, "DELETE FROM attributes; DELETE FROM objects");
    let (ok, out) = cli(&["restore", "--store-url", &db.url], &dir, "--from", &file);
    assert!(ok, "{out}");
    let server = Server::start_with(&dir, &store);
    let mut c = Client::connect(&server, &certs, "app");
    assert_eq!(key_material(&c.ok(Operation::GET, vec![uid(&id)])), key);
    drop(c);
    server.stop();

    // Another installation's HSM refuses the dump, and its database stays as it was.
    let other_db = PgDatabase::new("backup_other");
    let other = temp_dir("strongroom-pg-backup-other");
    Server::start_with(&other, &["--store-url", other_db.url.as_str()]).stop();
    let (ok, out) = cli(&["restore", "--store-url", &other_db.url], &other, "--from", &file);
    assert!(!ok && out.contains("another HSM key"), "{out}");
}
