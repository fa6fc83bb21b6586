//! The KMIP rules a client cannot bend: attributes a client may not change once set
//! (Cryptographic Usage Mask, reached Process Start and Protect Stop Dates), the state
//! transitions Revoke may make, the ID Placeholder, who owns a replacement key, names under
//! the TDE mount, a replacing Import that fails, identifiers the HSM's own keys have, and
//! the precedence of a key pair half's own attributes over the common ones.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use kmip::attributes::{names, write_attributes, Attribute};
use kmip::enums::{
    usage_mask, CryptographicAlgorithm, ObjectType, Operation, ResultReason, ResultStatus,
    RevocationReasonCode,
};
use kmip::{ProtocolVersion, Tag, Ttlv, Value};

fn failed_with(item: &kmip::message::ResponseBatchItem, reason: ResultReason) {
    assert_eq!(item.result_status, ResultStatus::OPERATION_FAILED, "{item:?}");
    assert_eq!(item.result_reason, Some(reason), "{:?}", item.result_message);
}

fn create(c: &mut Client, attrs: &[Attribute]) -> String {
    uid_of(&c.ok(Operation::CREATE, create_payload(c.version, attrs)))
}

/// The values of attribute `name` of object `id` (1.x Get Attributes).
fn values(c: &mut Client, id: &str, name: &str) -> Vec<Value> {
    let r = c.ok(Operation::GET_ATTRIBUTES, vec![uid(id), text(Tag::ATTRIBUTE_NAME, name)]);
    r.find_all(Tag::ATTRIBUTE).map(|a| Attribute::from_v1(a).unwrap().value).collect()
}

fn state(c: &mut Client, id: &str) -> Value {
    values(c, id, names::STATE).pop().unwrap()
}

#[test]
fn attributes_a_client_cannot_change_and_revoke_transitions() {
    let (_dir, server, _certs, mut c) = started("strongroom-kmip-rules", "alice");
    let attr = |name: &str, value: Value| Attribute::new(name, value);
    let mask = attr(names::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(usage_mask::DECRYPT));

    // KMIP 1.4 §3.19: the Cryptographic Usage Mask is neither modifiable nor deletable by
    // a client, so a key for decryption only cannot be made to encrypt.
    let mut attrs = aes_attributes(256);
    attrs[2] = mask.clone();
    let id = create(&mut c, &attrs);
    let wider = attr(names::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(0xFFFF));
    let item = c.call(Operation::MODIFY_ATTRIBUTE, vec![uid(&id), wider.to_v1()]);
    failed_with(&item, ResultReason::PERMISSION_DENIED);
    let item = c.call(
        Operation::DELETE_ATTRIBUTE,
        vec![uid(&id), text(Tag::ATTRIBUTE_NAME, names::CRYPTOGRAPHIC_USAGE_MASK)],
    );
    failed_with(&item, ResultReason::PERMISSION_DENIED);
    assert_eq!(values(&mut c, &id, names::CRYPTOGRAPHIC_USAGE_MASK), vec![mask.value.clone()]);

    // §3.26: a Protect Stop Date, once reached, is neither changed nor deleted; one still
    // ahead may be changed, never deleted.
    let past = attr(names::PROTECT_STOP_DATE, Value::DateTime(1_000));
    let future = attr(names::PROTECT_STOP_DATE, Value::DateTime(4_000_000_000));
    let stop = |a: &Attribute| {
        let mut attrs = aes_attributes(256);
        attrs.push(a.clone());
        attrs
    };
    let reached = create(&mut c, &stop(&past));
    let item = c.call(Operation::MODIFY_ATTRIBUTE, vec![uid(&reached), future.to_v1()]);
    failed_with(&item, ResultReason::PERMISSION_DENIED);
    let ahead = create(&mut c, &stop(&future));
    let later = attr(names::PROTECT_STOP_DATE, Value::DateTime(4_000_000_100));
    c.ok(Operation::MODIFY_ATTRIBUTE, vec![uid(&ahead), later.to_v1()]);
    let item = c.call(
        Operation::DELETE_ATTRIBUTE,
        vec![uid(&ahead), text(Tag::ATTRIBUTE_NAME, names::PROTECT_STOP_DATE)],
    );
    failed_with(&item, ResultReason::PERMISSION_DENIED);

    // §3.22: a destroyed key revoked for compromise is Destroyed Compromised; one
    // destroyed is not revoked for another reason.
    let fresh = create(&mut c, &aes_attributes(128));
    c.ok(Operation::DESTROY, vec![uid(&fresh)]);
    let item = c.call(
        Operation::REVOKE,
        vec![uid(&fresh), revocation(RevocationReasonCode::CESSATION_OF_OPERATION)],
    );
    failed_with(&item, ResultReason::PERMISSION_DENIED);
    c.ok(Operation::REVOKE, vec![uid(&fresh), revocation(RevocationReasonCode::KEY_COMPROMISE)]);
    assert_eq!(
        state(&mut c, &fresh),
        Value::Enumeration(kmip::enums::State::DESTROYED_COMPROMISED.0)
    );

    // A failed Get (its wrapping key missing) leaves the key Fresh.
    let item = c.call(
        Operation::GET,
        vec![
            uid(&ahead),
            Ttlv::structure(
                Tag::KEY_WRAPPING_SPECIFICATION,
                vec![
                    enumeration(Tag::WRAPPING_METHOD, 1),
                    Ttlv::structure(Tag::ENCRYPTION_KEY_INFORMATION, vec![uid("missing")]),
                ],
            ),
        ],
    );
    assert_eq!(item.result_status, ResultStatus::OPERATION_FAILED);
    assert_eq!(values(&mut c, &ahead, names::FRESH), vec![Value::Boolean(true)]);
    server.stop();
}

