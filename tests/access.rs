//! Access control: owners, grants of named operations (`strongroom grant`), configured
//! administrators, and the audit trail of every decision.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;
use kmip::attributes::{names, Attribute};
use kmip::enums::{Operation, ResultReason, ResultStatus};

fn grant(dir: &std::path::Path, config: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["grant", "--config", config, "--data-dir"])
        .arg(dir)
        .args(args)
        .env("STRONGROOM_LOG", "warn")
        .output()
        .unwrap()
}

fn locate_by_name(c: &mut Client, name: &str) -> Vec<String> {
    let r = c.ok(Operation::LOCATE, vec![Attribute::new(names::NAME, name_value(name)).to_v1()]);
    r.find_all(kmip::Tag::UNIQUE_IDENTIFIER).map(|t| t.as_text().unwrap().to_owned()).collect()
}

#[test]
fn grants_and_administrators() {
    let dir = temp_dir("strongroom-access");
    let config = dir.join("access.toml");
    std::fs::write(&config, "[access]\nadmins = [\"CN=admin\"]\n").unwrap();
    let config = config.to_str().unwrap().to_owned();
    let data = dir.join("data");
    let server = Server::start_with(&data, &["--config", &config]);
    let (alice, bob, admin) =
        (client_cert(&data, "alice"), client_cert(&data, "bob"), client_cert(&data, "admin"));
    let mut a = Client::connect(&server, &alice, "alice");
    let mut attrs = aes_attributes(256);
    attrs.push(Attribute::new(names::NAME, name_value("shared")));
    let id = uid_of(&a.ok(Operation::CREATE, create_payload(a.version, &attrs)));

    let mut b = Client::connect(&server, &bob, "bob");
    assert_eq!(
        b.call(Operation::GET, vec![uid(&id)]).result_reason,
        Some(ResultReason::PERMISSION_DENIED)
    );
    assert!(locate_by_name(&mut b, "shared").is_empty());

    // Alice's key, granted to Bob for Get only.
    let out = grant(
        &data,
        &config,
        &["--object", &id, "--to", "CN=bob", "--operations", "Get,Get Attributes"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(b.call(Operation::GET, vec![uid(&id)]).result_status, ResultStatus::SUCCESS);
    assert_eq!(locate_by_name(&mut b, "shared"), vec![id.clone()]);
    assert_eq!(
        b.call(Operation::DESTROY, vec![uid(&id)]).result_reason,
        Some(ResultReason::PERMISSION_DENIED)
    );
    let out = grant(
        &data,
        &config,
        &["--object", &id, "--to", "CN=bob", "--operations", "Get", "--revoke"],
    );
    assert!(out.status.success());
    assert_eq!(
        b.call(Operation::GET, vec![uid(&id)]).result_reason,
        Some(ResultReason::PERMISSION_DENIED)
    );

    // Bad grants are refused with a message.
    let out =
        grant(&data, &config, &["--object", &id, "--to", "CN=bob", "--operations", "Teleport"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Teleport"));
    let out = grant(&data, &config, &["--object", "nope", "--to", "CN=bob", "--operations", "Get"]);
    assert!(!out.status.success());

    // The administrator reaches every object.
    let mut adm = Client::connect(&server, &admin, "admin");
    assert_eq!(adm.call(Operation::GET, vec![uid(&id)]).result_status, ResultStatus::SUCCESS);
    assert_eq!(locate_by_name(&mut adm, "shared"), vec![id.clone()]);
    assert_eq!(adm.call(Operation::DESTROY, vec![uid(&id)]).result_status, ResultStatus::SUCCESS);
    drop((a, b, adm));
    server.stop();

    // Every decision is in the audit trail.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let events: Vec<(String, String, String)> = rt.block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}", data.join("strongroom.db").display());
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query_as(
            "SELECT principal, operation, outcome FROM audit WHERE object_id = ? ORDER BY seq",
        )
        .bind(&id)
        .fetch_all(&mut db)
        .await
        .unwrap()
    });
    let has = |p: &str, op: &str, outcome: &str| {
        events.iter().any(|e| e.0 == p && e.1 == op && e.2 == outcome)
    };
    assert!(has("CN=bob", "Get", "denied"), "{events:?}");
    assert!(has("CN=bob", "Get", "ok"), "{events:?}");
    assert!(has("CN=bob", "Destroy", "denied"), "{events:?}");
    assert!(has("local administrator", "grant", "ok"), "{events:?}");
    assert!(has("CN=admin", "Destroy", "ok"), "{events:?}");
}

#[test]
fn username_password_credentials_map_to_identities() {
    let dir = temp_dir("strongroom-credentials");
    let config = dir.join("creds.toml");
    std::fs::write(
        &config,
        "[[kmip.credentials]]\nusername = \"fortigate\"\npassword_env = \"TEST_FGT_PASSWORD\"\nidentity = \"CN=fortigate\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();
    let data = dir.join("data");
    let server =
        Server::start_env(&data, &["--config", &config], &[("TEST_FGT_PASSWORD", "s3cret")]);
    let certs = client_cert(&data, "device");
    let mut c = Client::connect(&server, &certs, "device");
    let version = c.version;
    let with_credential = |password: &str, op: Operation, payload: Vec<kmip::Ttlv>| {
        let mut msg = request(version, vec![(op, payload)]);
        msg.header.authentication = Some(kmip::credential::authentication("fortigate", password));
        msg
    };
    let created = c.send(&with_credential(
        "s3cret",
        Operation::CREATE,
        create_payload(version, &aes_attributes(128)),
    ));
    assert_eq!(created.batch_items[0].result_status, ResultStatus::SUCCESS);
    let id = uid_of(created.batch_items[0].payload.as_ref().unwrap());
    // The key belongs to CN=fortigate, not to the certificate's CN=device.
    assert_eq!(
        c.call(Operation::GET, vec![uid(&id)]).result_reason,
        Some(ResultReason::PERMISSION_DENIED)
    );
    let got = c.send(&with_credential("s3cret", Operation::GET, vec![uid(&id)]));
    assert_eq!(got.batch_items[0].result_status, ResultStatus::SUCCESS);
    let wrong = c.send(&with_credential("guess", Operation::GET, vec![uid(&id)]));
    assert_eq!(
        wrong.batch_items[0].result_reason,
        Some(ResultReason::AUTHENTICATION_NOT_SUCCESSFUL)
    );
    server.stop();
}
