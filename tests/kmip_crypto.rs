//! Encrypt and Decrypt in the HSM with AES: a FIPS-197 known answer (ECB), CBC with a
//! server-chosen IV, AES-GCM with associated data, and what bad input gets (a tampered
//! tag, a key whose usage mask or state forbids the operation, streaming requests); HMAC,
//! Hash, Get with key wrapping, Derive Key, and ChaCha20 (computed by the service).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use kmip::attributes::{names, Attribute};
use kmip::enums::{
    usage_mask, BlockCipherMode, CryptographicAlgorithm, DerivationMethod, KeyFormatType, LinkType,
    ObjectType, Operation, PaddingMethod, ResultReason, SecretDataType,
};
use kmip::{ProtocolVersion, Tag, Ttlv, Value};

fn register_aes(c: &mut Client, key: &[u8], mask: i32, active: bool) -> String {
    register_key(c, CryptographicAlgorithm::AES, key, mask, active)
}

fn register_key(
    c: &mut Client,
    algorithm: CryptographicAlgorithm,
    key: &[u8],
    mask: i32,
    active: bool,
) -> String {
    uid_of(&c.ok(Operation::REGISTER, register_payload(algorithm, key, mask, active)))
}

fn register_payload(
    algorithm: CryptographicAlgorithm,
    key: &[u8],
    mask: i32,
    active: bool,
) -> Vec<Ttlv> {
    let mut attrs = vec![
        Attribute::new(names::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(algorithm.0)),
        Attribute::new(names::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(mask)),
    ];
    if active {
        attrs.push(Attribute::new(names::ACTIVATION_DATE, Value::DateTime(1)));
    }
    vec![
        enumeration(Tag::OBJECT_TYPE, 2),
        kmip::attributes::write_attributes(&attrs, ProtocolVersion::V2_1).remove(0),
        Ttlv::structure(
            Tag::SYMMETRIC_KEY,
            vec![Ttlv::structure(
                Tag::KEY_BLOCK,
                vec![
                    enumeration(Tag::KEY_FORMAT_TYPE, KeyFormatType::RAW.0),
                    Ttlv::structure(
                        Tag::KEY_VALUE,
                        vec![Ttlv::new(Tag::KEY_MATERIAL, Value::ByteString(key.to_vec()))],
                    ),
                    enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, algorithm.0),
                    int(Tag::CRYPTOGRAPHIC_LENGTH, key.len() as i32 * 8),
                ],
            )],
        ),
    ]
}

fn params(mode: BlockCipherMode, padding: Option<PaddingMethod>) -> Ttlv {
    let mut p = vec![enumeration(Tag::BLOCK_CIPHER_MODE, mode.0)];
    if let Some(pad) = padding {
        p.push(enumeration(Tag::PADDING_METHOD, pad.0));
    }
    Ttlv::structure(Tag::CRYPTOGRAPHIC_PARAMETERS, p)
}

fn bytes(tag: Tag, b: &[u8]) -> Ttlv {
    Ttlv::new(tag, Value::ByteString(b.to_vec()))
}

/// An authenticated Decrypt: ciphertext, IV, additional data and tag, after the
/// Cryptographic Parameters when given.
fn aead_decrypt(
    id: &str,
    params: Option<&Ttlv>,
    ct: &[u8],
    iv: &[u8],
    aad: &Ttlv,
    tag: &[u8],
) -> Vec<Ttlv> {
    let mut payload = vec![uid(id)];
    payload.extend(params.cloned());
    payload.extend([
        bytes(Tag::DATA, ct),
        bytes(Tag::IV_COUNTER_NONCE, iv),
        aad.clone(),
        bytes(Tag::AUTHENTICATED_ENCRYPTION_TAG, tag),
    ]);
    payload
}

/// A changed tag byte does not decrypt: Cryptographic Failure.
fn assert_tampered_tag_fails(c: &mut Client, decrypt: impl Fn(&[u8]) -> Vec<Ttlv>, tag: &[u8]) {
    let mut bad = tag.to_vec();
    bad[tag.len() / 2] ^= 1;
    let item = c.call(Operation::DECRYPT, decrypt(&bad));
    assert_eq!(item.result_reason, Some(ResultReason::CRYPTOGRAPHIC_FAILURE), "{item:?}");
}

fn field(payload: &Ttlv, tag: Tag) -> Vec<u8> {
    payload.find(tag).unwrap().as_bytes().unwrap().to_vec()
}

#[test]
fn aes_encrypt_and_decrypt_in_the_hsm() {
    let (_dir, server, _certs, mut c) = started("strongroom-crypto", "alice");
    c.version = ProtocolVersion::V2_1;
    let both = usage_mask::ENCRYPT | usage_mask::DECRYPT;

    // FIPS-197 Appendix C.1: AES-128.
    let key: Vec<u8> = (0u8..16).collect();
    let plain = hex::decode("00112233445566778899aabbccddeeff").unwrap();
    let id = register_aes(&mut c, &key, both, true);
    let ecb = params(BlockCipherMode::ECB, None);
    let r = c.ok(Operation::ENCRYPT, vec![uid(&id), ecb.clone(), bytes(Tag::DATA, &plain)]);
    assert_eq!(hex::encode(field(&r, Tag::DATA)), "69c4e0d86a7b0430d8cdb78070b4c55a");
    let r = c.ok(Operation::DECRYPT, vec![uid(&id), ecb, bytes(Tag::DATA, &field(&r, Tag::DATA))]);
    assert_eq!(field(&r, Tag::DATA), plain);

    // CBC with PKCS#5 padding and an IV the server picks.
    let message = b"attack at dawn, from the south".to_vec();
    let cbc = params(BlockCipherMode::CBC, Some(PaddingMethod::PKCS5));
    let r = c.ok(Operation::ENCRYPT, vec![uid(&id), cbc.clone(), bytes(Tag::DATA, &message)]);
    let (ct, iv) = (field(&r, Tag::DATA), field(&r, Tag::IV_COUNTER_NONCE));
    assert_eq!((ct.len(), iv.len()), (32, 16));
    let r = c.ok(
        Operation::DECRYPT,
        vec![uid(&id), cbc, bytes(Tag::DATA, &ct), bytes(Tag::IV_COUNTER_NONCE, &iv)],
    );
    assert_eq!(field(&r, Tag::DATA), message);

    // GCM with associated data; a changed tag does not decrypt.
    let gcm = params(BlockCipherMode::GCM, None);
    let aad = bytes(Tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, b"header");
    let r = c.ok(
        Operation::ENCRYPT,
        vec![uid(&id), gcm.clone(), bytes(Tag::DATA, &message), aad.clone()],
    );
    let (ct, iv, tag) = (
        field(&r, Tag::DATA),
        field(&r, Tag::IV_COUNTER_NONCE),
        field(&r, Tag::AUTHENTICATED_ENCRYPTION_TAG),
    );
    assert_eq!((ct.len(), iv.len(), tag.len()), (message.len(), 12, 16));
    let decrypt = |tag: &[u8]| aead_decrypt(&id, Some(&gcm), &ct, &iv, &aad, tag);
    assert_eq!(field(&c.ok(Operation::DECRYPT, decrypt(&tag)), Tag::DATA), message);
    assert_tampered_tag_fails(&mut c, decrypt, &tag);

    // Bad input: wrong block length, multi-part ECB with software padding, usage mask,
    // Pre-Active key.
    let item = c.call(
        Operation::ENCRYPT,
        vec![uid(&id), params(BlockCipherMode::ECB, None), bytes(Tag::DATA, b"short")],
    );
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_FIELD));
    let item = c.call(
        Operation::ENCRYPT,
        vec![
            uid(&id),
            params(BlockCipherMode::ECB, Some(PaddingMethod::PKCS5)),
            bytes(Tag::DATA, &plain),
            Ttlv::new(Tag::INIT_INDICATOR, Value::Boolean(true)),
        ],
    );
    assert_eq!(item.result_reason, Some(ResultReason::FEATURE_NOT_SUPPORTED));
    let decrypt_only = register_aes(&mut c, &key, usage_mask::DECRYPT, true);
    let item = c.call(
        Operation::ENCRYPT,
        vec![uid(&decrypt_only), params(BlockCipherMode::ECB, None), bytes(Tag::DATA, &plain)],
    );
    assert_eq!(item.result_reason, Some(ResultReason::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK));
    let pre_active = register_aes(&mut c, &key, both, false);
    let item = c.call(
        Operation::ENCRYPT,
        vec![uid(&pre_active), params(BlockCipherMode::ECB, None), bytes(Tag::DATA, &plain)],
    );
    assert_eq!(item.result_reason, Some(ResultReason::WRONG_KEY_LIFECYCLE_STATE));

    // The key stays open in the HSM between operations; once destroyed it serves none.
    c.ok(
        Operation::REVOKE,
        vec![uid(&id), revocation(kmip::enums::RevocationReasonCode::CESSATION_OF_OPERATION)],
    );
    c.ok(Operation::DESTROY, vec![uid(&id)]);
    let item = c.call(Operation::DECRYPT, decrypt(&tag));
    assert_eq!(item.result_reason, Some(ResultReason::WRONG_KEY_LIFECYCLE_STATE), "{item:?}");
    // Another key with the same material opens on its own.
    let again = register_aes(&mut c, &key, both, true);
    let r = c.ok(
        Operation::ENCRYPT,
        vec![uid(&again), params(BlockCipherMode::ECB, None), bytes(Tag::DATA, &plain)],
    );
    assert_eq!(hex::encode(field(&r, Tag::DATA)), "69c4e0d86a7b0430d8cdb78070b4c55a");
    server.stop();
}

