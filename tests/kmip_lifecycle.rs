//! Black-box KMIP tests against the real binary over mutual TLS: the key lifecycle in the
//! 1.x and 2.x attribute models, persistence across restarts, owner isolation, batches and
//! the ID Placeholder, time-driven activation, and replayed client captures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use kmip::attributes::{names, write_attributes, Attribute};
use kmip::enums::{
    CryptographicAlgorithm, ObjectType, Operation, ResultReason, ResultStatus,
    RevocationReasonCode, State,
};
use kmip::message::RequestMessage;
use kmip::ttlv::binary::{decode, encode, Limits};
use kmip::{ProtocolVersion, Tag, Ttlv, Value};

fn key_attributes(name: &str) -> Vec<Attribute> {
    let mut attrs = aes_attributes(256);
    attrs.push(Attribute::new(names::NAME, name_value(name)));
    attrs
}

fn locate_by_name(c: &mut Client, name: &str) -> Vec<String> {
    let attr = Attribute::new(names::NAME, name_value(name));
    let payload =
        if c.version.is_v2() { write_attributes(&[attr], c.version) } else { vec![attr.to_v1()] };
    let r = c.ok(Operation::LOCATE, payload);
    r.find_all(Tag::UNIQUE_IDENTIFIER).map(|t| t.as_text().unwrap().to_owned()).collect()
}

/// A Create Key Pair's Common Attributes for an EC P-256 pair, as `version` writes them.
fn ec_p256_pair(version: ProtocolVersion) -> Ttlv {
    let attrs = [
        Attribute::new(
            names::CRYPTOGRAPHIC_ALGORITHM,
            Value::Enumeration(CryptographicAlgorithm::EC.0),
        ),
        Attribute::new(names::CRYPTOGRAPHIC_LENGTH, Value::Integer(256)),
    ];
    let written = write_attributes(&attrs, version).remove(0);
    Ttlv::structure(Tag::COMMON_ATTRIBUTES, written.children().to_vec())
}

fn state_of(c: &mut Client, id: &str) -> State {
    let names_payload = if c.version.is_v2() {
        vec![uid(id), enumeration(Tag::ATTRIBUTE_REFERENCE, Tag::STATE.0)]
    } else {
        vec![uid(id), text(Tag::ATTRIBUTE_NAME, names::STATE)]
    };
    let r = c.ok(Operation::GET_ATTRIBUTES, names_payload);
    let state = if c.version.is_v2() {
        r.find(Tag::ATTRIBUTES).unwrap().find(Tag::STATE).unwrap().as_enum().unwrap()
    } else {
        let a = Attribute::from_v1(r.find(Tag::ATTRIBUTE).unwrap()).unwrap();
        assert_eq!(a.name, names::STATE);
        match a.value {
            Value::Enumeration(s) => s,
            other => panic!("{other:?}"),
        }
    };
    State(state)
}

fn expect_failure(item: &kmip::message::ResponseBatchItem, reason: ResultReason) {
    assert_eq!(item.result_status, ResultStatus::OPERATION_FAILED, "{item:?}");
    assert_eq!(item.result_reason, Some(reason), "{:?}", item.result_message);
    assert!(item.result_message.as_deref().is_some_and(|m| !m.is_empty()));
}

fn lifecycle(version: ProtocolVersion) {
    let (_dir, server, _certs, mut c) = started("strongroom-lifecycle", "alice");
    c.version = version;
    let name = format!("lifecycle-{version}");

    let created = c.ok(Operation::CREATE, create_payload(version, &key_attributes(&name)));
    let id = uid_of(&created);
    let key = key_material(&c.ok(Operation::GET, vec![uid(&id)]));
    assert_eq!(key.len(), 32);
    assert_eq!(key_material(&c.ok(Operation::GET, vec![uid(&id)])), key, "Get is stable");
    assert_eq!(locate_by_name(&mut c, &name), vec![id.clone()]);
    assert_eq!(state_of(&mut c, &id), State::PRE_ACTIVE);

    // Every attribute, in the client's model.
    let all = c.ok(Operation::GET_ATTRIBUTES, vec![uid(&id)]);
    let listed = c.ok(Operation::GET_ATTRIBUTE_LIST, vec![uid(&id)]);
    if version.is_v2() {
        let attrs = all.find(Tag::ATTRIBUTES).unwrap();
        assert_eq!(attrs.find(Tag::CRYPTOGRAPHIC_LENGTH).unwrap().as_i32().unwrap(), 256);
        assert!(listed.find(Tag::ATTRIBUTE_REFERENCE).is_some());
        // Generated in SoftHSM: OpenSSL's CTR_DRBG over AES-256 (KMIP 2.1 §4.46).
        let rng = attrs.find(Tag::RANDOM_NUMBER_GENERATOR).unwrap();
        assert_eq!(
            rng.find(Tag::RNG_ALGORITHM).map(|a| &a.value),
            Some(&Value::Enumeration(kmip::enums::RNGAlgorithm::DRBG.0))
        );
    } else {
        let attrs: Vec<Attribute> =
            all.find_all(Tag::ATTRIBUTE).map(|a| Attribute::from_v1(a).unwrap()).collect();
        for n in [
            names::UNIQUE_IDENTIFIER,
            names::OBJECT_TYPE,
            names::CRYPTOGRAPHIC_ALGORITHM,
            names::NAME,
            names::INITIAL_DATE,
            names::RANDOM_NUMBER_GENERATOR,
        ] {
            assert!(attrs.iter().any(|a| a.name == n), "{n} missing from {attrs:?}");
        }
        assert!(listed.find_all(Tag::ATTRIBUTE_NAME).any(|n| n.as_text().unwrap() == names::NAME));
    }

    // Obtain Lease grants the configured Lease Time (default an hour), also an attribute.
    let lease = c.ok(Operation::OBTAIN_LEASE, vec![uid(&id)]);
    assert_eq!(lease.find(Tag::LEASE_TIME).map(|t| &t.value), Some(&Value::Interval(3600)));
    assert!(matches!(
        lease.find(Tag::LAST_CHANGE_DATE).map(|t| &t.value),
        Some(Value::DateTime(_))
    ));
    let leased = c.ok(Operation::GET_ATTRIBUTE_LIST, vec![uid(&id)]);
    let listed = if version.is_v2() {
        let lease_tag = Value::Enumeration(Tag::LEASE_TIME.0);
        leased.find_all(Tag::ATTRIBUTE_REFERENCE).any(|r| r.value == lease_tag)
    } else {
        leased.find_all(Tag::ATTRIBUTE_NAME).any(|n| n.as_text().unwrap() == names::LEASE_TIME)
    };
    assert!(listed, "Lease Time in Get Attribute List");

    // An Active key cannot be destroyed; revoke first.
    c.ok(Operation::ACTIVATE, vec![uid(&id)]);
    assert_eq!(state_of(&mut c, &id), State::ACTIVE);
    let again = c.call(Operation::ACTIVATE, vec![uid(&id)]);
    let wrong_state = if version.is_v2() {
        ResultReason::WRONG_KEY_LIFECYCLE_STATE
    } else {
        ResultReason::PERMISSION_DENIED
    };
    expect_failure(&again, wrong_state);
    expect_failure(&c.call(Operation::DESTROY, vec![uid(&id)]), wrong_state);
    let reason = revocation(RevocationReasonCode::CESSATION_OF_OPERATION);
    c.ok(Operation::REVOKE, vec![uid(&id), reason]);
    assert_eq!(state_of(&mut c, &id), State::DEACTIVATED);
    c.ok(Operation::DESTROY, vec![uid(&id)]);
    assert_eq!(state_of(&mut c, &id), State::DESTROYED);
    let destroyed = if version.is_v2() {
        ResultReason::OBJECT_DESTROYED
    } else {
        ResultReason::ILLEGAL_OPERATION
    };
    expect_failure(&c.call(Operation::GET, vec![uid(&id)]), destroyed);
    assert!(locate_by_name(&mut c, &name).is_empty(), "destroyed keys are not located by default");
    server.stop();
}

