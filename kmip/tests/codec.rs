//! TTLV codec tests: the KMIP 1.4 §9.1.2 encoding examples, real client captures decoded and
//! re-encoded byte for byte, property-based round trips, and the decoder's limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kmip::message::RequestMessage;
use kmip::ttlv::DecodeErrorKind;
use kmip::ttlv::binary::{Limits, decode, encode, frame_len};
use kmip::{Tag, Ttlv, Value};
use proptest::prelude::*;

fn vectors(file: &str) -> Vec<(String, Vec<u8>)> {
    let path = format!("{}/tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, hex) = l.split_once(' ').expect("NAME HEX");
            let hex: String = hex.split_whitespace().collect();
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            (name.to_owned(), bytes)
        })
        .collect()
}

#[test]
fn spec_9_1_2_examples_decode_to_the_stated_values() {
    let t = Tag(0x420020);
    let expected = [
        ("INTEGER_8", Value::Integer(8)),
        ("LONG_INTEGER_123456789000000000", Value::LongInteger(123_456_789_000_000_000)),
        (
            "BIG_INTEGER_1234567890000000000000000000",
            Value::BigInteger(vec![
                0, 0, 0, 0, 0x03, 0xFD, 0x35, 0xEB, 0x6B, 0xC2, 0xDF, 0x46, 0x18, 0x08, 0, 0,
            ]),
        ),
        ("ENUMERATION_255", Value::Enumeration(255)),
        ("BOOLEAN_TRUE", Value::Boolean(true)),
        ("TEXT_STRING_HELLO_WORLD", Value::TextString("Hello World".into())),
        ("BYTE_STRING_010203", Value::ByteString(vec![1, 2, 3])),
        ("DATE_TIME_2008_03_14_11_56_40", Value::DateTime(1_205_495_800)),
        ("INTERVAL_10_DAYS", Value::Interval(864_000)),
        (
            "STRUCTURE_ENUM_254_INT_255",
            Value::Structure(vec![
                Ttlv::new(Tag(0x420004), Value::Enumeration(254)),
                Ttlv::new(Tag(0x420005), Value::Integer(255)),
            ]),
        ),
    ];
    let vs = vectors("kmip-1.4-spec-9.1.2-examples.txt");
    assert_eq!(vs.len(), expected.len());
    for ((name, bytes), (ename, value)) in vs.iter().zip(expected) {
        assert_eq!(name, ename);
        let item = decode(bytes, &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(item, Ttlv::new(t, value), "{name}");
        assert_eq!(&encode(&item), bytes, "{name} re-encodes byte for byte");
        assert_eq!(frame_len(bytes), Some(bytes.len()));
    }
}

#[test]
fn client_captures_decode_as_requests_and_re_encode_identically() {
    for file in
        ["client-capture-vmware-vcenter-kmip-1.1.hex.txt", "client-capture-postgres-pg_tde.hex.txt"]
    {
        for (name, bytes) in vectors(file) {
            let item = decode(&bytes, &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
            let msg = RequestMessage::from_ttlv(&item).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!msg.batch_items.is_empty());
            assert_eq!(encode(&item), bytes, "{file} {name}");
            assert_eq!(encode(&msg.to_ttlv()), bytes, "{file} {name} through typed message");
        }
    }
}

#[test]
fn truncated_input_reports_offset_and_path() {
    let (_, bytes) = &vectors("client-capture-postgres-pg_tde.hex.txt")[0];
    for cut in [0, 7, 8, 40, bytes.len() - 1] {
        let err = decode(&bytes[..cut], &Limits::default()).expect_err("truncated");
        assert!(matches!(err.kind, DecodeErrorKind::Truncated { .. }), "{cut}: {err}");
    }
    let err = decode(&bytes[..bytes.len() - 8], &Limits::default()).expect_err("truncated");
    assert_eq!(err.path.first(), Some(&Tag::REQUEST_MESSAGE));
}

#[test]
fn limits_are_enforced() {
    let (_, bytes) = &vectors("client-capture-postgres-pg_tde.hex.txt")[0];
    let small = Limits { max_bytes: 64, ..Limits::default() };
    assert!(matches!(decode(bytes, &small).unwrap_err().kind, DecodeErrorKind::TooLarge { .. }));
    let shallow = Limits { max_depth: 2, ..Limits::default() };
    assert!(matches!(decode(bytes, &shallow).unwrap_err().kind, DecodeErrorKind::TooDeep { .. }));
    let few = Limits { max_items: 5, ..Limits::default() };
    assert!(matches!(decode(bytes, &few).unwrap_err().kind, DecodeErrorKind::TooManyItems { .. }));
    let mut trailing = bytes.clone();
    trailing.extend_from_slice(&[0; 8]);
    assert!(matches!(
        decode(&trailing, &Limits::default()).unwrap_err().kind,
        DecodeErrorKind::TrailingBytes(8)
    ));
}

#[test]
fn malformed_items_are_rejected() {
    let l = Limits::default();
    // Integer with length 8.
    let bad_len = [0x42, 0, 0x20, 2, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(matches!(decode(&bad_len, &l).unwrap_err().kind, DecodeErrorKind::BadLength { .. }));
    // Unknown item type.
    let bad_type = [0x42, 0, 0x20, 0x0C, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0];
    assert!(matches!(
        decode(&bad_type, &l).unwrap_err().kind,
        DecodeErrorKind::UnknownItemType(0x0C)
    ));
    // Boolean 2.
    let bad_bool = [0x42, 0, 0x20, 6, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 2];
    assert!(matches!(decode(&bad_bool, &l).unwrap_err().kind, DecodeErrorKind::BadBoolean(2)));
    // Invalid UTF-8.
    let bad_utf8 = [0x42, 0, 0x20, 7, 0, 0, 0, 1, 0xFF, 0, 0, 0, 0, 0, 0, 0];
    assert!(matches!(decode(&bad_utf8, &l).unwrap_err().kind, DecodeErrorKind::InvalidUtf8));
    // A structure that claims 2^31 bytes is refused without allocating.
    let huge = [0x42, 0, 0x78, 1, 0x80, 0, 0, 0];
    assert!(matches!(decode(&huge, &l).unwrap_err().kind, DecodeErrorKind::Truncated { .. }));
}

fn arb_ttlv() -> impl Strategy<Value = Ttlv> {
    let tag = prop_oneof![(0x420001u32..0x420160), (0x540000u32..0x540010)].prop_map(Tag);
    let leaf = prop_oneof![
        any::<i32>().prop_map(Value::Integer),
        any::<i64>().prop_map(Value::LongInteger),
        proptest::collection::vec(any::<u8>(), 0..4).prop_map(|mut v| {
            // Big Integers travel in whole 8-byte words (KMIP 2.1 §9.1.1.4).
            v.resize(8 * v.len().div_ceil(8).max(1), 0);
            Value::BigInteger(v)
        }),
        any::<u32>().prop_map(Value::Enumeration),
        any::<bool>().prop_map(Value::Boolean),
        ".{0,20}".prop_map(Value::TextString),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::ByteString),
        any::<i64>().prop_map(Value::DateTime),
        any::<u32>().prop_map(Value::Interval),
        any::<i64>().prop_map(Value::DateTimeExtended),
    ];
    let item = (tag.clone(), leaf).prop_map(|(t, v)| Ttlv::new(t, v));
    item.prop_recursive(4, 64, 8, move |inner| {
        (tag.clone(), proptest::collection::vec(inner, 0..8))
            .prop_map(|(t, c)| Ttlv::structure(t, c))
    })
}

proptest! {
    #[test]
    fn round_trip(item in arb_ttlv()) {
        let bytes = encode(&item);
        prop_assert_eq!(bytes.len() % 8, 0);
        prop_assert_eq!(frame_len(&bytes), Some(bytes.len()));
        prop_assert_eq!(decode(&bytes, &Limits::default()).unwrap(), item);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes, &Limits::default());
    }
}