/// Multi-part Encrypt and Decrypt (Init Indicator, Correlation Value, Final Indicator):
/// parts give what one request gives, only the client that started an operation continues
/// it, and a finished one is gone.
#[test]
fn multi_part_encryption_matches_single_part() {
    let (dir, server, _certs, mut c) = started("strongroom-crypt-parts", "alice");
    c.version = ProtocolVersion::V2_1;
    let key: Vec<u8> = (0u8..32).collect();
    let id = register_aes(&mut c, &key, usage_mask::ENCRYPT | usage_mask::DECRYPT, true);
    let message: Vec<u8> = (0..100u8).collect();
    let flag = |tag, v| Ttlv::new(tag, Value::Boolean(v));
    let first = |p: Ttlv, data: &[u8], iv: &[u8], extra: Vec<Ttlv>| {
        let mut v = vec![uid(&id), p, bytes(Tag::DATA, data), bytes(Tag::IV_COUNTER_NONCE, iv)];
        v.push(flag(Tag::INIT_INDICATOR, true));
        v.extend(extra);
        v
    };
    let next = |corr: &[u8], data: &[u8], last: bool, extra: Vec<Ttlv>| {
        let mut v = vec![uid(&id), bytes(Tag::DATA, data), bytes(Tag::CORRELATION_VALUE, corr)];
        if last {
            v.push(flag(Tag::FINAL_INDICATOR, true));
        }
        v.extend(extra);
        v
    };
    let iv = [7u8; 12];
    let gcm = params(BlockCipherMode::GCM, None);
    let aad = bytes(Tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, b"hdr");
    let whole = c.ok(
        Operation::ENCRYPT,
        vec![
            uid(&id),
            gcm.clone(),
            bytes(Tag::DATA, &message),
            bytes(Tag::IV_COUNTER_NONCE, &iv),
            aad.clone(),
        ],
    );
    let (ct, tag) = (field(&whole, Tag::DATA), field(&whole, Tag::AUTHENTICATED_ENCRYPTION_TAG));

    // GCM in three parts (not on block boundaries).
    let r = c.ok(Operation::ENCRYPT, first(gcm.clone(), &message[..30], &iv, vec![aad.clone()]));
    let corr = field(&r, Tag::CORRELATION_VALUE);
    let mut parts = field(&r, Tag::DATA);
    parts.extend(field(
        &c.ok(Operation::ENCRYPT, next(&corr, &message[30..77], false, vec![])),
        Tag::DATA,
    ));
    let r = c.ok(Operation::ENCRYPT, next(&corr, &message[77..], true, vec![]));
    parts.extend(field(&r, Tag::DATA));
    assert_eq!(parts, ct);
    assert_eq!(field(&r, Tag::AUTHENTICATED_ENCRYPTION_TAG), tag);
    // It is over: its Correlation Value names nothing now.
    let item = c.call(Operation::ENCRYPT, next(&corr, b"more", true, vec![]));
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_CORRELATION_VALUE), "{item:?}");

    // GCM decryption in two parts, the tag with the last.
    let r = c.ok(Operation::DECRYPT, first(gcm.clone(), &ct[..50], &iv, vec![aad.clone()]));
    let corr = field(&r, Tag::CORRELATION_VALUE);
    let mut plain = field(&r, Tag::DATA);
    let tag_item = bytes(Tag::AUTHENTICATED_ENCRYPTION_TAG, &tag);
    plain.extend(field(
        &c.ok(Operation::DECRYPT, next(&corr, &ct[50..], true, vec![tag_item])),
        Tag::DATA,
    ));
    assert_eq!(plain, message);

    // CBC with padding in two parts equals one request.
    let cbc = params(BlockCipherMode::CBC, Some(PaddingMethod::PKCS5));
    let iv16 = [9u8; 16];
    let whole = c.ok(
        Operation::ENCRYPT,
        vec![
            uid(&id),
            cbc.clone(),
            bytes(Tag::DATA, &message),
            bytes(Tag::IV_COUNTER_NONCE, &iv16),
        ],
    );
    let r = c.ok(Operation::ENCRYPT, first(cbc, &message[..40], &iv16, vec![]));
    let corr = field(&r, Tag::CORRELATION_VALUE);
    let mut parts = field(&r, Tag::DATA);
    parts.extend(field(
        &c.ok(Operation::ENCRYPT, next(&corr, &message[40..], true, vec![])),
        Tag::DATA,
    ));
    assert_eq!(parts, field(&whole, Tag::DATA));

    // Another client cannot continue alice's operation, even with a grant on the key.
    let r = c.ok(Operation::ENCRYPT, first(gcm, &message[..16], &iv, vec![]));
    let corr = field(&r, Tag::CORRELATION_VALUE);
    let bob_certs = client_cert(&dir, "bob");
    let mut bob = Client::connect(&server, &bob_certs, "bob");
    bob.version = ProtocolVersion::V2_1;
    let item = bob.call(Operation::ENCRYPT, next(&corr, b"x", true, vec![]));
    assert_eq!(item.result_status, kmip::enums::ResultStatus::OPERATION_FAILED, "{item:?}");
    // Nor can a Decrypt continue an Encrypt (it would skip the Encrypt's checks).
    let item = c.call(Operation::DECRYPT, next(&corr, b"x", true, vec![]));
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_CORRELATION_VALUE), "{item:?}");
    // ... and alice still can.
    c.ok(Operation::ENCRYPT, next(&corr, &message[16..], true, vec![]));
    server.stop();
}

