//! TTLV codec throughput: decode and re-encode real client messages (the vCenter Create
//! capture) and a Get response carrying a key, and decode the vCenter Create in the XML
//! and JSON encodings (KMIP over HTTPS), reported by criterion in bytes per second.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kmip::ttlv::binary::{decode, encode, Limits};
use kmip::{Tag, Ttlv, Value};
use std::hint::black_box;

fn vcenter_create() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/kmip/tests/vectors/client-capture-vmware-vcenter-kmip-1.1.hex.txt"
    );
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("CREATE "))
        .and_then(|h| hex::decode(h.trim()).ok())
        .unwrap_or_default()
}

fn get_response() -> Vec<u8> {
    let t = |tag, v| Ttlv::new(tag, v);
    let item = Ttlv::structure(
        Tag::RESPONSE_MESSAGE,
        vec![
            Ttlv::structure(
                Tag::RESPONSE_HEADER,
                vec![
                    kmip::ProtocolVersion::V1_4.to_ttlv(),
                    t(Tag::TIME_STAMP, Value::DateTime(1_700_000_000)),
                    t(Tag::BATCH_COUNT, Value::Integer(1)),
                ],
            ),
            Ttlv::structure(
                Tag::BATCH_ITEM,
                vec![
                    t(Tag::OPERATION, Value::Enumeration(0x0A)),
                    t(Tag::RESULT_STATUS, Value::Enumeration(0)),
                    Ttlv::structure(
                        Tag::RESPONSE_PAYLOAD,
                        vec![
                            t(Tag::OBJECT_TYPE, Value::Enumeration(2)),
                            t(
                                Tag::UNIQUE_IDENTIFIER,
                                Value::TextString("1f0c1bd2-2c5b-4e58-9a44-6d1b1f2bd0b1".into()),
                            ),
                            Ttlv::structure(
                                Tag::SYMMETRIC_KEY,
                                vec![Ttlv::structure(
                                    Tag::KEY_BLOCK,
                                    vec![
                                        t(Tag::KEY_FORMAT_TYPE, Value::Enumeration(1)),
                                        Ttlv::structure(
                                            Tag::KEY_VALUE,
                                            vec![t(
                                                Tag::KEY_MATERIAL,
                                                Value::ByteString(vec![7; 32]),
                                            )],
                                        ),
                                        t(Tag::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(3)),
                                        t(Tag::CRYPTOGRAPHIC_LENGTH, Value::Integer(256)),
                                    ],
                                )],
                            ),
                        ],
                    ),
                ],
            ),
        ],
    );
    encode(&item)
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("ttlv_decode_encode");
    for (name, bytes) in
        [("vcenter_create_request", vcenter_create()), ("get_response", get_response())]
    {
        assert!(!bytes.is_empty(), "missing test vector for {name}");
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let item =
                    decode(black_box(&bytes), &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
                black_box(encode(&item))
            })
        });
    }
    g.finish();
}

fn text_codecs(c: &mut Criterion) {
    let limits = Limits::default();
    let item = decode(&vcenter_create(), &limits).unwrap_or_else(|e| panic!("{e}"));
    let mut g = c.benchmark_group("text_decode");
    // A Query response's worth of names from the largest enumeration (Profile Name, about
    // 200 values): the cost of reading values by name.
    let profiles = Ttlv::structure(
        Tag::RESPONSE_PAYLOAD,
        (0..1000).map(|i| Ttlv::new(Tag::PROFILE_NAME, Value::Enumeration(1 + i % 100))).collect(),
    );
    for (name, text, xml) in [
        ("vcenter_create_request_xml", kmip::ttlv::xml::encode(&item), true),
        ("vcenter_create_request_json", kmip::ttlv::json::encode(&item), false),
        ("profile_names_1000_xml", kmip::ttlv::xml::encode(&profiles), true),
    ] {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let decoded = match xml {
                    true => kmip::ttlv::xml::decode(black_box(&text), &limits),
                    false => kmip::ttlv::json::decode(black_box(&text), &limits),
                };
                black_box(decoded.unwrap_or_else(|e| panic!("{e}")))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, codec, text_codecs);
criterion_main!(benches);