#[test]
fn key_lifecycle_kmip_1_4() {
    lifecycle(ProtocolVersion::V1_4);
}

#[test]
fn key_lifecycle_kmip_2_1() {
    lifecycle(ProtocolVersion::V2_1);
}

#[test]
fn objects_survive_restart_and_stay_private_to_their_owner() {
    let dir = temp_dir("strongroom-restart");
    let server = Server::start(&dir);
    let alice = client_cert(&dir, "alice");
    let bob = client_cert(&dir, "bob");
    let mut a = Client::connect(&server, &alice, "alice");
    let id =
        uid_of(&a.ok(Operation::CREATE, create_payload(a.version, &key_attributes("shared-name"))));
    let key = key_material(&a.ok(Operation::GET, vec![uid(&id)]));
    // Register: client-supplied material is wrapped before it is stored.
    let secret = vec![0x5Au8; 16];
    let registered = uid_of(&a.ok(
        Operation::REGISTER,
        vec![
            enumeration(Tag::OBJECT_TYPE, ObjectType::SYMMETRIC_KEY.0),
            Ttlv::structure(Tag::TEMPLATE_ATTRIBUTE, vec![]),
            Ttlv::structure(
                Tag::SYMMETRIC_KEY,
                vec![Ttlv::structure(
                    Tag::KEY_BLOCK,
                    vec![
                        enumeration(Tag::KEY_FORMAT_TYPE, kmip::enums::KeyFormatType::RAW.0),
                        Ttlv::structure(
                            Tag::KEY_VALUE,
                            vec![Ttlv::new(Tag::KEY_MATERIAL, Value::ByteString(secret.clone()))],
                        ),
                        enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, CryptographicAlgorithm::AES.0),
                        int(Tag::CRYPTOGRAPHIC_LENGTH, 128),
                    ],
                )],
            ),
        ],
    ));
    drop(a);
    server.stop();

    // Nothing in the database is the plaintext key.
    let db = std::fs::read(dir.join("strongroom.db")).unwrap();
    let wal = std::fs::read(dir.join("strongroom.db-wal")).unwrap_or_default();
    for hay in [&db, &wal] {
        assert!(!hay.windows(key.len()).any(|w| w == key.as_slice()), "plaintext key in the store");
        assert!(
            !hay.windows(secret.len()).any(|w| w == secret.as_slice()),
            "plaintext secret in the store"
        );
    }

    let server = Server::start(&dir);
    let mut a = Client::connect(&server, &alice, "alice");
    assert_eq!(key_material(&a.ok(Operation::GET, vec![uid(&id)])), key);
    assert_eq!(key_material(&a.ok(Operation::GET, vec![uid(&registered)])), secret);

    let mut b = Client::connect(&server, &bob, "bob");
    expect_failure(&b.call(Operation::GET, vec![uid(&id)]), ResultReason::PERMISSION_DENIED);
    expect_failure(&b.call(Operation::DESTROY, vec![uid(&id)]), ResultReason::PERMISSION_DENIED);
    expect_failure(
        &b.call(Operation::GET_ATTRIBUTES, vec![uid(&id)]),
        ResultReason::PERMISSION_DENIED,
    );
    assert!(locate_by_name(&mut b, "shared-name").is_empty());
    expect_failure(
        &b.call(Operation::GET, vec![uid("no-such-object")]),
        ResultReason::ITEM_NOT_FOUND,
    );
    assert_eq!(key_material(&a.ok(Operation::GET, vec![uid(&id)])), key, "still intact");
    server.stop();
}