/// Multi-part MAC, MAC Verify and Hash: parts give what one request gives.
#[test]
fn multi_part_mac_and_hash_match_single_part() {
    let (dir, server, _certs, mut c) = started("strongroom-mac-parts", "alice");
    c.version = ProtocolVersion::V2_1;
    let mask = usage_mask::MAC_GENERATE | usage_mask::MAC_VERIFY;
    let id = register_key(&mut c, CryptographicAlgorithm::HMAC_SHA256, &[0x0b; 32], mask, true);
    let message: Vec<u8> = (0..200u8).collect();
    let flag = |tag, v| Ttlv::new(tag, Value::Boolean(v));
    // Sends `message` in three parts to `op` (payload items `head` on each): the last answer.
    let in_parts = |c: &mut Client, op: Operation, head: Vec<Ttlv>, last_extra: Vec<Ttlv>| {
        let mut first = head.clone();
        first.extend([bytes(Tag::DATA, &message[..70]), flag(Tag::INIT_INDICATOR, true)]);
        let corr = field(&c.ok(op, first), Tag::CORRELATION_VALUE);
        let mut middle = head.clone();
        middle.extend([bytes(Tag::DATA, &message[70..150]), bytes(Tag::CORRELATION_VALUE, &corr)]);
        c.ok(op, middle);
        let mut last = head;
        last.extend([
            bytes(Tag::DATA, &message[150..]),
            bytes(Tag::CORRELATION_VALUE, &corr),
            flag(Tag::FINAL_INDICATOR, true),
        ]);
        last.extend(last_extra);
        c.ok(op, last)
    };
    let whole = c.ok(Operation::MAC, vec![uid(&id), bytes(Tag::DATA, &message)]);
    let mac = field(&whole, Tag::MAC_DATA);
    let parts = in_parts(&mut c, Operation::MAC, vec![uid(&id)], vec![]);
    assert_eq!(field(&parts, Tag::MAC_DATA), mac);
    let valid = |r: &Ttlv| r.find(Tag::VALIDITY_INDICATOR).unwrap().value.clone();
    let verified =
        in_parts(&mut c, Operation::MAC_VERIFY, vec![uid(&id)], vec![bytes(Tag::MAC_DATA, &mac)]);
    assert_eq!(valid(&verified), Value::Enumeration(kmip::enums::ValidityIndicator::VALID.0));
    let mut bad = mac.clone();
    bad[0] ^= 1;
    let refused =
        in_parts(&mut c, Operation::MAC_VERIFY, vec![uid(&id)], vec![bytes(Tag::MAC_DATA, &bad)]);
    assert_eq!(valid(&refused), Value::Enumeration(kmip::enums::ValidityIndicator::INVALID.0));

    let sha256 = Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![enumeration(Tag::HASHING_ALGORITHM, kmip::enums::HashingAlgorithm::SHA_256.0)],
    );
    let digest = in_parts(&mut c, Operation::HASH, vec![sha256.clone()], vec![]);
    let expected = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &message);
    assert_eq!(field(&digest, Tag::DATA), expected.as_ref());
    // A digest in progress is its starter's alone.
    let r = c.ok(
        Operation::HASH,
        vec![sha256.clone(), bytes(Tag::DATA, b"x"), flag(Tag::INIT_INDICATOR, true)],
    );
    let corr = field(&r, Tag::CORRELATION_VALUE);
    let bob_certs = client_cert(&dir, "bob");
    let mut bob = Client::connect(&server, &bob_certs, "bob");
    bob.version = ProtocolVersion::V2_1;
    let item = bob.call(
        Operation::HASH,
        vec![sha256, bytes(Tag::CORRELATION_VALUE, &corr), flag(Tag::FINAL_INDICATOR, true)],
    );
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_CORRELATION_VALUE), "{item:?}");
    server.stop();
}

/// AES keys MAC with AES-CMAC in the HSM (RFC 4493 section 4 examples), and verify.
#[test]
fn aes_cmac_in_the_hsm_matches_rfc_4493() {
    let (_dir, server, _certs, mut c) = started("strongroom-cmac", "alice");
    c.version = ProtocolVersion::V2_1;
    let text = include_str!("vectors/rfc4493-section4-aes-cmac.txt");
    let field_of = |prefix: &'static str| -> Vec<Vec<u8>> {
        let values = text.lines().filter_map(|l| l.strip_prefix(prefix));
        values.map(|v| hex::decode(v.trim()).unwrap()).collect()
    };
    let key = field_of("K:").remove(0);
    let id = register_aes(&mut c, &key, usage_mask::MAC_GENERATE | usage_mask::MAC_VERIFY, true);
    let cmac = params(BlockCipherMode::CMAC, None);
    let cases: Vec<_> = field_of("M:").into_iter().zip(field_of("T:")).collect();
    assert_eq!(cases.len(), 4);
    for (m, t) in cases {
        // With the mode named, and with nothing named (an AES key's MAC is CMAC).
        let r = c.ok(Operation::MAC, vec![uid(&id), cmac.clone(), bytes(Tag::DATA, &m)]);
        assert_eq!(field(&r, Tag::MAC_DATA), t);
        let r = c.ok(Operation::MAC, vec![uid(&id), bytes(Tag::DATA, &m)]);
        assert_eq!(field(&r, Tag::MAC_DATA), t);
        let verify = |c: &mut Client, mac: &[u8]| {
            let r = c.ok(
                Operation::MAC_VERIFY,
                vec![uid(&id), bytes(Tag::DATA, &m), bytes(Tag::MAC_DATA, mac)],
            );
            r.find(Tag::VALIDITY_INDICATOR).unwrap().value.clone()
        };
        assert_eq!(verify(&mut c, &t), Value::Enumeration(kmip::enums::ValidityIndicator::VALID.0));
        let mut bad = t.clone();
        bad[0] ^= 1;
        assert_eq!(
            verify(&mut c, &bad),
            Value::Enumeration(kmip::enums::ValidityIndicator::INVALID.0)
        );
    }
    // Other AES MAC modes are not offered.
    let item = c.call(
        Operation::MAC,
        vec![uid(&id), params(BlockCipherMode::CBC_MAC, None), bytes(Tag::DATA, b"x")],
    );
    assert_eq!(item.result_reason, Some(ResultReason::FEATURE_NOT_SUPPORTED), "{item:?}");
    server.stop();
}