/// Re-key with an Offset moves Process Start and Protect Stop Date with the Activation
/// Date (KMIP 1.4 Table 172), so the new key is usable for as long as the old one was.
#[test]
fn rekey_offsets_move_every_date() {
    let (_dir, server, _certs, mut c) = started("strongroom-kmip-rekey-dates", "alice");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let now = now.as_secs() as i64;
    let mut attrs = aes_attributes(256);
    attrs.push(Attribute::new(names::ACTIVATION_DATE, Value::DateTime(now - 100)));
    attrs.push(Attribute::new(names::PROCESS_START_DATE, Value::DateTime(now - 50)));
    attrs.push(Attribute::new(names::PROTECT_STOP_DATE, Value::DateTime(now - 10)));
    let old = create(&mut c, &attrs);
    let new = uid_of(
        &c.ok(Operation::RE_KEY, vec![uid(&old), Ttlv::new(Tag::OFFSET, Value::Interval(0))]),
    );
    let date = |c: &mut Client, name: &str| match values(c, &new, name).pop().unwrap() {
        Value::DateTime(d) => d,
        other => panic!("{other:?}"),
    };
    let activation = date(&mut c, names::ACTIVATION_DATE);
    assert!((now..now + 60).contains(&activation), "{activation}");
    assert_eq!(date(&mut c, names::PROCESS_START_DATE), activation + 50);
    assert_eq!(date(&mut c, names::PROTECT_STOP_DATE), activation + 90);
    server.stop();
}