#[test]
fn batches_placeholder_attributes_and_activation_dates() {
    let (_dir, server, _certs, mut c) = started("strongroom-batch", "alice");

    // Create then Activate and Get through the ID Placeholder, with batch item ids echoed.
    let mut msg = request(
        ProtocolVersion::V1_2,
        vec![
            (Operation::CREATE, create_payload(ProtocolVersion::V1_2, &key_attributes("batch"))),
            (Operation::ACTIVATE, vec![]),
            (Operation::GET, vec![]),
        ],
    );
    for (i, item) in msg.batch_items.iter_mut().enumerate() {
        item.unique_batch_item_id = Some(vec![i as u8 + 1]);
    }
    let r = c.send(&msg);
    assert_eq!(r.batch_items.len(), 3);
    for (i, item) in r.batch_items.iter().enumerate() {
        assert_eq!(item.result_status, ResultStatus::SUCCESS, "{item:?}");
        assert_eq!(item.unique_batch_item_id, Some(vec![i as u8 + 1]));
    }
    let id = uid_of(r.batch_items[0].payload.as_ref().unwrap());
    assert_eq!(key_material(r.batch_items[2].payload.as_ref().unwrap()).len(), 32);

    // A failing item stops the batch unless Continue is asked for.
    let mut msg = request(
        ProtocolVersion::V1_4,
        vec![(Operation::GET, vec![uid("missing")]), (Operation::GET, vec![uid(&id)])],
    );
    assert_eq!(c.send(&msg).batch_items.len(), 1);
    msg.header.batch_error_continuation_option =
        Some(kmip::enums::BatchErrorContinuationOption::CONTINUE);
    let r = c.send(&msg);
    assert_eq!(r.batch_items[0].result_status, ResultStatus::OPERATION_FAILED);
    assert_eq!(r.batch_items[1].result_status, ResultStatus::SUCCESS);

    // Custom attributes, as vCenter adds them, and Modify/Delete by index.
    for (n, v) in [("x-Product", "vSphere"), ("x-Vendor", "VMware")] {
        c.ok(
            Operation::ADD_ATTRIBUTE,
            vec![uid(&id), Attribute::new(n, Value::TextString(v.into())).to_v1()],
        );
    }
    let mut renamed = Attribute::new(names::NAME, name_value("batch-renamed"));
    renamed.index = Some(0);
    c.ok(Operation::MODIFY_ATTRIBUTE, vec![uid(&id), renamed.to_v1()]);
    assert_eq!(locate_by_name(&mut c, "batch-renamed"), vec![id.clone()]);
    c.ok(Operation::DELETE_ATTRIBUTE, vec![uid(&id), text(Tag::ATTRIBUTE_NAME, "x-Vendor")]);
    let attrs = c.ok(
        Operation::GET_ATTRIBUTES,
        vec![
            uid(&id),
            text(Tag::ATTRIBUTE_NAME, "x-Product"),
            text(Tag::ATTRIBUTE_NAME, "x-Vendor"),
        ],
    );
    let got: Vec<_> =
        attrs.find_all(Tag::ATTRIBUTE).map(|a| Attribute::from_v1(a).unwrap().name).collect();
    assert_eq!(got, vec!["x-Product".to_owned()]);
    let read_only = Attribute::new(names::UNIQUE_IDENTIFIER, Value::TextString("forged".into()));
    expect_failure(
        &c.call(Operation::ADD_ATTRIBUTE, vec![uid(&id), read_only.to_v1()]),
        ResultReason::PERMISSION_DENIED,
    );

    // Activation Date in the future: Pre-Active until it passes, then Active on its own.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut attrs = key_attributes("scheduled");
    attrs.push(Attribute::new(names::ACTIVATION_DATE, Value::DateTime(now + 2)));
    c.version = ProtocolVersion::V2_1;
    let scheduled = uid_of(&c.ok(Operation::CREATE, create_payload(c.version, &attrs)));
    assert_eq!(state_of(&mut c, &scheduled), State::PRE_ACTIVE);
    std::thread::sleep(std::time::Duration::from_millis(3100));
    assert_eq!(state_of(&mut c, &scheduled), State::ACTIVE);

    // Discover Versions answers the client's preferences that the server speaks.
    let r = c.ok(
        Operation::DISCOVER_VERSIONS,
        vec![ProtocolVersion { major: 9, minor: 9 }.to_ttlv(), ProtocolVersion::V1_1.to_ttlv()],
    );
    let versions: Vec<_> =
        r.find_all(Tag::PROTOCOL_VERSION).map(|v| ProtocolVersion::from_ttlv(v).unwrap()).collect();
    assert_eq!(versions, vec![ProtocolVersion::V1_1]);
    let q = c.ok(
        Operation::QUERY,
        vec![enumeration(Tag::QUERY_FUNCTION, 1), enumeration(Tag::QUERY_FUNCTION, 3)],
    );
    assert!(q.find_all(Tag::OPERATION).count() >= 10);
    assert_eq!(q.find(Tag::VENDOR_IDENTIFICATION).unwrap().as_text().unwrap(), "Strongroom");
    // Nothing runs asynchronously: Poll finds nothing, Cancel reports nothing to cancel.
    let acv = Ttlv::new(Tag::ASYNCHRONOUS_CORRELATION_VALUE, Value::ByteString(vec![1, 2]));
    let item = c.call(Operation::POLL, vec![acv.clone()]);
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_ASYNCHRONOUS_CORRELATION_VALUE));
    let r = c.ok(Operation::CANCEL, vec![acv]);
    assert_eq!(r.find(Tag::CANCELLATION_RESULT).unwrap().as_enum().unwrap(), 5);
    let q = c.ok(Operation::QUERY, vec![enumeration(Tag::QUERY_FUNCTION, 11)]);
    let caps = q.find(Tag::CAPABILITY_INFORMATION).unwrap();
    assert_eq!(caps.find(Tag::BATCH_CONTINUE_CAPABILITY).unwrap().as_bool(), Ok(true));
    assert_eq!(caps.find(Tag::STREAMING_CAPABILITY).unwrap().as_bool(), Ok(false));
    server.stop();
}

fn capture(file: &str) -> Vec<(String, Vec<u8>)> {
    let path = format!("{}/kmip/tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let (name, h) = l.split_once(' ').unwrap();
            (name.to_owned(), hex::decode(h.trim()).unwrap())
        })
        .collect()
}

/// Replaces every Unique Identifier text in a captured request with `id`.
fn retarget(bytes: &[u8], id: &str) -> Vec<u8> {
    fn walk(t: &mut Ttlv, id: &str) {
        if t.tag == Tag::UNIQUE_IDENTIFIER {
            if let Value::TextString(s) = &mut t.value {
                *s = id.to_owned();
            }
        }
        if let Value::Structure(c) = &mut t.value {
            c.iter_mut().for_each(|c| walk(c, id));
        }
    }
    let mut item = decode(bytes, &Limits::default()).unwrap();
    walk(&mut item, id);
    encode(&item)
}

fn replay(c: &mut Client, bytes: &[u8]) -> kmip::message::ResponseMessage {
    let r = c.send_raw(bytes).unwrap();
    let r = kmip::message::ResponseMessage::from_ttlv(&decode(&r, &Limits::default()).unwrap())
        .unwrap();
    let req = RequestMessage::from_ttlv(&decode(bytes, &Limits::default()).unwrap()).unwrap();
    assert_eq!(
        r.header.protocol_version, req.header.protocol_version,
        "answers in the client's version"
    );
    for item in &r.batch_items {
        assert_eq!(item.result_status, ResultStatus::SUCCESS, "{item:?}");
    }
    r
}