#[test]
fn hmac_in_the_hsm_matches_rfc_4231() {
    let (_dir, server, _certs, mut c) = started("strongroom-mac", "alice");
    c.version = ProtocolVersion::V2_1;
    // RFC 4231 §4.7 (test case 6): a 131-byte key.
    let mask = usage_mask::MAC_GENERATE | usage_mask::MAC_VERIFY;
    let id = register_key(&mut c, CryptographicAlgorithm::HMAC_SHA256, &[0xaa; 131], mask, true);
    let data = b"Test Using Larger Than Block-Size Key - Hash Key First";
    let r = c.ok(Operation::MAC, vec![uid(&id), bytes(Tag::DATA, data)]);
    let mac = field(&r, Tag::MAC_DATA);
    assert_eq!(
        hex::encode(&mac),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
    let verify = |c: &mut Client, mac: &[u8]| {
        let r = c.ok(
            Operation::MAC_VERIFY,
            vec![uid(&id), bytes(Tag::DATA, data), bytes(Tag::MAC_DATA, mac)],
        );
        r.find(Tag::VALIDITY_INDICATOR).unwrap().as_enum().unwrap()
            == kmip::enums::ValidityIndicator::VALID.0
    };
    assert!(verify(&mut c, &mac));
    let mut bad = mac.clone();
    bad[5] ^= 0x10;
    assert!(!verify(&mut c, &bad));
    // RFC 4231 §4.3 (test case 2): a 4-byte key, shorter than SoftHSM accepts for HMAC.
    let short = register_key(&mut c, CryptographicAlgorithm::HMAC_SHA256, b"Jefe", mask, true);
    let r =
        c.ok(Operation::MAC, vec![uid(&short), bytes(Tag::DATA, b"what do ya want for nothing?")]);
    assert_eq!(
        hex::encode(field(&r, Tag::MAC_DATA)),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    server.stop();
}

fn derive_payload(
    bases: &[&str],
    method: DerivationMethod,
    params: Vec<Ttlv>,
    attrs: &[Attribute],
) -> Vec<Ttlv> {
    let mut p = vec![enumeration(Tag::OBJECT_TYPE, ObjectType::SYMMETRIC_KEY.0)];
    p.extend(bases.iter().map(|b| uid(b)));
    p.push(enumeration(Tag::DERIVATION_METHOD, method.0));
    p.push(Ttlv::structure(Tag::DERIVATION_PARAMETERS, params));
    p.extend(kmip::attributes::write_attributes(attrs, ProtocolVersion::V2_1));
    p
}

fn links(c: &mut Client, id: &str) -> Vec<(u32, String)> {
    let r = c.ok(Operation::GET_ATTRIBUTES, vec![uid(id)]);
    r.find(Tag::ATTRIBUTES)
        .unwrap()
        .find_all(Tag::LINK)
        .map(|l| {
            let t = l.find(Tag::LINK_TYPE).unwrap().as_enum().unwrap();
            (t, l.find(Tag::LINKED_OBJECT_IDENTIFIER).unwrap().as_text().unwrap().to_owned())
        })
        .collect()
}

/// Derive Key (KMIP 1.4 §4.6) beyond what PyKMIP sends (`tests/pykmip/lifecycle.py derive`
/// checks the derived values against Python's own implementations): the links both ways,
/// the key and Secret Data pair, and precise refusals that store nothing.
#[test]
fn derive_key_links_both_ways_and_refuses_bad_requests() {
    let (_dir, server, _certs, mut c) = started("strongroom-derive", "alice");
    c.version = ProtocolVersion::V2_1;
    let mask = usage_mask::DERIVE_KEY;
    let key = register_key(&mut c, CryptographicAlgorithm::HMAC_SHA512, &[0x42; 64], mask, true);
    let aes_128 = aes_attributes(128);
    let data = bytes(Tag::DERIVATION_DATA, b"context");
    // The key's own algorithm names the PRF (HMAC-SHA512) when the request names none.
    let payload = derive_payload(&[&key], DerivationMethod::HMAC, vec![data.clone()], &aes_128);
    let derived = uid_of(&c.ok(Operation::DERIVE_KEY, payload));
    let material = key_material(&c.ok(Operation::GET, vec![uid(&derived)]));
    let expected = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA512, &[0x42; 64]),
        b"context",
    );
    assert_eq!(material, expected.as_ref()[..16]);
    assert_eq!(links(&mut c, &derived), [(LinkType::DERIVATION_BASE_OBJECT_LINK.0, key.clone())]);
    assert_eq!(links(&mut c, &key), [(LinkType::DERIVED_KEY_LINK.0, derived.clone())]);

    // Derivation Data from a Secret Data object: the same as giving it in the request.
    let secret = uid_of(&c.ok(
        Operation::REGISTER,
        vec![
            enumeration(Tag::OBJECT_TYPE, ObjectType::SECRET_DATA.0),
            kmip::attributes::write_attributes(
                &[
                    Attribute::new(names::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(mask)),
                    Attribute::new(names::ACTIVATION_DATE, Value::DateTime(1)),
                ],
                ProtocolVersion::V2_1,
            )
            .remove(0),
            Ttlv::structure(
                Tag::SECRET_DATA,
                vec![
                    enumeration(Tag::SECRET_DATA_TYPE, SecretDataType::SEED.0),
                    Ttlv::structure(
                        Tag::KEY_BLOCK,
                        vec![
                            enumeration(Tag::KEY_FORMAT_TYPE, KeyFormatType::OPAQUE.0),
                            Ttlv::structure(
                                Tag::KEY_VALUE,
                                vec![bytes(Tag::KEY_MATERIAL, b"context")],
                            ),
                        ],
                    ),
                ],
            ),
        ],
    ));
    let payload = derive_payload(&[&key, &secret], DerivationMethod::HMAC, vec![], &aes_128);
    let from_secret = uid_of(&c.ok(Operation::DERIVE_KEY, payload));
    assert_eq!(key_material(&c.ok(Operation::GET, vec![uid(&from_secret)])), material);
    assert_eq!(links(&mut c, &secret), [(LinkType::DERIVED_KEY_LINK.0, from_secret.clone())]);

    let refused = |c: &mut Client, payload: Vec<Ttlv>, reason: ResultReason| {
        let item = c.call(Operation::DERIVE_KEY, payload);
        assert_eq!(item.result_reason, Some(reason), "{item:?}");
    };
    let count = |c: &mut Client| {
        let r = c.ok(Operation::LOCATE, vec![]);
        r.find_all(Tag::UNIQUE_IDENTIFIER).count()
    };
    let before = count(&mut c);
    // Both a Secret Data object and Derivation Data.
    let p = derive_payload(&[&key, &secret], DerivationMethod::HMAC, vec![data.clone()], &aes_128);
    refused(&mut c, p, ResultReason::INVALID_FIELD);
    // More than HMAC-SHA512 gives.
    let long = vec![
        Attribute::new(
            names::CRYPTOGRAPHIC_ALGORITHM,
            Value::Enumeration(CryptographicAlgorithm::HMAC_SHA256.0),
        ),
        Attribute::new(names::CRYPTOGRAPHIC_LENGTH, Value::Integer(1024)),
    ];
    refused(
        &mut c,
        derive_payload(&[&key], DerivationMethod::HMAC, vec![data.clone()], &long),
        ResultReason::INVALID_FIELD,
    );
    // An AES key of a length AES does not have, and no length at all.
    let odd =
        vec![aes_128[0].clone(), Attribute::new(names::CRYPTOGRAPHIC_LENGTH, Value::Integer(136))];
    refused(
        &mut c,
        derive_payload(&[&key], DerivationMethod::HMAC, vec![data.clone()], &odd),
        ResultReason::INVALID_FIELD,
    );
    refused(
        &mut c,
        derive_payload(&[&key], DerivationMethod::HMAC, vec![data.clone()], &aes_128[..1]),
        ResultReason::INVALID_FIELD,
    );
    // PBKDF2 without a salt, with zero iterations.
    let iterations = |n| int(Tag::ITERATION_COUNT, n);
    refused(
        &mut c,
        derive_payload(&[&key], DerivationMethod::PBKDF2, vec![iterations(10)], &aes_128),
        ResultReason::INVALID_FIELD,
    );
    let salted = vec![bytes(Tag::SALT, b"salt"), iterations(0)];
    refused(
        &mut c,
        derive_payload(&[&key], DerivationMethod::PBKDF2, salted, &aes_128),
        ResultReason::INVALID_FIELD,
    );
    // A million iterations for each of four SHA-1 blocks: past the bound on HMACs.
    let mut wide = long.clone();
    wide[1] = Attribute::new(names::CRYPTOGRAPHIC_LENGTH, Value::Integer(512));
    let sha1 = Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![enumeration(Tag::HASHING_ALGORITHM, kmip::enums::HashingAlgorithm::SHA_1.0)],
    );
    let costly = vec![sha1, bytes(Tag::SALT, b"salt"), iterations(1_000_000)];
    let item = c.call(
        Operation::DERIVE_KEY,
        derive_payload(&[&key], DerivationMethod::PBKDF2, costly, &wide),
    );
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_FIELD), "{item:?}");
    assert!(item.result_message.as_deref().unwrap_or_default().contains("HMACs"), "{item:?}");
    // ENCRYPT needs an AES key; ECDH-style derivation is not offered.
    refused(
        &mut c,
        derive_payload(&[&key], DerivationMethod::ENCRYPT, vec![data.clone()], &aes_128),
        ResultReason::FEATURE_NOT_SUPPORTED,
    );
    // Key agreement takes a private and a public key (kmip_key_pairs.rs), not one AES key.
    refused(
        &mut c,
        derive_payload(&[&key], DerivationMethod::ASYMMETRIC_KEY, vec![data.clone()], &aes_128),
        ResultReason::INVALID_FIELD,
    );
    refused(
        &mut c,
        derive_payload(
            &[&key],
            DerivationMethod::AWS_SIGNATURE_VERSION_4,
            vec![data.clone()],
            &aes_128,
        ),
        ResultReason::FEATURE_NOT_SUPPORTED,
    );
    // A key whose usage mask lacks Derive Key, and an unknown object.
    let mac_only = register_key(
        &mut c,
        CryptographicAlgorithm::HMAC_SHA256,
        &[1; 32],
        usage_mask::MAC_GENERATE,
        true,
    );
    refused(
        &mut c,
        derive_payload(&[&mac_only], DerivationMethod::HMAC, vec![data.clone()], &aes_128),
        ResultReason::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK,
    );
    refused(
        &mut c,
        derive_payload(&["no-such-key"], DerivationMethod::HMAC, vec![data], &aes_128),
        ResultReason::OBJECT_NOT_FOUND,
    );
    assert_eq!(count(&mut c), before + 1, "only the MAC key was stored");
    assert_eq!(links(&mut c, &key).len(), 2, "failed derivations add no links");

    // Encrypting is undone by decrypting: a Sensitive Secret Data object is not encrypted
    // under a key the caller can read, and what is derived from it is Sensitive too.
    let aes = register_key(&mut c, CryptographicAlgorithm::AES, &[7; 32], mask, true);
    let cbc = Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![
            enumeration(Tag::BLOCK_CIPHER_MODE, BlockCipherMode::CBC.0),
            enumeration(Tag::PADDING_METHOD, PaddingMethod::PKCS5.0),
        ],
    );
    let encrypting = |secret: &str| {
        let params = vec![cbc.clone(), bytes(Tag::INITIALIZATION_VECTOR, &[0; 16])];
        derive_payload(&[&aes, secret], DerivationMethod::ENCRYPT, params, &aes_128)
    };
    c.ok(Operation::DERIVE_KEY, encrypting(&secret));
    let sensitive = Ttlv::new(Tag::SENSITIVE, Value::Boolean(true));
    let new_attribute = Ttlv::structure(Tag::NEW_ATTRIBUTE, vec![sensitive]);
    c.ok(Operation::SET_ATTRIBUTE, vec![uid(&secret), new_attribute]);
    refused(&mut c, encrypting(&secret), ResultReason::SENSITIVE);
    let payload = derive_payload(&[&key, &secret], DerivationMethod::HMAC, vec![], &aes_128);
    let from_sensitive = uid_of(&c.ok(Operation::DERIVE_KEY, payload));
    let item = c.call(Operation::GET, vec![uid(&from_sensitive)]);
    assert_eq!(item.result_reason, Some(ResultReason::SENSITIVE), "{item:?}");
    server.stop();
}

