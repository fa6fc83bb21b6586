//! What bad input gets: malformed, truncated, oversized and mistyped messages, unknown
//! operations and versions, clients without certificates. Each gets a clear KMIP error or
//! a TLS refusal; the server keeps serving and stored objects are untouched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use kmip::enums::{Operation, ResultReason, ResultStatus};
use kmip::message::ResponseMessage;
use kmip::ttlv::binary::{decode, encode, Limits};
use kmip::{ProtocolVersion, Tag, Ttlv, Value};

fn failure_reason(bytes: &[u8]) -> (Option<ResultReason>, String) {
    let r = ResponseMessage::from_ttlv(&decode(bytes, &Limits::default()).unwrap()).unwrap();
    let item = &r.batch_items[0];
    assert_eq!(item.result_status, ResultStatus::OPERATION_FAILED);
    (item.result_reason, item.result_message.clone().unwrap_or_default())
}

#[test]
fn bad_input_gets_kmip_errors_and_changes_nothing() {
    let (_dir, server, certs, mut good) = started("strongroom-bad", "alice");
    let created = good.ok(
        Operation::REGISTER,
        vec![
            enumeration(Tag::OBJECT_TYPE, kmip::enums::ObjectType::SECRET_DATA.0),
            Ttlv::structure(
                Tag::SECRET_DATA,
                vec![
                    enumeration(Tag::SECRET_DATA_TYPE, 1),
                    Ttlv::structure(
                        Tag::KEY_BLOCK,
                        vec![
                            enumeration(Tag::KEY_FORMAT_TYPE, kmip::enums::KeyFormatType::OPAQUE.0),
                            Ttlv::structure(
                                Tag::KEY_VALUE,
                                vec![Ttlv::new(
                                    Tag::KEY_MATERIAL,
                                    Value::ByteString(b"hunter2".to_vec()),
                                )],
                            ),
                        ],
                    ),
                ],
            ),
        ],
    );
    let id = uid_of(&created);

    // A Request Message whose body is not valid TTLV (a Boolean of 7).
    let mut c = Client::connect(&server, &certs, "alice");
    let garbage =
        [0x42, 0, 0x78, 1, 0, 0, 0, 16, 0x42, 0, 0x20, 6, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7];
    let (reason, msg) = failure_reason(&c.send_raw(&garbage).unwrap());
    assert_eq!(reason, Some(ResultReason::INVALID_MESSAGE));
    assert!(msg.contains("boolean"), "{msg}");
    // The same connection still works.
    assert_eq!(c.call(Operation::GET, vec![uid(&id)]).result_status, ResultStatus::SUCCESS);

    // Wrong item type for a known field: Unique Identifier as an Integer.
    let item = c.call(Operation::GET, vec![Ttlv::new(Tag::UNIQUE_IDENTIFIER, Value::Integer(5))]);
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_FIELD), "{item:?}");
    // Missing required field.
    let item = c.call(Operation::REVOKE, vec![uid(&id)]);
    assert_eq!(item.result_reason, Some(ResultReason::MISSING_DATA), "{item:?}");
    // Unknown operation.
    let item = c.call(Operation(0x0000_00AB), vec![]);
    assert_eq!(item.result_reason, Some(ResultReason::OPERATION_NOT_SUPPORTED));
    // Create of an unsupported algorithm.
    let item = c.call(
        Operation::CREATE,
        vec![enumeration(Tag::OBJECT_TYPE, 2), Ttlv::structure(Tag::TEMPLATE_ATTRIBUTE, vec![])],
    );
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_FIELD), "{item:?}");

    // Unsupported protocol version.
    let mut msg = request(ProtocolVersion { major: 3, minor: 0 }, vec![(Operation::QUERY, vec![])]);
    let (reason, _) = failure_reason(&c.send_raw(&encode(&msg.to_ttlv())).unwrap());
    assert_eq!(reason, Some(ResultReason::INVALID_MESSAGE));
    // Batch Count that disagrees with the items.
    msg.header.protocol_version = ProtocolVersion::V1_4;
    msg.header.batch_count = 2;
    let (reason, _) = failure_reason(&c.send_raw(&encode(&msg.to_ttlv())).unwrap());
    assert_eq!(reason, Some(ResultReason::INVALID_MESSAGE));

    // More than 1024 items in one batch: refused before any runs.
    let many = request(ProtocolVersion::V1_4, vec![(Operation::QUERY, vec![]); 1025]);
    let (reason, msg) = failure_reason(&c.send_raw(&encode(&many.to_ttlv())).unwrap());
    assert_eq!(reason, Some(ResultReason::INVALID_MESSAGE));
    assert!(msg.contains("1024"), "{msg}");
    // A batch whose answers grow past the client's Maximum Response Size stops there: the
    // items after it are not run.
    let mut big = request(
        ProtocolVersion::V1_4,
        vec![(Operation::RNG_RETRIEVE, vec![Ttlv::new(Tag::DATA_LENGTH, Value::Integer(800))]); 4],
    );
    big.header.maximum_response_size = Some(1400);
    let r = c.send(&big);
    let statuses: Vec<_> = r.batch_items.iter().map(|i| i.result_reason).collect();
    assert_eq!(statuses, [None, Some(ResultReason::RESPONSE_TOO_LARGE)], "{r:?}");

    // A message declaring more than the size limit is refused before it is read.
    let mut c = Client::connect(&server, &certs, "alice");
    let huge = [0x42, 0, 0x78, 1, 0x10, 0, 0, 0];
    let (reason, msg) = failure_reason(&c.send_raw(&huge).unwrap());
    assert_eq!(reason, Some(ResultReason::INVALID_MESSAGE));
    assert!(msg.contains("size limit"), "{msg}");

    // Something that is not a Request Message at all.
    let mut c = Client::connect(&server, &certs, "alice");
    let (reason, _) = failure_reason(&c.send_raw(b"GET / HTTP/1.1\r\n\r\n").unwrap());
    assert_eq!(reason, Some(ResultReason::INVALID_MESSAGE));

    // A client without a certificate does not get past the handshake.
    let mut anon = Client::connect_with(server.kmip, tls_config(&certs, None));
    assert!(anon
        .send_raw(&encode(
            &request(ProtocolVersion::V1_4, vec![(Operation::QUERY, vec![])]).to_ttlv()
        ))
        .is_err());

    // A certificate from another CA is refused too.
    let other = temp_dir("strongroom-other-ca");
    let other_certs = client_cert(&other, "mallory");
    let config = tls_config_trusting(&certs.join("ca.crt"), &other_certs, Some("mallory"));
    let mut evil = Client::connect_with(server.kmip, config);
    assert!(evil
        .send_raw(&encode(
            &request(ProtocolVersion::V1_4, vec![(Operation::QUERY, vec![])]).to_ttlv()
        ))
        .is_err());

    // After all that, the object is intact.
    let r = good.ok(Operation::GET, vec![uid(&id)]);
    let material = r
        .find(Tag::SECRET_DATA)
        .unwrap()
        .find(Tag::KEY_BLOCK)
        .unwrap()
        .find(Tag::KEY_VALUE)
        .unwrap()
        .find(Tag::KEY_MATERIAL)
        .unwrap();
    assert_eq!(material.value, Value::ByteString(b"hunter2".to_vec()));
    server.stop();
}