/// In a batch, only the operations that make or find an object set the ID Placeholder
/// (KMIP 1.4 §4), and a Locate that finds no one object empties it: the Destroy after it
/// fails instead of destroying the key made first.
#[test]
fn the_id_placeholder_and_a_failed_replacing_import() {
    let (_dir, server, _certs, mut c) = started("strongroom-kmip-placeholder", "alice");
    let mut named = aes_attributes(256);
    named.push(Attribute::new(names::NAME, name_value("dup")));
    create(&mut c, &named);
    create(&mut c, &named);
    let mut msg = request(
        ProtocolVersion::V1_4,
        vec![
            (Operation::CREATE, create_payload(ProtocolVersion::V1_4, &aes_attributes(128))),
            (Operation::LOCATE, vec![Attribute::new(names::NAME, name_value("dup")).to_v1()]),
            (Operation::DESTROY, vec![]),
        ],
    );
    msg.header.batch_error_continuation_option =
        Some(kmip::enums::BatchErrorContinuationOption::CONTINUE);
    let r = c.send(&msg);
    let made = uid_of(r.batch_items[0].payload.as_ref().unwrap());
    assert_eq!(r.batch_items[2].result_status, ResultStatus::OPERATION_FAILED, "{r:?}");
    assert_eq!(c.call(Operation::GET, vec![uid(&made)]).result_status, ResultStatus::SUCCESS);

    // Import with Replace Existing of an object that is refused (a 5-byte AES key)
    // leaves the existing object as it was.
    c.version = ProtocolVersion::V2_1;
    let key = key_material(&c.ok(Operation::GET, vec![uid(&made)]));
    let algorithm = Attribute::new(
        names::CRYPTOGRAPHIC_ALGORITHM,
        Value::Enumeration(CryptographicAlgorithm::AES.0),
    );
    let import = |id: &str, bytes: usize| {
        let mut payload = vec![uid(id), Ttlv::new(Tag::REPLACE_EXISTING, Value::Boolean(true))];
        payload.push(enumeration(Tag::OBJECT_TYPE, ObjectType::SYMMETRIC_KEY.0));
        payload.extend(write_attributes(std::slice::from_ref(&algorithm), ProtocolVersion::V2_1));
        payload.push(Ttlv::structure(
            Tag::SYMMETRIC_KEY,
            vec![Ttlv::structure(
                Tag::KEY_BLOCK,
                vec![
                    enumeration(Tag::KEY_FORMAT_TYPE, 1),
                    Ttlv::structure(
                        Tag::KEY_VALUE,
                        vec![Ttlv::new(Tag::KEY_MATERIAL, Value::ByteString(vec![7; bytes]))],
                    ),
                    enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, CryptographicAlgorithm::AES.0),
                    int(Tag::CRYPTOGRAPHIC_LENGTH, 8 * bytes as i32),
                ],
            )],
        ));
        payload
    };
    let item = c.call(Operation::IMPORT, import(&made, 5));
    assert_eq!(item.result_status, ResultStatus::OPERATION_FAILED, "{item:?}");
    assert_eq!(key_material(&c.ok(Operation::GET, vec![uid(&made)])), key, "kept");

    // An identifier is also the CKA_ID of the object's HSM keys: none may be one of the
    // service's own (its CA key's, say), which a Sign or Destroy would then reach.
    failed_with(
        &c.call(Operation::IMPORT, import("strongroom-ca", 32)),
        ResultReason::INVALID_FIELD,
    );
    c.ok(Operation::IMPORT, import("any-other-id", 32));
    server.stop();
}