#[test]
fn hash_in_the_hsm_matches_fips_180() {
    let (_dir, server, _certs, mut c) = started("strongroom-hash", "alice");
    let sha256 = Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![enumeration(Tag::HASHING_ALGORITHM, kmip::enums::HashingAlgorithm::SHA_256.0)],
    );
    let r = c.ok(Operation::HASH, vec![sha256, bytes(Tag::DATA, b"abc")]);
    assert_eq!(
        hex::encode(field(&r, Tag::DATA)),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let item = c.call(Operation::HASH, vec![bytes(Tag::DATA, b"abc")]);
    assert_eq!(item.result_reason, Some(ResultReason::MISSING_DATA));
    server.stop();
}

fn wrapping_spec(kek: &str, encoding: Option<u32>) -> Ttlv {
    let mut spec = vec![
        enumeration(Tag::WRAPPING_METHOD, kmip::enums::WrappingMethod::ENCRYPT.0),
        Ttlv::structure(
            Tag::ENCRYPTION_KEY_INFORMATION,
            vec![
                uid(kek),
                Ttlv::structure(
                    Tag::CRYPTOGRAPHIC_PARAMETERS,
                    vec![enumeration(Tag::BLOCK_CIPHER_MODE, BlockCipherMode::NISTKEYWRAP.0)],
                ),
            ],
        ),
    ];
    if let Some(e) = encoding {
        spec.push(enumeration(Tag::ENCODING_OPTION, e));
    }
    Ttlv::structure(Tag::KEY_WRAPPING_SPECIFICATION, spec)
}

/// Flips a bit of the wrapped bytes in a Symmetric Key structure's Key Value.
fn flip_wrapped_byte(t: &mut Ttlv) {
    match &mut t.value {
        Value::ByteString(b) if matches!(t.tag, Tag::KEY_VALUE | Tag::KEY_MATERIAL) => b[3] ^= 1,
        Value::Structure(children) => children.iter_mut().for_each(flip_wrapped_byte),
        _ => {}
    }
}

fn wrapped_value(r: &Ttlv) -> Vec<u8> {
    let kb = r.find(Tag::SYMMETRIC_KEY).unwrap().find(Tag::KEY_BLOCK).unwrap();
    assert!(kb.find(Tag::KEY_WRAPPING_DATA).is_some());
    let value = kb.find(Tag::KEY_VALUE).unwrap();
    // No Encoding keeps the Key Value structure around the wrapped Key Material.
    let value = value.find(Tag::KEY_MATERIAL).unwrap_or(value);
    value.as_bytes().unwrap().to_vec()
}