#[test]
fn truncated_and_idle_clients_are_timed_out() {
    let dir = temp_dir("strongroom-idle");
    let cfg = dir.join("short-timeouts.toml");
    std::fs::write(&cfg, "[kmip]\nidle_timeout_secs = 1\nrequest_timeout_secs = 1\n").unwrap();
    let server = Server::start_with(&dir, &["--config", cfg.to_str().unwrap()]);
    let certs = client_cert(&dir, "alice");
    // Half a message, then silence: the server closes the connection.
    let mut c = Client::connect(&server, &certs, "alice");
    let full = encode(&request(ProtocolVersion::V1_4, vec![(Operation::QUERY, vec![])]).to_ttlv());
    let started = std::time::Instant::now();
    assert!(c.send_raw(&full[..full.len() / 2]).is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // An idle connection is closed too; a fresh one is served.
    let mut idle = Client::connect(&server, &certs, "alice");
    idle.ok(Operation::QUERY, vec![]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(idle.read_message().is_err());
    Client::connect(&server, &certs, "alice").ok(Operation::QUERY, vec![]);

    // Handshakes never finished from one address take at most 64 connection slots: the
    // next connection from it is refused until they go.
    let silent: Vec<_> =
        (0..64).map(|_| std::net::TcpStream::connect(server.kmip).unwrap()).collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut refused = Client::connect(&server, &certs, "alice");
    assert!(refused.send_raw(&full).is_err(), "a 65th handshake from one address");
    drop(silent);
    std::thread::sleep(std::time::Duration::from_millis(300));
    Client::connect(&server, &certs, "alice").ok(Operation::QUERY, vec![]);
    server.stop();
}

/// Handshakes under way take at most a quarter of the connection slots, from however many
/// addresses: clients that never finish theirs cannot keep the others out.
#[test]
fn unfinished_handshakes_take_a_quarter_of_the_slots() {
    let dir = temp_dir("strongroom-handshake-pool");
    let cfg = dir.join("few.toml");
    std::fs::write(&cfg, "[kmip]\nmax_connections = 8\n").unwrap();
    let server = Server::start_with(&dir, &["--config", cfg.to_str().unwrap()]);
    let certs = client_cert(&dir, "alice");
    let mut established = Client::connect(&server, &certs, "alice");
    established.ok(Operation::QUERY, vec![]);
    let silent: Vec<_> =
        (0..2).map(|_| std::net::TcpStream::connect(server.kmip).unwrap()).collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let full = encode(&request(ProtocolVersion::V1_4, vec![(Operation::QUERY, vec![])]).to_ttlv());
    let mut refused = Client::connect(&server, &certs, "alice");
    assert!(refused.send_raw(&full).is_err(), "a third handshake at once");
    established.ok(Operation::QUERY, vec![]);
    drop(silent);
    std::thread::sleep(std::time::Duration::from_millis(300));
    Client::connect(&server, &certs, "alice").ok(Operation::QUERY, vec![]);
    server.stop();
}

#[test]
fn sealed_material_is_bound_to_its_object() {
    let (dir, server, certs, mut c) = started("strongroom-swap", "alice");
    let create = |c: &mut Client| {
        uid_of(&c.ok(Operation::CREATE, create_payload(c.version, &aes_attributes(128))))
    };
    let (a, b) = (create(&mut c), create(&mut c));
    drop(c);
    server.stop();

    // Someone with write access to the database swaps the two sealed keys.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}", dir.join("strongroom.db").display());
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let read = |id: String| {
            sqlx::query_as::<_, (Vec<u8>,)>("SELECT sealed_material FROM objects WHERE id = ?")
                .bind(id)
        };
        let (sa,) = read(a.clone()).fetch_one(&mut db).await.unwrap();
        let (sb,) = read(b.clone()).fetch_one(&mut db).await.unwrap();
        assert_ne!(sa, sb);
        for (id, blob) in [(&a, sb), (&b, sa)] {
            sqlx::query("UPDATE objects SET sealed_material = ? WHERE id = ?")
                .bind(blob)
                .bind(id)
                .execute(&mut db)
                .await
                .unwrap();
        }
    });

    let server = Server::start(&dir);
    let mut c = Client::connect(&server, &certs, "alice");
    for id in [&a, &b] {
        let item = c.call(Operation::GET, vec![uid(id)]);
        assert_eq!(item.result_reason, Some(ResultReason::CRYPTOGRAPHIC_FAILURE), "{item:?}");
    }
    server.stop();
}
