//! A PKCS#11 token Strongroom does not manage: initialised beforehand (here with
//! softhsm2-util), found by label, with the user PIN from an environment variable. A wrong
//! PIN stops the start with a clear error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;
use kmip::enums::Operation;

const PIN_VAR: &str = "STRONGROOM_TEST_HSM_PIN";

#[test]
fn configured_token_with_pin_from_environment() {
    let dir = temp_dir("strongroom-external-hsm");
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!("directories.tokendir = {}\nobjectstore.backend = file\n", tokens.display()),
    )
    .unwrap();
    let conf_s = conf.to_str().unwrap();
    let init = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            "ops-token",
            "--so-pin",
            "87654321",
            "--pin",
            "12345678",
        ])
        .env("SOFTHSM2_CONF", conf_s)
        .output()
        .expect("softhsm2-util (apt-get install softhsm2)");
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));

    let config = dir.join("strongroom.toml");
    std::fs::write(
        &config,
        format!("[hsm]\ntoken_label = \"ops-token\"\nuser_pin_env = \"{PIN_VAR}\"\n"),
    )
    .unwrap();
    let config_s = config.to_str().unwrap();
    let data = dir.join("data");

    // Wrong PIN: the start fails and says why.
    let out = Command::new(BIN)
        .args(["serve", "--config", config_s, "--data-dir"])
        .arg(&data)
        .args(["--kmip-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .env("SOFTHSM2_CONF", conf_s)
        .env(PIN_VAR, "00000000")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Login") && err.contains("PIN"), "{err}");
    assert!(!err.contains("00000000"), "the PIN must not be echoed: {err}");

    let env = [("SOFTHSM2_CONF", conf_s), (PIN_VAR, "12345678")];
    let server = Server::start_env(&data, &["--config", config_s], &env);
    assert!(!data.join("hsm").exists(), "no managed SoftHSM token for a configured one");
    let certs = client_cert_env(&data, "alice", &["--config", config_s], &env);
    let mut c = Client::connect(&server, &certs, "alice");
    let id = uid_of(&c.ok(Operation::CREATE, create_payload(c.version, &aes_attributes(192))));
    assert_eq!(key_material(&c.ok(Operation::GET, vec![uid(&id)])).len(), 24);
    server.stop();
}