#[test]
fn get_with_key_wrapping_matches_rfc_3394() {
    let (dir, server, _certs, mut c) = started("strongroom-wrap", "alice");
    c.version = ProtocolVersion::V2_1;
    // RFC 3394 §4.6: 256-bit key data wrapped with a 256-bit KEK.
    let kek_bytes: Vec<u8> = (0u8..32).collect();
    let key =
        hex::decode("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F").unwrap();
    let kek = register_aes(&mut c, &kek_bytes, usage_mask::WRAP_KEY | usage_mask::UNWRAP_KEY, true);
    let target = register_aes(&mut c, &key, usage_mask::ENCRYPT, true);
    let r = c.ok(
        Operation::GET,
        vec![uid(&target), wrapping_spec(&kek, Some(kmip::enums::EncodingOption::NO_ENCODING.0))],
    );
    assert_eq!(
        hex::encode_upper(wrapped_value(&r)),
        "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"
    );
    // As PyKMIP reads it (tests/pykmip/lifecycle.py derive): a Key Value structure.
    let kb = r.find(Tag::SYMMETRIC_KEY).unwrap().find(Tag::KEY_BLOCK).unwrap();
    assert!(matches!(kb.find(Tag::KEY_VALUE).unwrap().value, Value::Structure(_)));

    // Default encoding: the TTLV Key Value is wrapped; OpenSSL unwraps it to that structure.
    let r = c.ok(Operation::GET, vec![uid(&target), wrapping_spec(&kek, None)]);
    let wrapped = wrapped_value(&r);
    std::fs::write(dir.join("wrapped.bin"), &wrapped).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "enc",
            "-d",
            "-id-aes256-wrap",
            "-iv",
            "A6A6A6A6A6A6A6A6",
            "-K",
            &hex::encode(&kek_bytes),
            "-in",
        ])
        .arg(dir.join("wrapped.bin"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let value =
        kmip::ttlv::binary::decode(&out.stdout, &kmip::ttlv::binary::Limits::default()).unwrap();
    assert_eq!(value.find(Tag::KEY_MATERIAL).unwrap().as_bytes().unwrap(), key.as_slice());

    // A wrapping key without the Wrap Key usage is refused.
    let item = c.call(Operation::GET, vec![uid(&kek), wrapping_spec(&target, None)]);
    assert_eq!(item.result_reason, Some(ResultReason::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK));

    // Register takes a wrapped Key Block (KMIP 1.4 §2.1.5) and unwraps it in the HSM with
    // the key its Key Wrapping Data names: both encodings Get produced come back as the key.
    let register_wrapped = |c: &mut Client, symmetric_key: Ttlv| {
        let attrs =
            [Attribute::new(names::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(usage_mask::ENCRYPT))];
        c.call(
            Operation::REGISTER,
            vec![
                enumeration(Tag::OBJECT_TYPE, ObjectType::SYMMETRIC_KEY.0),
                kmip::attributes::write_attributes(&attrs, ProtocolVersion::V2_1).remove(0),
                symmetric_key,
            ],
        )
    };
    for encoding in [None, Some(kmip::enums::EncodingOption::NO_ENCODING.0)] {
        let r = c.ok(Operation::GET, vec![uid(&target), wrapping_spec(&kek, encoding)]);
        let block = r.find(Tag::SYMMETRIC_KEY).unwrap().clone();
        let item = register_wrapped(&mut c, block.clone());
        let id = uid_of(item.payload.as_ref().unwrap_or_else(|| panic!("{item:?}")));
        assert_eq!(key_material(&c.ok(Operation::GET, vec![uid(&id)])), key, "{encoding:?}");
        // Changed wrapped bytes fail the unwrap's integrity check; nothing is stored.
        let mut bad = block;
        flip_wrapped_byte(&mut bad);
        let item = register_wrapped(&mut c, bad);
        assert_eq!(item.result_reason, Some(ResultReason::CRYPTOGRAPHIC_FAILURE), "{item:?}");
    }

    // Secret Data wraps and unwraps the same way.
    let password = b"correct horse battery staple".to_vec();
    let secret = |key_value: Ttlv| {
        Ttlv::structure(
            Tag::SECRET_DATA,
            vec![
                enumeration(Tag::SECRET_DATA_TYPE, SecretDataType::PASSWORD.0),
                Ttlv::structure(
                    Tag::KEY_BLOCK,
                    vec![enumeration(Tag::KEY_FORMAT_TYPE, KeyFormatType::OPAQUE.0), key_value],
                ),
            ],
        )
    };
    let plain = Ttlv::structure(
        Tag::KEY_VALUE,
        vec![Ttlv::new(Tag::KEY_MATERIAL, Value::ByteString(password.clone()))],
    );
    let stored = uid_of(&c.ok(
        Operation::REGISTER,
        vec![enumeration(Tag::OBJECT_TYPE, ObjectType::SECRET_DATA.0), secret(plain)],
    ));
    let r = c.ok(Operation::GET, vec![uid(&stored), wrapping_spec(&kek, None)]);
    let block = r.find(Tag::SECRET_DATA).unwrap().find(Tag::KEY_BLOCK).unwrap();
    assert!(block.find(Tag::KEY_WRAPPING_DATA).is_some());
    assert!(matches!(block.find(Tag::KEY_VALUE).unwrap().value, Value::ByteString(_)));
    let back = uid_of(&c.ok(
        Operation::REGISTER,
        vec![
            enumeration(Tag::OBJECT_TYPE, ObjectType::SECRET_DATA.0),
            r.find(Tag::SECRET_DATA).unwrap().clone(),
        ],
    ));
    assert_eq!(key_material(&c.ok(Operation::GET, vec![uid(&back)])), password);

    // A key the client marks Sensitive (KMIP 2.1 §4.55) comes out only wrapped.
    let flag = |c: &mut Client, name: &str| {
        let r = c.ok(Operation::GET_ATTRIBUTES, vec![uid(&target)]);
        let tag = Tag::from_name(name).unwrap();
        r.find(Tag::ATTRIBUTES).unwrap().find(tag).unwrap().value.clone()
    };
    assert_eq!(flag(&mut c, "Sensitive"), Value::Boolean(false));
    let sensitive = |v| {
        vec![
            uid(&target),
            Ttlv::structure(Tag::NEW_ATTRIBUTE, vec![Ttlv::new(Tag::SENSITIVE, Value::Boolean(v))]),
        ]
    };
    c.ok(Operation::SET_ATTRIBUTE, sensitive(true));
    let item = c.call(Operation::GET, vec![uid(&target)]);
    assert_eq!(item.result_reason, Some(ResultReason::SENSITIVE), "{item:?}");
    c.ok(Operation::GET, vec![uid(&target), wrapping_spec(&kek, None)]);
    // A grantee may not have it wrapped under a key of their own, which they hold in
    // clear: only under the owner's RSA public keys or Sensitive AES keys.
    let bob_certs = client_cert(&dir, "bob");
    let mut bob = Client::connect(&server, &bob_certs, "bob");
    bob.version = c.version;
    grant(&dir, &target, "CN=bob", "Get");
    let wrap = usage_mask::WRAP_KEY | usage_mask::UNWRAP_KEY;
    let bobs = register_aes(&mut bob, &[7u8; 32], wrap, true);
    let item = bob.call(Operation::GET, vec![uid(&target), wrapping_spec(&bobs, None)]);
    assert_eq!(item.result_reason, Some(ResultReason::PERMISSION_DENIED), "{item:?}");
    // Nor under the owner's AES key that is not Sensitive (Get would serve it in clear).
    grant(&dir, &kek, "CN=bob", "Get");
    let item = bob.call(Operation::GET, vec![uid(&target), wrapping_spec(&kek, None)]);
    assert_eq!(item.result_reason, Some(ResultReason::PERMISSION_DENIED), "{item:?}");
    // Nor may a grantee lift Sensitive.
    grant(&dir, &target, "CN=bob", "Set Attribute");
    let item = bob.call(Operation::SET_ATTRIBUTE, sensitive(false));
    assert_eq!(item.result_reason, Some(ResultReason::PERMISSION_DENIED), "{item:?}");
    // It was not Sensitive from the start.
    assert_eq!(flag(&mut c, "Sensitive"), Value::Boolean(true));
    assert_eq!(flag(&mut c, "Always Sensitive"), Value::Boolean(false));
    let item = c.call(
        Operation::DELETE_ATTRIBUTE,
        vec![
            uid(&target),
            Ttlv::new(Tag::ATTRIBUTE_REFERENCE, Value::Enumeration(Tag::SENSITIVE.0)),
        ],
    );
    assert_eq!(item.result_status, kmip::enums::ResultStatus::OPERATION_FAILED, "{item:?}");
    c.ok(Operation::SET_ATTRIBUTE, sensitive(false));
    assert_eq!(key_material(&c.ok(Operation::GET, vec![uid(&target)])), key);
    server.stop();
}

/// Create makes HMAC and 3DES keys in the HSM too: an HMAC-SHA256 key MACs in the HSM as
/// aws-lc computes with its material, and a 3DES key comes back as 24 bytes of odd parity
/// (FIPS 46-3), as PKCS#11's CKM_DES3_KEY_GEN makes them. Re-key makes their like.
#[test]
fn create_and_rekey_hmac_and_3des_keys() {
    let (_dir, server, _certs, mut c) = started("strongroom-create-kinds", "alice");
    c.version = ProtocolVersion::V2_1;
    let attrs = |algorithm: CryptographicAlgorithm, bits: i32, mask: i32| {
        vec![
            Attribute::new(names::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(algorithm.0)),
            Attribute::new(names::CRYPTOGRAPHIC_LENGTH, Value::Integer(bits)),
            Attribute::new(names::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(mask)),
            Attribute::new(names::ACTIVATION_DATE, Value::DateTime(1)),
        ]
    };
    let mac_mask = usage_mask::MAC_GENERATE;
    let hmac = uid_of(&c.ok(
        Operation::CREATE,
        create_payload(c.version, &attrs(CryptographicAlgorithm::HMAC_SHA256, 256, mac_mask)),
    ));
    let material = key_material(&c.ok(Operation::GET, vec![uid(&hmac)]));
    assert_eq!(material.len(), 32);
    let r = c.ok(Operation::MAC, vec![uid(&hmac), bytes(Tag::DATA, b"created in the HSM")]);
    let expected = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &material),
        b"created in the HSM",
    );
    assert_eq!(field(&r, Tag::MAC_DATA), expected.as_ref());

    let des = uid_of(&c.ok(
        Operation::CREATE,
        create_payload(
            c.version,
            &attrs(CryptographicAlgorithm::TRIPLE_DES, 168, usage_mask::ENCRYPT),
        ),
    ));
    let key = key_material(&c.ok(Operation::GET, vec![uid(&des)]));
    assert_eq!(key.len(), 24);
    assert!(key.iter().all(|b| b.count_ones() % 2 == 1), "odd parity: {key:02x?}");
    let renewed = uid_of(&c.ok(Operation::RE_KEY, vec![uid(&des)]));
    let again = key_material(&c.ok(Operation::GET, vec![uid(&renewed)]));
    assert_eq!(again.len(), 24);
    assert_ne!(again, key);

    for (algorithm, bits) in [
        (CryptographicAlgorithm::HMAC_SHA256, 100),
        (CryptographicAlgorithm::TRIPLE_DES, 112),
        (CryptographicAlgorithm::AES, 100),
    ] {
        let r =
            c.call(Operation::CREATE, create_payload(c.version, &attrs(algorithm, bits, mac_mask)));
        assert_eq!(r.result_reason, Some(ResultReason::INVALID_FIELD), "{algorithm:?} {bits}");
    }
    let r = c.call(
        Operation::CREATE,
        create_payload(c.version, &attrs(CryptographicAlgorithm::CAMELLIA, 128, mac_mask)),
    );
    assert_eq!(r.result_reason, Some(ResultReason::FEATURE_NOT_SUPPORTED));
    server.stop();
}