#[test]
fn replayed_vcenter_and_pg_tde_requests_succeed() {
    let dir = temp_dir("strongroom-captures");
    let server = Server::start(&dir);
    let certs = client_cert(&dir, "alice");

    // VMware vCenter (KMIP 1.1): discover, query, create, then attributes and get on it.
    let mut c = Client::connect(&server, &certs, "alice");
    let vmware = capture("client-capture-vmware-vcenter-kmip-1.1.hex.txt");
    let mut id = String::new();
    for (name, bytes) in &vmware {
        let bytes = if id.is_empty() { bytes.clone() } else { retarget(bytes, &id) };
        let r = replay(&mut c, &bytes);
        if name == "CREATE" {
            id = uid_of(r.batch_items[0].payload.as_ref().unwrap());
        }
        if name == "GET" {
            assert_eq!(key_material(r.batch_items[0].payload.as_ref().unwrap()).len(), 32);
        }
    }
    assert!(!id.is_empty());

    // PostgreSQL pg_tde: Register with 1.4, then Locate and Get with 1.0, each call on a new
    // connection as pg_tde does.
    let pg = capture("client-capture-postgres-pg_tde.hex.txt");
    let registered = {
        let mut c = Client::connect(&server, &certs, "alice");
        uid_of(replay(&mut c, &pg[0].1).batch_items[0].payload.as_ref().unwrap())
    };
    let located = {
        let mut c = Client::connect(&server, &certs, "alice");
        let r = replay(&mut c, &pg[1].1);
        let p = r.batch_items[0].payload.clone().unwrap();
        assert!(p.find(Tag::LOCATED_ITEMS).is_none(), "Located Items does not exist in KMIP 1.0");
        p.find_all(Tag::UNIQUE_IDENTIFIER)
            .map(|t| t.as_text().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(located, vec![registered.clone()]);
    let mut c = Client::connect(&server, &certs, "alice");
    let r = replay(&mut c, &retarget(&pg[2].1, &registered));
    assert_eq!(
        key_material(r.batch_items[0].payload.as_ref().unwrap()),
        hex::decode("c1be2b9c939788a7cd09a50d5870d6c0").unwrap()
    );
    server.stop();
}

fn links(c: &mut Client, id: &str) -> Vec<(u32, String)> {
    let r = c.ok(Operation::GET_ATTRIBUTES, vec![uid(id), text(Tag::ATTRIBUTE_NAME, "Link")]);
    r.find_all(Tag::ATTRIBUTE)
        .map(|a| Attribute::from_v1(a).unwrap().value)
        .map(|v| {
            let t = Ttlv::new(Tag::LINK, v);
            (
                t.find(Tag::LINK_TYPE).unwrap().as_enum().unwrap(),
                t.find(Tag::LINKED_OBJECT_IDENTIFIER).unwrap().as_text().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn rekey_moves_the_name_and_links_both_keys() {
    let (_dir, server, _certs, mut c) = started("strongroom-rekey", "alice");
    let old =
        uid_of(&c.ok(Operation::CREATE, create_payload(c.version, &key_attributes("tde-key"))));
    c.ok(Operation::ACTIVATE, vec![uid(&old)]);
    let old_key = key_material(&c.ok(Operation::GET, vec![uid(&old)]));

    let new = uid_of(&c.ok(Operation::RE_KEY, vec![uid(&old)]));
    assert_ne!(new, old);
    let new_key = key_material(&c.ok(Operation::GET, vec![uid(&new)]));
    assert_eq!(new_key.len(), 32);
    assert_ne!(new_key, old_key);
    assert_eq!(locate_by_name(&mut c, "tde-key"), vec![new.clone()], "the name moved");
    assert_eq!(state_of(&mut c, &new), State::ACTIVE, "activation date copied");
    use kmip::enums::LinkType;
    assert_eq!(links(&mut c, &new), vec![(LinkType::REPLACED_OBJECT_LINK.0, old.clone())]);
    assert_eq!(links(&mut c, &old), vec![(LinkType::REPLACEMENT_OBJECT_LINK.0, new.clone())]);
    assert_eq!(key_material(&c.ok(Operation::GET, vec![uid(&old)])), old_key, "old key readable");

    // With an Offset the replacement activates later.
    let later = uid_of(
        &c.ok(Operation::RE_KEY, vec![uid(&new), Ttlv::new(Tag::OFFSET, Value::Interval(3600))]),
    );
    assert_eq!(state_of(&mut c, &later), State::PRE_ACTIVE);
    assert_eq!(locate_by_name(&mut c, "tde-key"), vec![later]);
    server.stop();
}

#[test]
fn archive_and_recover() {
    let (_dir, server, _certs, mut c) = started("strongroom-archive", "alice");
    let id = uid_of(&c.ok(Operation::CREATE, create_payload(c.version, &key_attributes("cold"))));
    let fresh_of = |c: &mut Client, id: &str| {
        let r =
            c.ok(Operation::GET_ATTRIBUTES, vec![uid(id), text(Tag::ATTRIBUTE_NAME, names::FRESH)]);
        Attribute::from_v1(r.find(Tag::ATTRIBUTE).unwrap()).unwrap().value
    };
    let fresh = |c: &mut Client| fresh_of(c, &id);
    assert_eq!(fresh(&mut c), Value::Boolean(true), "not served yet");
    c.ok(Operation::ARCHIVE, vec![uid(&id)]);
    expect_failure(&c.call(Operation::GET, vec![uid(&id)]), ResultReason::OBJECT_ARCHIVED);
    assert_eq!(state_of(&mut c, &id), State::PRE_ACTIVE, "attributes stay readable");
    assert!(locate_by_name(&mut c, "cold").is_empty(), "not in on-line storage");
    let archived = c.ok(
        Operation::LOCATE,
        vec![
            int(Tag::STORAGE_STATUS_MASK, 2),
            Attribute::new(names::NAME, name_value("cold")).to_v1(),
        ],
    );
    assert_eq!(uid_of(&archived), id);
    c.ok(Operation::RECOVER, vec![uid(&id)]);
    assert_eq!(key_material(&c.ok(Operation::GET, vec![uid(&id)])).len(), 32);
    assert_eq!(fresh(&mut c), Value::Boolean(false), "served once");
    assert_eq!(locate_by_name(&mut c, "cold"), vec![id.clone()]);

    // Fresh is the server's (KMIP 2.1 §4.24): Create may not set it, Register may say an
    // object is not fresh.
    let not_fresh = Attribute::new(names::FRESH, Value::Boolean(false));
    let mut attrs = key_attributes("not-fresh");
    attrs.push(not_fresh.clone());
    let item = c.call(Operation::CREATE, create_payload(c.version, &attrs));
    expect_failure(&item, ResultReason::PERMISSION_DENIED);
    let block = Ttlv::structure(
        Tag::KEY_BLOCK,
        vec![
            enumeration(Tag::KEY_FORMAT_TYPE, kmip::enums::KeyFormatType::RAW.0),
            Ttlv::structure(
                Tag::KEY_VALUE,
                vec![Ttlv::new(Tag::KEY_MATERIAL, Value::ByteString(vec![7; 16]))],
            ),
            enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, CryptographicAlgorithm::AES.0),
            int(Tag::CRYPTOGRAPHIC_LENGTH, 128),
        ],
    );
    let registered = uid_of(&c.ok(
        Operation::REGISTER,
        vec![
            enumeration(Tag::OBJECT_TYPE, ObjectType::SYMMETRIC_KEY.0),
            Ttlv::structure(Tag::TEMPLATE_ATTRIBUTE, vec![not_fresh.to_v1()]),
            Ttlv::structure(Tag::SYMMETRIC_KEY, vec![block]),
        ],
    ));
    assert_eq!(fresh_of(&mut c, &registered), Value::Boolean(false));
    server.stop();
}

/// The operations a Query lists for `version`.
fn queried_operations(c: &mut Client) -> Vec<Operation> {
    let f = enumeration(Tag::QUERY_FUNCTION, kmip::enums::QueryFunction::QUERY_OPERATIONS.0);
    let r = c.ok(Operation::QUERY, vec![f]);
    r.find_all(Tag::OPERATION).map(|o| Operation(o.as_enum().unwrap())).collect()
}

/// What depends on the protocol version beyond attributes: Query lists only the operations
/// the client's version defines; Log (2.x) goes to the server log; Interop (2.x) is off
/// unless configured; a Name an object already has is refused when added again.
#[test]
fn version_gated_operations_log_interop_and_names() {
    let (_dir, server, _certs, mut c) = started("strongroom-ops-by-version", "alice");
    c.version = ProtocolVersion::V1_0;
    let ops = queried_operations(&mut c);
    assert!(ops.contains(&Operation::GET) && ops.contains(&Operation::CHECK));
    for newer in
        [Operation::ENCRYPT, Operation::DISCOVER_VERSIONS, Operation::SET_ATTRIBUTE, Operation::LOG]
    {
        assert!(!ops.contains(&newer), "{newer:?} listed to a 1.0 client");
    }
    c.version = ProtocolVersion::V2_1;
    let ops = queried_operations(&mut c);
    assert!(ops.contains(&Operation::ENCRYPT) && ops.contains(&Operation::LOG));
    assert!(!ops.contains(&Operation::INTEROP), "Interop is off by default");

    let log = |c: &mut Client| {
        c.call(Operation::LOG, vec![text(Tag::LOG_MESSAGE, "rotating TDE keys\nfake line")])
    };
    assert_eq!(log(&mut c).result_status, ResultStatus::SUCCESS);
    let interop = c.call(
        Operation::INTEROP,
        vec![
            enumeration(Tag::INTEROP_FUNCTION, kmip::enums::InteropFunction::BEGIN.0),
            text(Tag::INTEROP_IDENTIFIER, "BL-M-1-21"),
        ],
    );
    expect_failure(&interop, ResultReason::OPERATION_NOT_SUPPORTED);
    c.version = ProtocolVersion::V1_4;
    expect_failure(&log(&mut c), ResultReason::OPERATION_NOT_SUPPORTED);

    c.version = ProtocolVersion::V2_1;
    let id = uid_of(&c.ok(Operation::CREATE, create_payload(c.version, &key_attributes("once"))));
    let again = Attribute::new(names::NAME, name_value("once"));
    let add = |c: &mut Client, a: &Attribute| {
        let new = Ttlv::structure(Tag::NEW_ATTRIBUTE, vec![a.to_v2()]);
        c.call(Operation::ADD_ATTRIBUTE, vec![uid(&id), new])
    };
    expect_failure(&add(&mut c, &again), ResultReason::NON_UNIQUE_NAME_ATTRIBUTE);
    let other = Attribute::new(names::NAME, name_value("twice"));
    assert_eq!(add(&mut c, &other).result_status, ResultStatus::SUCCESS);
    server.stop();
}

/// Batch Error Continuation Option Undo (KMIP 1.4 §6.7): when an item fails, the items
/// before it are taken back and answered Operation Undone; objects they created are gone
/// (from the store and the HSM), objects they changed are as before. Items that cannot be
/// taken back are refused in such a batch.
#[test]
fn undo_batches_take_back_what_succeeded() {
    let (_dir, server, _certs, mut c) = started("strongroom-undo", "alice");
    c.version = ProtocolVersion::V2_1;
    let base =
        uid_of(&c.ok(Operation::CREATE, create_payload(c.version, &key_attributes("undo-base"))));
    let count =
        |c: &mut Client| c.ok(Operation::LOCATE, vec![]).find_all(Tag::UNIQUE_IDENTIFIER).count();
    let before = count(&mut c);
    let note = Attribute::new("x-note", Value::TextString("batch".into()));
    let pair = ec_p256_pair(c.version);
    let sign_mask =
        Ttlv::new(Tag::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(kmip::enums::usage_mask::SIGN));
    let undo = |c: &mut Client, items: Vec<(Operation, Vec<Ttlv>)>| {
        let mut msg = request(c.version, items);
        msg.header.batch_error_continuation_option =
            Some(kmip::enums::BatchErrorContinuationOption::UNDO);
        c.send(&msg).batch_items
    };
    let r = undo(
        &mut c,
        vec![
            (Operation::ACTIVATE, vec![uid(&base)]),
            (
                Operation::ADD_ATTRIBUTE,
                vec![uid(&base), Ttlv::structure(Tag::NEW_ATTRIBUTE, vec![note.to_v2()])],
            ),
            (Operation::CREATE, create_payload(ProtocolVersion::V2_1, &key_attributes("undo-new"))),
            (Operation::CREATE_KEY_PAIR, vec![pair]),
            (Operation::CHECK, vec![uid(&base), sign_mask]),
        ],
    );
    let statuses: Vec<ResultStatus> = r.iter().map(|i| i.result_status).collect();
    let undone = ResultStatus::OPERATION_UNDONE;
    assert_eq!(statuses, [undone, undone, undone, undone, ResultStatus::OPERATION_FAILED], "{r:?}");
    assert_eq!(state_of(&mut c, &base), State::PRE_ACTIVE);
    let attrs = c.ok(Operation::GET_ATTRIBUTES, vec![uid(&base)]);
    assert!(!format!("{attrs:?}").contains("x-note"), "the added attribute is gone");
    assert!(locate_by_name(&mut c, "undo-new").is_empty());
    assert_eq!(count(&mut c), before, "created objects are removed");
    // What undone items produced is not handed out, only the identifiers (and object type)
    // they named.
    let identifiers = [
        Tag::UNIQUE_IDENTIFIER,
        Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER,
        Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER,
        Tag::OBJECT_TYPE,
    ];
    for item in &r[..4] {
        let fields = item.payload.as_ref().map(|p| p.children().to_vec()).unwrap_or_default();
        assert!(fields.iter().all(|f| identifiers.contains(&f.tag)), "{item:?}");
    }

    // A batch that succeeds keeps everything.
    let r = undo(
        &mut c,
        vec![
            (
                Operation::CREATE,
                create_payload(ProtocolVersion::V2_1, &key_attributes("undo-kept")),
            ),
            (Operation::GET, vec![]),
        ],
    );
    assert!(r.iter().all(|i| i.result_status == ResultStatus::SUCCESS), "{r:?}");
    assert_eq!(locate_by_name(&mut c, "undo-kept").len(), 1);
    // Certify cannot be undone (the CA cannot take back a certificate it issued).
    let r = undo(
        &mut c,
        vec![(Operation::ACTIVATE, vec![uid(&base)]), (Operation::CERTIFY, vec![uid(&base)])],
    );
    assert_eq!(r[0].result_status, undone);
    expect_failure(&r[1], ResultReason::FEATURE_NOT_SUPPORTED);
    assert_eq!(state_of(&mut c, &base), State::PRE_ACTIVE);
    // Nor Import, which may first replace (delete) an object.
    let r = undo(
        &mut c,
        vec![(Operation::ACTIVATE, vec![uid(&base)]), (Operation::IMPORT, vec![uid(&base)])],
    );
    assert_eq!(r[0].result_status, undone);
    expect_failure(&r[1], ResultReason::FEATURE_NOT_SUPPORTED);

    // Re-key Key Pair names its pair by the Private Key Unique Identifier: taken back, the
    // old private key has its Name again, and no link to a replacement that is gone.
    let made = c.ok(Operation::CREATE_KEY_PAIR, vec![ec_p256_pair(c.version)]);
    let private = made.find(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER).unwrap().as_text().unwrap();
    let name = Attribute::new(names::NAME, name_value("undo-pair"));
    c.ok(
        Operation::ADD_ATTRIBUTE,
        vec![uid(private), Ttlv::structure(Tag::NEW_ATTRIBUTE, vec![name.to_v2()])],
    );
    let pk = Ttlv::new(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER, Value::TextString(private.into()));
    let r = undo(
        &mut c,
        vec![(Operation::RE_KEY_KEY_PAIR, vec![pk]), (Operation::GET, vec![uid("nope")])],
    );
    assert_eq!(r[0].result_status, undone, "{r:?}");
    assert_eq!(locate_by_name(&mut c, "undo-pair"), vec![private.to_owned()]);
    let attrs = c.ok(Operation::GET_ATTRIBUTES, vec![uid(private)]);
    let links = attrs.find(Tag::ATTRIBUTES).unwrap().find_all(Tag::LINK).count();
    assert_eq!(links, 1, "only its Public Key Link: {attrs:?}");
    server.stop();
}

/// Export and Import (KMIP 2.1 §6.1.18, §6.1.25): a key moves from one Strongroom to another
/// (each with its own HSM token) under the same identifier, with its material, its name,
/// its state and its dates; an existing object is replaced only when asked to.
#[test]
fn export_from_one_server_and_import_into_another() {
    let (_a_dir, a_server, _a_certs, mut a) = started("strongroom-export", "alice");
    let (_b_dir, b_server, _b_certs, mut b) = started("strongroom-import", "alice");
    a.version = ProtocolVersion::V2_1;
    b.version = ProtocolVersion::V2_1;
    let mut attrs = key_attributes("migrated");
    attrs.push(Attribute::new(names::ACTIVATION_DATE, Value::DateTime(1_700_000_000)));
    let id = uid_of(&a.ok(Operation::CREATE, create_payload(a.version, &attrs)));
    let material = key_material(&a.ok(Operation::GET, vec![uid(&id)]));
    let exported = a.ok(Operation::EXPORT, vec![uid(&id)]);
    let kinds: Vec<Tag> = exported.children().iter().map(|t| t.tag).collect();
    assert_eq!(
        kinds,
        [Tag::OBJECT_TYPE, Tag::UNIQUE_IDENTIFIER, Tag::ATTRIBUTES, Tag::SYMMETRIC_KEY]
    );
    let initial = exported.find(Tag::ATTRIBUTES).unwrap().find(Tag::INITIAL_DATE).unwrap().clone();

    let import_from = |c: &mut Client, exported: &Ttlv, replace: Option<bool>| {
        let mut payload =
            vec![uid(&id), enumeration(Tag::OBJECT_TYPE, ObjectType::SYMMETRIC_KEY.0)];
        if let Some(r) = replace {
            payload.push(Ttlv::new(Tag::REPLACE_EXISTING, Value::Boolean(r)));
        }
        payload.push(exported.find(Tag::ATTRIBUTES).unwrap().clone());
        payload.push(exported.find(Tag::SYMMETRIC_KEY).unwrap().clone());
        c.call(Operation::IMPORT, payload)
    };
    let import = |c: &mut Client, replace: Option<bool>| import_from(c, &exported, replace);
    let r = import(&mut b, None);
    assert_eq!(r.result_status, ResultStatus::SUCCESS, "{r:?}");
    assert_eq!(uid_of(r.payload.as_ref().unwrap()), id);
    assert_eq!(key_material(&b.ok(Operation::GET, vec![uid(&id)])), material);
    assert_eq!(state_of(&mut b, &id), State::ACTIVE);
    assert_eq!(locate_by_name(&mut b, "migrated"), vec![id.clone()]);
    let there = b.ok(Operation::GET_ATTRIBUTES, vec![uid(&id)]);
    let there = there.find(Tag::ATTRIBUTES).unwrap();
    assert_eq!(there.find(Tag::INITIAL_DATE), Some(&initial), "dates as supplied");
    assert_eq!(there.find(Tag::ACTIVATION_DATE).unwrap().value, Value::DateTime(1_700_000_000));

    // A State that is none of the six: an object in it could never be revoked or destroyed.
    let mut bad_state = exported.clone();
    if let Value::Structure(fields) = &mut bad_state.value {
        for f in fields.iter_mut().filter(|f| f.tag == Tag::ATTRIBUTES) {
            if let Value::Structure(items) = &mut f.value {
                assert!(items.iter().any(|i| i.tag == Tag::STATE), "{items:?}");
                for item in items.iter_mut().filter(|i| i.tag == Tag::STATE) {
                    item.value = Value::Enumeration(99);
                }
            }
        }
    }
    expect_failure(&import_from(&mut b, &bad_state, Some(true)), ResultReason::INVALID_FIELD);
    expect_failure(&import(&mut b, None), ResultReason::OBJECT_ALREADY_EXISTS);
    expect_failure(&import(&mut b, Some(false)), ResultReason::OBJECT_ALREADY_EXISTS);
    assert_eq!(import(&mut b, Some(true)).result_status, ResultStatus::SUCCESS);
    assert_eq!(key_material(&b.ok(Operation::GET, vec![uid(&id)])), material);

    // A compromised key arrives compromised: its dates and reason as where it left.
    let occurred = Ttlv::new(Tag::COMPROMISE_OCCURRENCE_DATE, Value::DateTime(1_700_000_100));
    let compromise = revocation(RevocationReasonCode::KEY_COMPROMISE);
    a.ok(Operation::REVOKE, vec![uid(&id), compromise, occurred]);
    let exported = a.ok(Operation::EXPORT, vec![uid(&id)]);
    let r = import_from(&mut b, &exported, Some(true));
    assert_eq!(r.result_status, ResultStatus::SUCCESS, "{r:?}");
    let lifecycle = |c: &mut Client| {
        let all = c.ok(Operation::GET_ATTRIBUTES, vec![uid(&id)]);
        let all = all.find(Tag::ATTRIBUTES).unwrap().clone();
        [Tag::STATE, Tag::COMPROMISE_DATE, Tag::COMPROMISE_OCCURRENCE_DATE, Tag::REVOCATION_REASON]
            .map(|t| all.find(t).cloned())
    };
    let there = lifecycle(&mut b);
    assert!(there.iter().all(Option::is_some), "{there:?}");
    assert_eq!(there, lifecycle(&mut a));
    a_server.stop();
    b_server.stop();
}

/// Graceful shutdown (SIGTERM): a request being served is answered (a PBKDF2 derivation of
/// half a million HSM HMACs, well under way when the signal comes), and idle connections
/// are closed, not cut mid-message.
#[test]
fn shutdown_answers_the_request_in_flight_and_closes_idle_connections() {
    let (_dir, server, certs, mut busy) = started("strongroom-drain", "alice");
    busy.version = ProtocolVersion::V2_1;
    let mut idle = Client::connect(&server, &certs, "alice");
    idle.ok(Operation::QUERY, vec![]);
    let key_attrs = [
        Attribute::new(
            names::CRYPTOGRAPHIC_ALGORITHM,
            Value::Enumeration(CryptographicAlgorithm::HMAC_SHA256.0),
        ),
        Attribute::new(names::CRYPTOGRAPHIC_LENGTH, Value::Integer(256)),
        Attribute::new(
            names::CRYPTOGRAPHIC_USAGE_MASK,
            Value::Integer(kmip::enums::usage_mask::DERIVE_KEY),
        ),
        Attribute::new(names::ACTIVATION_DATE, Value::DateTime(1)),
    ];
    let base = uid_of(&busy.ok(Operation::CREATE, create_payload(busy.version, &key_attrs)));
    let derived = [
        Attribute::new(
            names::CRYPTOGRAPHIC_ALGORITHM,
            Value::Enumeration(CryptographicAlgorithm::AES.0),
        ),
        Attribute::new(names::CRYPTOGRAPHIC_LENGTH, Value::Integer(256)),
    ];
    let mut payload = vec![
        enumeration(Tag::OBJECT_TYPE, ObjectType::SYMMETRIC_KEY.0),
        uid(&base),
        enumeration(Tag::DERIVATION_METHOD, kmip::enums::DerivationMethod::PBKDF2.0),
        Ttlv::structure(
            Tag::DERIVATION_PARAMETERS,
            vec![
                Ttlv::new(Tag::SALT, Value::ByteString(b"drain".to_vec())),
                Ttlv::new(Tag::ITERATION_COUNT, Value::Integer(500_000)),
            ],
        ),
    ];
    payload.extend(write_attributes(&derived, busy.version));
    let in_flight = std::thread::spawn(move || busy.call(Operation::DERIVE_KEY, payload));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let started = std::time::Instant::now();
    std::process::Command::new("kill").arg("-TERM").arg(server.pid().to_string()).status().unwrap();
    let answered = in_flight.join().unwrap();
    assert_eq!(answered.result_status, ResultStatus::SUCCESS, "{answered:?}");
    assert!(idle.read_message().is_err(), "the idle connection is closed");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    server.stop();
}

/// The attributes a 2.x Get Attributes returns for `id`, by tag.
fn attributes_v2(c: &mut Client, id: &str) -> Ttlv {
    c.ok(Operation::GET_ATTRIBUTES, vec![uid(id)]).find(Tag::ATTRIBUTES).unwrap().clone()
}

/// Automatic rotation (KMIP 2.1 §4.48–4.54): a key with Rotate Automatic and a Rotate
/// Interval is re-keyed by the server once the interval has passed: the replacement takes
/// the Name and the rotation settings, with Rotate Generation 1, a Rotate Date and Rotate
/// Latest; the old key is linked to it, no longer Rotate Latest, and still readable. The
/// Rotate attributes are KMIP 2.1's: a 1.4 client does not see them, and a client cannot
/// set the server's.
#[test]
fn keys_rotate_automatically() {
    let (_dir, server, _certs, mut c) = started("strongroom-rotation", "alice");
    c.version = ProtocolVersion::V2_1;
    let mut attrs = key_attributes("rotating");
    attrs.push(Attribute::new(names::ACTIVATION_DATE, Value::DateTime(1)));
    attrs.push(Attribute::new(names::ROTATE_AUTOMATIC, Value::Boolean(true)));
    attrs.push(Attribute::new(names::ROTATE_INTERVAL, Value::Interval(2)));
    let old = uid_of(&c.ok(Operation::CREATE, create_payload(c.version, &attrs)));
    let old_key = key_material(&c.ok(Operation::GET, vec![uid(&old)]));

    let new = rotated(&mut c, "rotating", &old);
    let a = attributes_v2(&mut c, &new);
    assert_eq!(a.find(Tag::ROTATE_GENERATION).unwrap().value, Value::Integer(1), "{a:?}");
    assert_eq!(a.find(Tag::ROTATE_LATEST).unwrap().value, Value::Boolean(true));
    assert!(a.find(Tag::ROTATE_DATE).is_some());
    assert_eq!(a.find(Tag::ROTATE_INTERVAL).unwrap().value, Value::Interval(2));
    let old_attrs = attributes_v2(&mut c, &old);
    assert_eq!(old_attrs.find(Tag::ROTATE_LATEST).unwrap().value, Value::Boolean(false));
    assert_eq!(key_material(&c.ok(Operation::GET, vec![uid(&old)])), old_key);
    assert_ne!(key_material(&c.ok(Operation::GET, vec![uid(&new)])), old_key);
    assert_eq!(state_of(&mut c, &new), State::ACTIVE);

    // 1.4 clients do not see KMIP 2.1's attributes.
    c.version = ProtocolVersion::V1_4;
    use kmip::enums::LinkType;
    assert_eq!(links(&mut c, &old), vec![(LinkType::REPLACEMENT_OBJECT_LINK.0, new.clone())]);
    let r = c.ok(Operation::GET_ATTRIBUTES, vec![uid(&new)]);
    let seen: Vec<String> =
        r.find_all(Tag::ATTRIBUTE).map(|a| Attribute::from_v1(a).unwrap().name).collect();
    assert!(!seen.iter().any(|n| n.starts_with("Rotate")), "{seen:?}");
    // The server's rotation attributes are not the client's to set.
    let mut attrs = key_attributes("forged");
    attrs.push(Attribute::new(names::ROTATE_GENERATION, Value::Integer(7)));
    c.version = ProtocolVersion::V2_1;
    let item = c.call(Operation::CREATE, create_payload(c.version, &attrs));
    assert_eq!(item.result_reason, Some(ResultReason::ATTRIBUTE_READ_ONLY), "{item:?}");
    server.stop();
}

/// Query Profiles (KMIP 1.3+): the server profiles whose mandatory test cases pass, named
/// as the client's version names them, with Profile Version 2.1 for 2.x clients.
#[test]
fn query_profiles_by_version() {
    use kmip::enums::{ProfileName as P, QueryFunction};
    let (_dir, server, _certs, mut c) = started("strongroom-query-profiles", "alice");
    let profiles = |c: &mut Client| -> Vec<(u32, Option<Ttlv>)> {
        let f = enumeration(Tag::QUERY_FUNCTION, QueryFunction::QUERY_PROFILES.0);
        let r = c.ok(Operation::QUERY, vec![f]);
        r.find_all(Tag::PROFILE_INFORMATION)
            .map(|p| {
                (
                    p.find(Tag::PROFILE_NAME).unwrap().as_enum().unwrap(),
                    p.find(Tag::PROFILE_VERSION).cloned(),
                )
            })
            .collect()
    };
    c.version = ProtocolVersion::V2_1;
    let v2 = profiles(&mut c);
    assert!(v2.iter().any(|(n, _)| *n == P::BASELINE_SERVER.0), "{v2:?}");
    assert!(v2.iter().any(|(n, _)| *n == P::SYMMETRIC_KEY_LIFECYCLE_SERVER.0));
    assert!(!v2.iter().any(|(n, _)| *n == P::BASIC_CRYPTOGRAPHIC_SERVER.0), "ChaCha20 is missing");
    let version = v2[0].1.clone().expect("a Profile Version");
    assert_eq!(version.find(Tag::PROFILE_VERSION_MAJOR).unwrap().value, Value::Integer(2));
    assert_eq!(version.find(Tag::PROFILE_VERSION_MINOR).unwrap().value, Value::Integer(1));
    c.version = ProtocolVersion::V1_4;
    let v14 = profiles(&mut c);
    assert!(v14.iter().any(|(n, _)| *n == P::BASELINE_SERVER_TLS_V1_2_KMIP_V1_4.0), "{v14:?}");
    assert!(v14.iter().all(|(n, v)| *n < 0x100 && v.is_none()), "1.x names, no versions");
    c.version = ProtocolVersion::V1_2;
    assert!(profiles(&mut c).is_empty(), "Query Profiles came with KMIP 1.3");
    server.stop();
}

/// The 2.x Unique Identifier enumerations (KMIP 2.1 §11.58) name what their operation made
/// earlier in the batch: "Create Key Pair Public Key" is the public key, not the private
/// one the ID Placeholder holds, and "Create" the created key even after a Locate.
#[test]
fn unique_identifier_enumerations_name_their_operation() {
    let (_dir, server, _certs, mut c) = started("strongroom-uid-enums", "alice");
    c.version = ProtocolVersion::V2_1;
    let named = |which: kmip::enums::UniqueIdentifier| {
        Ttlv::new(Tag::UNIQUE_IDENTIFIER, Value::Enumeration(which.0))
    };
    use kmip::enums::UniqueIdentifier as U;
    let msg = request(
        c.version,
        vec![
            (Operation::CREATE_KEY_PAIR, vec![ec_p256_pair(c.version)]),
            (Operation::ACTIVATE, vec![named(U::CREATE_KEY_PAIR_PUBLIC_KEY)]),
            (Operation::CREATE, create_payload(c.version, &key_attributes("enum-made"))),
            (Operation::LOCATE, vec![]),
            (Operation::ACTIVATE, vec![named(U::CREATE)]),
            (Operation::GET, vec![named(U::RE_KEY)]),
        ],
    );
    let r = c.send(&msg).batch_items;
    let made = r[0].payload.as_ref().unwrap();
    let private = made.find(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER).unwrap().as_text().unwrap();
    let public = made.find(Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER).unwrap().as_text().unwrap();
    let created = uid_of(r[2].payload.as_ref().unwrap());
    assert_eq!(r[1].result_status, ResultStatus::SUCCESS, "{r:?}");
    assert_eq!(uid_of(r[1].payload.as_ref().unwrap()), public);
    assert_eq!(state_of(&mut c, public), State::ACTIVE);
    assert_eq!(state_of(&mut c, private), State::PRE_ACTIVE);
    assert_eq!(uid_of(r[4].payload.as_ref().unwrap()), created);
    assert_eq!(state_of(&mut c, &created), State::ACTIVE);
    // No Re-key in the batch: nothing to name.
    assert_eq!(r[5].result_status, ResultStatus::OPERATION_FAILED, "{r:?}");
    server.stop();
}
