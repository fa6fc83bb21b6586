//! HSM faults: SoftHSM's token storage disappears under a running server (its token
//! directory is removed) and comes back. Token writes fail with CKR_GENERAL_ERROR; the
//! server takes its HSM connection down, answers with a clear error meanwhile (KMIP
//! Cryptographic Failure; new TLS handshakes, which sign with an HSM key, fail at once;
//! the plain-HTTP operations listener says 503 on `/ready` and `strongroom_hsm_up 0`),
//! reconnects with backoff once
//! the token is back, and everything works again without a restart: keys created before
//! (sealed by the KEK, key pairs in the HSM), new key pairs, TLS handshakes and the CA.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use kmip::attributes::{names, write_attributes, Attribute};
use kmip::enums::{CryptographicAlgorithm, Operation, ResultReason, ResultStatus};
use kmip::message::ResponseBatchItem;
use kmip::{ProtocolVersion, Tag, Ttlv, Value};
use serde_json::json;

fn create_pair(c: &mut Client) -> ResponseBatchItem {
    let common = [
        Attribute::new(
            names::CRYPTOGRAPHIC_ALGORITHM,
            Value::Enumeration(CryptographicAlgorithm::EC.0),
        ),
        Attribute::new(names::CRYPTOGRAPHIC_LENGTH, Value::Integer(256)),
        Attribute::new(names::ACTIVATION_DATE, Value::DateTime(1)),
    ];
    let attrs = write_attributes(&common, c.version).remove(0).children().to_vec();
    c.call(Operation::CREATE_KEY_PAIR, vec![Ttlv::structure(Tag::COMMON_ATTRIBUTES, attrs)])
}

fn sign(c: &mut Client, private: &str) -> ResponseBatchItem {
    c.call(
        Operation::SIGN,
        vec![uid(private), Ttlv::new(Tag::DATA, Value::ByteString(b"m".to_vec()))],
    )
}

/// AES-ECB (no IV to carry) with the key `id`: the output Data.
fn encrypt(c: &mut Client, id: &str, op: Operation, data: &[u8]) -> Vec<u8> {
    let ecb = Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![enumeration(Tag::BLOCK_CIPHER_MODE, kmip::enums::BlockCipherMode::ECB.0)],
    );
    let r = c.ok(op, vec![uid(id), ecb, Ttlv::new(Tag::DATA, Value::ByteString(data.to_vec()))]);
    r.find(Tag::DATA).unwrap().as_bytes().unwrap().to_vec()
}

fn copy(from: &Path, to: &Path) {
    assert!(Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap().success());
}

fn get(server: &Server, path: &str) -> (u16, String) {
    let (status, body) =
        https_with(server.https, tls_config(&server.data_dir, None), "GET", path, &[], b"");
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn the_server_reconnects_to_the_hsm_after_its_token_storage_comes_back() {
    let dir = temp_dir("strongroom-hsm-fault");
    // The operations listener answers over plain HTTP, so probes work while the HSM,
    // holding the TLS key, is away.
    let ops = free_port();
    let config = dir.join("ops.toml");
    std::fs::write(&config, format!("[http]\nops_listen = \"127.0.0.1:{ops}\"\n")).unwrap();
    let server = Server::start_with(&dir, &["--config", config.to_str().unwrap()]);
    let certs = client_cert(&dir, "alice");
    let mut c = Client::connect(&server, &certs, "alice");
    assert_eq!(plain_http(ops, "/ready").0, 200);
    c.version = ProtocolVersion::V2_1;
    let aes = uid_of(&c.ok(Operation::CREATE, create_payload(c.version, &aes_attributes(256))));
    let material = key_material(&c.ok(Operation::GET, vec![uid(&aes)]));
    // Encrypting keeps the key open in the HSM; the copy goes with the connection.
    c.ok(Operation::ACTIVATE, vec![uid(&aes)]);
    let ciphertext = encrypt(&mut c, &aes, Operation::ENCRYPT, b"sixteen byte msg");
    let pair = create_pair(&mut c).payload.unwrap();
    let private =
        pair.find(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER).unwrap().as_text().unwrap().to_owned();
    assert_eq!(sign(&mut c, &private).result_status, ResultStatus::SUCCESS);
    let api = Api::admin(&server);
    api.ok(
        "POST",
        "/v1/pki/roles/svc",
        json!({ "allowed_domains": ["svc.internal"], "allow_subdomains": true }),
    );

    let tokens = dir.join("hsm").join("tokens");
    let saved = dir.join("tokens.saved");
    copy(&tokens, &saved);
    std::fs::remove_dir_all(&tokens).unwrap();

    // Writing a token object fails inside SoftHSM; the connection goes down.
    let failed = create_pair(&mut c);
    assert_eq!(failed.result_reason, Some(ResultReason::CRYPTOGRAPHIC_FAILURE), "{failed:?}");
    // While the token is away every HSM operation fails at once with a clear error.
    std::thread::sleep(Duration::from_millis(300));
    let down = c.call(Operation::CREATE, create_payload(c.version, &aes_attributes(256)));
    assert_eq!(down.result_reason, Some(ResultReason::CRYPTOGRAPHIC_FAILURE), "{down:?}");
    let message = down.result_message.unwrap_or_default();
    assert!(message.contains("HSM temporarily unavailable"), "{message}");
    // The listeners' TLS key is in the HSM too: new handshakes fail, promptly.
    let started = Instant::now();
    let handshake = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut fresh = Client::connect(&server, &certs, "alice");
        fresh.call(Operation::QUERY, vec![])
    }));
    assert!(handshake.is_err(), "a TLS handshake succeeded without the HSM");
    assert!(started.elapsed() < Duration::from_secs(5));
    let (status, body) = plain_http(ops, "/ready");
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    let metrics = String::from_utf8(plain_http(ops, "/metrics").1).unwrap();
    assert!(metrics.contains("strongroom_hsm_up 0"), "{metrics}");
    assert!(metrics.contains("strongroom_store_up 1"), "{metrics}");
    assert_eq!(plain_http(ops, "/health").0, 200);

    copy(&saved, &tokens);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = c.call(Operation::CREATE, create_payload(c.version, &aes_attributes(256)));
        if r.result_status == ResultStatus::SUCCESS {
            break;
        }
        assert!(Instant::now() < deadline, "no reconnection after the token came back: {r:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Sealed keys open under the KEK found again, key pairs sign with handles looked up
    // again, new pairs are made on the token, and the service's own keys (TLS, CA) sign.
    assert_eq!(key_material(&c.ok(Operation::GET, vec![uid(&aes)])), material);
    assert_eq!(encrypt(&mut c, &aes, Operation::DECRYPT, &ciphertext), b"sixteen byte msg");
    assert_eq!(sign(&mut c, &private).result_status, ResultStatus::SUCCESS);
    assert_eq!(create_pair(&mut c).result_status, ResultStatus::SUCCESS);
    let mut fresh = Client::connect(&server, &certs, "alice");
    fresh.ok(Operation::GET, vec![uid(&aes)]);
    api.ok("POST", "/v1/pki/issue/svc", json!({ "common_name": "after.svc.internal" }));
    assert_eq!(get(&server, "/ready").0, 200);
    assert!(get(&server, "/metrics").1.contains("strongroom_hsm_up 1"));
    assert_eq!(plain_http(ops, "/ready").0, 200);
    // Only the probes are there: no API, KMIP or ACME over plain HTTP.
    assert_eq!(plain_http(ops, "/v1/sys/status").0, 404);
    assert_eq!(plain_http(ops, "/acme/directory").0, 404);
    server.stop();
}