/// ChaCha20 and ChaCha20-Poly1305, which the HSM lacks: keys generated by the HSM's
/// generator and sealed like others, the cipher computed by the service. The server's
/// ciphertext opens with the key Get returns; RFC 8439 §2.4.2's known answer (block
/// counter 1 through Initial Counter Value); bad input gets precise reasons.
#[test]
fn chacha20_and_chacha20_poly1305() {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
    let (_dir, server, _certs, mut c) = started("strongroom-chacha", "alice");
    c.version = ProtocolVersion::V2_1;
    let both = usage_mask::ENCRYPT | usage_mask::DECRYPT;
    let attrs = |algorithm: CryptographicAlgorithm, bits: i32| {
        vec![
            Attribute::new(names::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(algorithm.0)),
            Attribute::new(names::CRYPTOGRAPHIC_LENGTH, Value::Integer(bits)),
            Attribute::new(names::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(both)),
            Attribute::new(names::ACTIVATION_DATE, Value::DateTime(1)),
        ]
    };
    let aead = uid_of(&c.ok(
        Operation::CREATE,
        create_payload(c.version, &attrs(CryptographicAlgorithm::CHACHA20POLY1305, 256)),
    ));
    let material = key_material(&c.ok(Operation::GET, vec![uid(&aead)]));
    assert_eq!(material.len(), 32);

    // An Encrypt without a nonce gets one from the server; the result opens with the key.
    let message = b"attack at dawn, from the south".to_vec();
    let aad = bytes(Tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, b"header");
    let r = c.ok(Operation::ENCRYPT, vec![uid(&aead), bytes(Tag::DATA, &message), aad.clone()]);
    let (ct, iv, tag) = (
        field(&r, Tag::DATA),
        field(&r, Tag::IV_COUNTER_NONCE),
        field(&r, Tag::AUTHENTICATED_ENCRYPTION_TAG),
    );
    assert_eq!((ct.len(), iv.len(), tag.len()), (message.len(), 12, 16));
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &material).unwrap());
    let mut sealed = [ct.clone(), tag.clone()].concat();
    let nonce = Nonce::try_assume_unique_for_key(&iv).unwrap();
    let opened = key.open_in_place(nonce, Aad::from(b"header"), &mut sealed).unwrap();
    assert_eq!(opened, &message[..]);

    let decrypt = |tag: &[u8]| aead_decrypt(&aead, None, &ct, &iv, &aad, tag);
    assert_eq!(field(&c.ok(Operation::DECRYPT, decrypt(&tag)), Tag::DATA), message);
    assert_tampered_tag_fails(&mut c, decrypt, &tag);
    let item = c.call(Operation::DECRYPT, decrypt(&tag[..12]));
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_FIELD), "{item:?}");
    // A tag cut to 12 bytes, when Tag Length says so.
    let twelve = Ttlv::structure(Tag::CRYPTOGRAPHIC_PARAMETERS, vec![int(Tag::TAG_LENGTH, 12)]);
    let short = aead_decrypt(&aead, Some(&twelve), &ct, &iv, &aad, &tag[..12]);
    assert_eq!(field(&c.ok(Operation::DECRYPT, short), Tag::DATA), message);
    let mut no_tag = decrypt(&tag);
    no_tag.pop();
    let item = c.call(Operation::DECRYPT, no_tag);
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_FIELD), "{item:?}");
    let cbc = params(BlockCipherMode::CBC, None);
    let item = c.call(Operation::ENCRYPT, vec![uid(&aead), cbc, bytes(Tag::DATA, &message)]);
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_FIELD), "{item:?}");

    // RFC 8439 §2.4.2: key 00..1f, nonce 00000000 0000004a 00000000, block counter 1.
    let stream = register_key(
        &mut c,
        CryptographicAlgorithm::CHACHA20,
        &(0..32).collect::<Vec<u8>>(),
        both,
        true,
    );
    let rfc = |data: &[u8], nonce: &str| {
        vec![
            uid(&stream),
            Ttlv::structure(
                Tag::CRYPTOGRAPHIC_PARAMETERS,
                vec![int(Tag::INITIAL_COUNTER_VALUE, 1)],
            ),
            bytes(Tag::DATA, data),
            bytes(Tag::IV_COUNTER_NONCE, &hex::decode(nonce).unwrap()),
        ]
    };
    let plain = b"Ladies and Gentlemen of the class of '99";
    let r = c.ok(Operation::ENCRYPT, rfc(plain, "000000000000004a00000000"));
    let ct = field(&r, Tag::DATA);
    assert_eq!(hex::encode(&ct[..16]), "6e2e359a2568f98041ba0728dd0d6981");
    assert!(r.find(Tag::IV_COUNTER_NONCE).is_none(), "the client's nonce is not echoed");
    let r = c.ok(Operation::DECRYPT, rfc(&ct, "000000000000004a00000000"));
    assert_eq!(field(&r, Tag::DATA), plain);
    let item = c.call(Operation::ENCRYPT, rfc(plain, "00000000000000000000000000000000"));
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_FIELD), "{item:?}");
    let item = c.call(
        Operation::ENCRYPT,
        vec![
            uid(&stream),
            bytes(Tag::DATA, plain),
            Ttlv::new(Tag::INIT_INDICATOR, Value::Boolean(true)),
        ],
    );
    assert_eq!(item.result_reason, Some(ResultReason::FEATURE_NOT_SUPPORTED), "{item:?}");

    // ChaCha20 keys are 256 bits, registered or created.
    let r = c.call(
        Operation::CREATE,
        create_payload(c.version, &attrs(CryptographicAlgorithm::CHACHA20, 128)),
    );
    assert_eq!(r.result_reason, Some(ResultReason::INVALID_FIELD), "{r:?}");
    let short = register_payload(CryptographicAlgorithm::CHACHA20, &[7; 16], both, true);
    let item = c.call(Operation::REGISTER, short);
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_FIELD), "{item:?}");
    // So are AES keys of other sizes than 128, 192 and 256 bits (the HSM would refuse
    // them only at their first use).
    let odd = register_payload(CryptographicAlgorithm::AES, &[7; 33], both, true);
    let item = c.call(Operation::REGISTER, odd);
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_FIELD), "{item:?}");
    assert!(item.result_message.as_deref().is_some_and(|m| m.contains("AES keys are")), "{item:?}");
    server.stop();
}

