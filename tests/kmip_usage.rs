//! Usage Limits (KMIP 1.4 §3.21), Get Usage Allocation (§4.18) and Check (§4.10): protecting
//! operations draw on the caller's allocation, then on the key's Usage Limits Count, and are
//! refused (returning nothing) once it is used up; processing operations are not limited;
//! allocations belong to the client that obtained them; Check names what it denies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;
use kmip::attributes::{names, write_attributes, Attribute, UsageLimits};
use kmip::enums::{
    usage_mask, BlockCipherMode, Operation, ResultReason, ResultStatus, UsageLimitsUnit,
};
use kmip::{ProtocolVersion, Tag, Ttlv, Value};

fn encrypt(c: &mut Client, id: &str, data: &[u8]) -> kmip::message::ResponseBatchItem {
    let params = Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![enumeration(Tag::BLOCK_CIPHER_MODE, BlockCipherMode::ECB.0)],
    );
    c.call(
        Operation::ENCRYPT,
        vec![uid(id), params, Ttlv::new(Tag::DATA, Value::ByteString(data.to_vec()))],
    )
}

fn decrypt(c: &mut Client, id: &str, data: &[u8]) -> ResultStatus {
    let params = Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![enumeration(Tag::BLOCK_CIPHER_MODE, BlockCipherMode::ECB.0)],
    );
    let r = c.call(
        Operation::DECRYPT,
        vec![uid(id), params, Ttlv::new(Tag::DATA, Value::ByteString(data.to_vec()))],
    );
    r.result_status
}

fn limits(c: &mut Client, id: &str) -> UsageLimits {
    let r = c.ok(Operation::GET_ATTRIBUTES, vec![uid(id)]);
    let v = r.find(Tag::ATTRIBUTES).unwrap().find(Tag::USAGE_LIMITS).unwrap();
    UsageLimits::from_value(&v.value).unwrap()
}

fn allocate(c: &mut Client, id: &str, units: i64) -> kmip::message::ResponseBatchItem {
    c.call(
        Operation::GET_USAGE_ALLOCATION,
        vec![uid(id), Ttlv::new(Tag::USAGE_LIMITS_COUNT, Value::LongInteger(units))],
    )
}

fn check(c: &mut Client, id: &str, fields: Vec<Ttlv>) -> kmip::message::ResponseBatchItem {
    let mut payload = vec![uid(id)];
    payload.extend(fields);
    c.call(Operation::CHECK, payload)
}