/// A non-negative magnitude as the DER readers give it back: no leading zero bytes.
fn magnitude() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..80)
        .prop_map(|v| v.into_iter().skip_while(|b| *b == 0).collect())
}

proptest! {
    /// The transparent-key DER forms (`kmip::dsa`, `kmip::ec`, `kmip::pkcs1`) read back what
    /// they write, and arbitrary bytes never make their readers panic.
    #[test]
    fn key_der_forms_round_trip(p in magnitude(), q in magnitude(), g in magnitude(), v in magnitude()) {
        let key = kmip::dsa::DsaKey { p, q, g, value: v };
        prop_assert_eq!(kmip::dsa::DsaKey::from_spki(&key.to_spki()), Some(key.clone()));
        prop_assert_eq!(kmip::dsa::DsaKey::from_pkcs8(&key.to_pkcs8()), Some(key.clone()));
        let curve = kmip::enums::RecommendedCurve::P_384;
        let spki = kmip::ec::to_spki(curve, &key.value).unwrap();
        prop_assert_eq!(kmip::ec::from_spki(&spki), Some((curve, key.value.clone())));
        if key.value.len() <= 48 {
            let der = kmip::ec::private_to_der(curve, &key.value).unwrap();
            let (c, d) = kmip::ec::private_from_der(&der).unwrap();
            prop_assert_eq!(c, curve);
            prop_assert_eq!(d.into_iter().skip_while(|b| *b == 0).collect::<Vec<_>>(), key.value);
        }
    }

    #[test]
    fn key_der_readers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = kmip::dsa::DsaKey::from_spki(&bytes);
        let _ = kmip::dsa::DsaKey::from_pkcs8(&bytes);
        let _ = kmip::ec::from_spki(&bytes);
        let _ = kmip::ec::private_from_der(&bytes);
        let _ = kmip::pkcs1::decode(&bytes, true);
        let _ = kmip::ops::pkcs11::CkInfo::decode(&bytes);
    }
}