/// A replacement key is its old key's owner's, whoever re-keys it: a grant of Re-key is not
/// read access to the new key. Names under the TDE mount are the TDE API's alone. A key
/// pair half's own attributes win over the common ones (KMIP 1.4 §4.2).
#[test]
fn ownership_reserved_names_and_key_pair_templates() {
    let (dir, server, _certs, mut alice) = started("strongroom-kmip-owners", "alice");
    let bob_certs = client_cert(&dir, "bob");
    let mut bob = Client::connect(&server, &bob_certs, "bob");
    let mut named = aes_attributes(256);
    named.push(Attribute::new(names::NAME, name_value("payments")));
    let old = create(&mut alice, &named);
    grant(&dir, &old, "CN=bob", "Re-key");
    let new = uid_of(&bob.ok(Operation::RE_KEY, vec![uid(&old)]));
    failed_with(&bob.call(Operation::GET, vec![uid(&new)]), ResultReason::PERMISSION_DENIED);
    alice.ok(Operation::GET, vec![uid(&new)]);
    // Nor may the grantee choose how the owner's replacement is protected.
    let guarded = create(&mut alice, &aes_attributes(256));
    grant(&dir, &guarded, "CN=bob", "Re-key");
    let loosened = Attribute::new(names::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(0x1C));
    let template = Ttlv::structure(Tag::TEMPLATE_ATTRIBUTE, vec![loosened.to_v1()]);
    let item = bob.call(Operation::RE_KEY, vec![uid(&guarded), template.clone()]);
    assert!(
        matches!(
            item.result_reason,
            Some(ResultReason::PERMISSION_DENIED | ResultReason::ATTRIBUTE_READ_ONLY)
        ),
        "{item:?}"
    );
    // As the old key has it (a client echoing the attributes) is fine.
    let same = Attribute::new(names::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(0x0C));
    let echoed = Ttlv::structure(Tag::TEMPLATE_ATTRIBUTE, vec![same.to_v1()]);
    let guarded = uid_of(&bob.ok(Operation::RE_KEY, vec![uid(&guarded), echoed]));
    grant(&dir, &guarded, "CN=bob", "Re-key");
    alice.ok(Operation::RE_KEY, vec![uid(&guarded), template]);

    // A database finds its TDE key by name among all owners' objects: no KMIP client may
    // plant one, by Create or by Add Attribute. Locating by such a name is fine.
    let mut planted = aes_attributes(256);
    planted.push(Attribute::new(names::NAME, name_value("tde/orders")));
    let item = bob.call(Operation::CREATE, create_payload(bob.version, &planted));
    failed_with(&item, ResultReason::PERMISSION_DENIED);
    let own = create(&mut bob, &aes_attributes(128));
    let name = Attribute::new(names::NAME, name_value("tde/orders"));
    let item = bob.call(Operation::ADD_ATTRIBUTE, vec![uid(&own), name.to_v1()]);
    failed_with(&item, ResultReason::PERMISSION_DENIED);
    bob.ok(Operation::LOCATE, vec![name.to_v1()]);
    // Nor by a Name sent as bare text, which is no Name at all (KMIP 1.4 §3.2).
    let bare = Attribute::new(names::NAME, Value::TextString("tde/orders".into()));
    let item = bob.call(Operation::ADD_ATTRIBUTE, vec![uid(&own), bare.to_v1()]);
    failed_with(&item, ResultReason::INVALID_FIELD);
    let mut planted = aes_attributes(256);
    planted.push(bare);
    let item = bob.call(Operation::CREATE, create_payload(bob.version, &planted));
    failed_with(&item, ResultReason::INVALID_FIELD);

    // Common: sign, verify, encrypt, decrypt; the private key's own: sign only.
    let mask = |m: i32| Attribute::new(names::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(m));
    let template = |tag: Tag, attrs: &[Attribute]| {
        Ttlv::structure(tag, write_attributes(attrs, ProtocolVersion::V1_4))
    };
    let common = [
        Attribute::new(
            names::CRYPTOGRAPHIC_ALGORITHM,
            Value::Enumeration(CryptographicAlgorithm::EC.0),
        ),
        Attribute::new(names::CRYPTOGRAPHIC_LENGTH, Value::Integer(256)),
        mask(usage_mask::SIGN | usage_mask::VERIFY | usage_mask::ENCRYPT | usage_mask::DECRYPT),
    ];
    let r = alice.ok(
        Operation::CREATE_KEY_PAIR,
        vec![
            template(Tag::COMMON_TEMPLATE_ATTRIBUTE, &common),
            template(Tag::PRIVATE_KEY_TEMPLATE_ATTRIBUTE, &[mask(usage_mask::SIGN)]),
            template(Tag::PUBLIC_KEY_TEMPLATE_ATTRIBUTE, &[]),
        ],
    );
    let private = r.find(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER).unwrap().as_text().unwrap();
    let public = r.find(Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER).unwrap().as_text().unwrap();
    let private_mask = values(&mut alice, private, names::CRYPTOGRAPHIC_USAGE_MASK);
    assert_eq!(private_mask, vec![Value::Integer(usage_mask::SIGN)]);
    let public_mask = values(&mut alice, public, names::CRYPTOGRAPHIC_USAGE_MASK);
    assert_eq!(public_mask, vec![common[2].value.clone()]);
    server.stop();
}