#[test]
fn usage_limits_allocations_and_check() {
    let dir = temp_dir("strongroom-usage");
    let server = Server::start(&dir);
    let (alice, bob) = (client_cert(&dir, "alice"), client_cert(&dir, "bob"));
    let mut a = Client::connect(&server, &alice, "alice");
    let mut b = Client::connect(&server, &bob, "bob");
    a.version = ProtocolVersion::V2_1;
    b.version = ProtocolVersion::V2_1;
    let limited = UsageLimits { total: 64, count: 64, unit: UsageLimitsUnit::BYTE };
    let mut attrs = aes_attributes(128);
    attrs.retain(|x| x.name != names::CRYPTOGRAPHIC_USAGE_MASK);
    attrs.extend([
        Attribute::new(
            names::CRYPTOGRAPHIC_USAGE_MASK,
            Value::Integer(usage_mask::ENCRYPT | usage_mask::DECRYPT),
        ),
        Attribute::new(names::ACTIVATION_DATE, Value::DateTime(1)),
        Attribute::new(names::USAGE_LIMITS, UsageLimits { count: 0, ..limited }.to_value()),
    ]);
    // The Count a client gives is kept (here: nothing left yet).
    let spent = uid_of(&a.ok(Operation::CREATE, create_payload(a.version, &attrs)));
    assert_eq!(limits(&mut a, &spent).count, 0);
    assert_eq!(
        encrypt(&mut a, &spent, &[0; 16]).result_reason,
        Some(ResultReason::PERMISSION_DENIED)
    );
    attrs.retain(|x| x.name != names::USAGE_LIMITS);
    let mut total_only = limited.to_value();
    if let Value::Structure(fields) = &mut total_only {
        fields.retain(|f| f.tag != Tag::USAGE_LIMITS_COUNT);
    }
    attrs.push(Attribute::new(names::USAGE_LIMITS, total_only));
    let id = uid_of(&a.ok(Operation::CREATE, create_payload(a.version, &attrs)));
    assert_eq!(limits(&mut a, &id), limited, "the Count starts at the Total");

    // 16 bytes from the Count; an allocation of 32 for Alice leaves 16 for anyone.
    let block = [7u8; 16];
    let sealed = encrypt(&mut a, &id, &block).payload.unwrap();
    let ciphertext = sealed.find(Tag::DATA).unwrap().as_bytes().unwrap().to_vec();
    assert_eq!(limits(&mut a, &id).count, 48);
    assert_eq!(allocate(&mut a, &id, 32).result_status, ResultStatus::SUCCESS);
    assert_eq!(limits(&mut a, &id).count, 16);
    let out = Command::new(BIN)
        .args(["grant", "--data-dir"])
        .arg(&*dir)
        .args([
            "--object",
            &id,
            "--to",
            "CN=bob",
            "--operations",
            "Encrypt,Check,Get Usage Allocation",
        ])
        .env("STRONGROOM_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(encrypt(&mut b, &id, &block).result_status, ResultStatus::SUCCESS);
    assert_eq!(limits(&mut a, &id).count, 0);
    // Bob has no allocation and the Count is spent; Alice's allocation is hers alone.
    let refused = encrypt(&mut b, &id, &block);
    assert_eq!(refused.result_reason, Some(ResultReason::PERMISSION_DENIED), "{refused:?}");
    assert!(refused.payload.is_none(), "a refused encryption returns no data");
    assert_eq!(allocate(&mut b, &id, 1).result_reason, Some(ResultReason::PERMISSION_DENIED));
    assert_eq!(encrypt(&mut a, &id, &[1; 32]).result_status, ResultStatus::SUCCESS);
    assert_eq!(encrypt(&mut a, &id, &block).result_reason, Some(ResultReason::PERMISSION_DENIED));
    // Processing is not limited.
    assert_eq!(decrypt(&mut a, &id, &ciphertext), ResultStatus::SUCCESS);
    // Usage Limits change only by use once the key exists.
    let modify = a.call(
        Operation::MODIFY_ATTRIBUTE,
        vec![
            uid(&id),
            write_attributes(&[Attribute::new(names::USAGE_LIMITS, limited.to_value())], a.version)
                .remove(0)
                .children()[0]
                .clone(),
        ],
    );
    assert_ne!(modify.result_status, ResultStatus::SUCCESS);

    // Check: a usage mask within the key's passes and returns the id. In 1.x, what exceeds
    // the key's mask, its Usage Limits or the server's Lease Time is named in the denial.
    let mask = |m| Ttlv::new(Tag::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(m));
    let ok = check(&mut a, &id, vec![mask(usage_mask::ENCRYPT)]);
    assert_eq!(uid_of(&ok.payload.unwrap()), id);
    // 2.x answers with the reason instead (KMIP 2.1 §6.1.7.1, and its baseline test cases).
    let over = check(&mut a, &id, vec![mask(usage_mask::SIGN)]);
    assert_eq!(over.result_reason, Some(ResultReason::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK));
    assert!(over.payload.is_none());
    let over = check(&mut a, &id, vec![Ttlv::new(Tag::USAGE_LIMITS_COUNT, Value::LongInteger(1))]);
    assert_eq!(over.result_reason, Some(ResultReason::USAGE_LIMIT_EXCEEDED));
    a.version = ProtocolVersion::V1_4;
    let denied = check(
        &mut a,
        &id,
        vec![
            mask(usage_mask::ENCRYPT | usage_mask::SIGN),
            Ttlv::new(Tag::USAGE_LIMITS_COUNT, Value::LongInteger(1)),
            Ttlv::new(Tag::LEASE_TIME, Value::Interval(30)),
        ],
    );
    assert_eq!(denied.result_reason, Some(ResultReason::PERMISSION_DENIED));
    let fields = denied.payload.unwrap();
    assert!(fields.find(Tag::UNIQUE_IDENTIFIER).is_none());
    assert_eq!(
        fields.find(Tag::CRYPTOGRAPHIC_USAGE_MASK).unwrap().as_i32().unwrap(),
        usage_mask::ENCRYPT | usage_mask::SIGN
    );
    assert_eq!(fields.find(Tag::USAGE_LIMITS_COUNT).unwrap().as_i64().unwrap(), 1);
    assert!(fields.find(Tag::LEASE_TIME).is_none(), "30 s is within the server's lease time");
    let long = check(&mut a, &id, vec![Ttlv::new(Tag::LEASE_TIME, Value::Interval(86_400 * 365))]);
    assert!(long.payload.unwrap().find(Tag::LEASE_TIME).is_some());
    a.version = ProtocolVersion::V2_1;
    // A denied Check empties the ID Placeholder: the Get after it in the batch has no object.
    let batch = request(
        a.version,
        vec![(Operation::CHECK, vec![uid(&id), mask(usage_mask::SIGN)]), (Operation::GET, vec![])],
    );
    let mut header = batch;
    header.header.batch_error_continuation_option =
        Some(kmip::enums::BatchErrorContinuationOption::CONTINUE);
    let r = a.send(&header);
    assert_eq!(r.batch_items[1].result_reason, Some(ResultReason::ITEM_NOT_FOUND), "{r:?}");

    // Get Usage Allocation needs Usage Limits, a positive amount, and a key that protects.
    let plain = uid_of(&a.ok(Operation::CREATE, create_payload(a.version, &aes_attributes(128))));
    assert_eq!(allocate(&mut a, &plain, 1).result_reason, Some(ResultReason::ILLEGAL_OPERATION));
    assert_eq!(allocate(&mut a, &spent, 0).result_reason, Some(ResultReason::INVALID_FIELD));
    // Bad Usage Limits are refused at creation.
    attrs.retain(|x| x.name != names::USAGE_LIMITS);
    attrs.push(Attribute::new(names::USAGE_LIMITS, UsageLimits { total: 0, ..limited }.to_value()));
    let bad = a.call(Operation::CREATE, create_payload(a.version, &attrs));
    assert_eq!(bad.result_reason, Some(ResultReason::INVALID_FIELD));
    server.stop();
}