/// One PKCS#11 operation (KMIP 2.1 §6.1.37): its Return Code, Correlation Value and Output
/// Parameters, or the Result Reason it failed with.
fn pkcs11(
    c: &mut Client,
    function: kmip::enums::Pkcs11Function,
    correlation: Option<&[u8]>,
    interface: Option<&str>,
) -> Result<kmip::ops::pkcs11::Response, Option<ResultReason>> {
    use kmip::ops::pkcs11::{Function, Request};
    let req = Request {
        interface: interface.map(str::to_owned),
        function: Function::Standard(function),
        correlation_value: correlation.map(<[u8]>::to_vec),
        input: None,
    };
    let item = c.call(Operation::PKCS_11, req.to_ttlv());
    match (item.result_reason, item.payload) {
        (None, Some(p)) => Ok(kmip::ops::pkcs11::Response::from_ttlv(&p).unwrap()),
        (reason, _) => Err(reason),
    }
}

/// The PKCS#11 operation: a context per client from C_Initialize, C_GetInfo describing the
/// service's module (SoftHSM, at the version `softhsm2-util` reports), C_Finalize; every
/// other function is not supported, another interface is refused, 1.x has no such
/// operation.
#[test]
fn pkcs11_operation_describes_the_service_module() {
    use kmip::enums::{Pkcs11Function as F, Pkcs11ReturnCode as Rv};
    let (dir, server, _certs, mut c) = started("strongroom-pkcs11-op", "alice");
    c.version = ProtocolVersion::V2_1;
    let rv = |r: Result<kmip::ops::pkcs11::Response, _>| r.unwrap().return_code;

    assert_eq!(rv(pkcs11(&mut c, F::C_GETINFO, None, None)), Rv::CRYPTOKI_NOT_INITIALIZED);
    let init = pkcs11(&mut c, F::C_INITIALIZE, None, None).unwrap();
    assert_eq!(init.return_code, Rv::OK);
    let ctx = init.correlation_value.expect("a Correlation Value");
    assert_eq!(
        rv(pkcs11(&mut c, F::C_INITIALIZE, Some(&ctx), None)),
        Rv::CRYPTOKI_ALREADY_INITIALIZED
    );

    let info = pkcs11(&mut c, F::C_GETINFO, Some(&ctx), Some("PKCS 11")).unwrap();
    assert_eq!(info.return_code, Rv::OK);
    let info = kmip::ops::pkcs11::CkInfo::decode(&info.output.unwrap()).expect("a CK_INFO");
    assert_eq!(info.manufacturer_id, "SoftHSM");
    let version = std::process::Command::new("softhsm2-util").arg("--version").output().unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    let mut parts = version.trim().split('.').map(|p| p.parse::<u8>().unwrap());
    assert_eq!(info.library_version, (parts.next().unwrap(), parts.next().unwrap()));
    assert!(info.cryptoki_version.0 >= 2, "{info:?}");

    // Another client cannot use alice's context.
    let bob_certs = client_cert(&dir, "bob");
    let mut bob = Client::connect(&server, &bob_certs, "bob");
    bob.version = ProtocolVersion::V2_1;
    assert_eq!(rv(pkcs11(&mut bob, F::C_GETINFO, Some(&ctx), None)), Rv::CRYPTOKI_NOT_INITIALIZED);

    assert_eq!(rv(pkcs11(&mut c, F::C_SIGN, Some(&ctx), None)), Rv::FUNCTION_NOT_SUPPORTED);
    assert_eq!(
        pkcs11(&mut c, F::C_GETINFO, Some(&ctx), Some("Vendor 11")).unwrap_err(),
        Some(ResultReason::PKCS_11_INVALID_INTERFACE)
    );
    assert_eq!(rv(pkcs11(&mut c, F::C_FINALIZE, Some(&ctx), None)), Rv::OK);
    assert_eq!(rv(pkcs11(&mut c, F::C_FINALIZE, Some(&ctx), None)), Rv::CRYPTOKI_NOT_INITIALIZED);

    c.version = ProtocolVersion::V1_4;
    assert_eq!(
        pkcs11(&mut c, F::C_INITIALIZE, None, None).unwrap_err(),
        Some(ResultReason::OPERATION_NOT_SUPPORTED)
    );
    server.stop();
}

/// One client holds at most 64 of the open multi-part operations, so that others still
/// find places (an operation stays open five idle minutes).
#[test]
fn one_client_cannot_hold_every_multi_part_operation() {
    let (dir, server, _certs, mut c) = started("strongroom-stream-quota", "alice");
    c.version = ProtocolVersion::V2_1;
    let open = |c: &mut Client| {
        let sha256 = Ttlv::structure(
            Tag::CRYPTOGRAPHIC_PARAMETERS,
            vec![enumeration(Tag::HASHING_ALGORITHM, kmip::enums::HashingAlgorithm::SHA_256.0)],
        );
        let data = Ttlv::new(Tag::DATA, Value::ByteString(b"part".to_vec()));
        let init = Ttlv::new(Tag::INIT_INDICATOR, Value::Boolean(true));
        c.call(Operation::HASH, vec![sha256, data, init]).result_status
    };
    let success = kmip::enums::ResultStatus::SUCCESS;
    for _ in 0..64 {
        assert_eq!(open(&mut c), success);
    }
    assert_eq!(open(&mut c), kmip::enums::ResultStatus::OPERATION_FAILED, "the 65th");
    let bob_certs = client_cert(&dir, "bob");
    let mut bob = Client::connect(&server, &bob_certs, "bob");
    bob.version = ProtocolVersion::V2_1;
    assert_eq!(open(&mut bob), success, "another client still has places");
    server.stop();
}
