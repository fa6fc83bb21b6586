//! Key pairs in the HSM: Create Key Pair (RSA-2048, P-256, P-384) in both attribute models,
//! Sign and Signature Verify (ECDSA, RSA PKCS#1 v1.5, RSA-PSS) checked independently with
//! `openssl dgst -verify` against the public key from Get, private keys refused by Get,
//! and Destroy removing the key from the HSM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;
use kmip::attributes::{names, write_attributes, Attribute};
use kmip::enums::{
    usage_mask, CryptographicAlgorithm, DigitalSignatureAlgorithm, HashingAlgorithm, KeyFormatType,
    Operation, PaddingMethod, ResultReason, RevocationReasonCode, ValidityIndicator,
};
use kmip::{ProtocolVersion, Tag, Ttlv, Value};

fn create_pair(c: &mut Client, algorithm: CryptographicAlgorithm, bits: i32) -> (String, String) {
    create_pair_for(c, algorithm, bits, usage_mask::SIGN, usage_mask::VERIFY)
}

fn create_pair_for(
    c: &mut Client,
    algorithm: CryptographicAlgorithm,
    bits: i32,
    private_mask: i32,
    public_mask: i32,
) -> (String, String) {
    create_pair_with(c, algorithm, bits, private_mask, public_mask, &[])
}

/// Creates an Active key pair; `private_extra` are more attributes for the private key.
fn create_pair_with(
    c: &mut Client,
    algorithm: CryptographicAlgorithm,
    bits: i32,
    private_mask: i32,
    public_mask: i32,
    private_extra: &[Attribute],
) -> (String, String) {
    let common = [
        Attribute::new(names::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(algorithm.0)),
        Attribute::new(names::CRYPTOGRAPHIC_LENGTH, Value::Integer(bits)),
        Attribute::new(names::ACTIVATION_DATE, Value::DateTime(1)),
    ];
    let mut private =
        vec![Attribute::new(names::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(private_mask))];
    private.extend_from_slice(private_extra);
    let public = [Attribute::new(names::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(public_mask))];
    let v = c.version;
    let part = |v1: Tag, v2: Tag, attrs: &[Attribute]| {
        if v.is_v2() {
            Ttlv::structure(v2, write_attributes(attrs, v).remove(0).children().to_vec())
        } else {
            Ttlv::structure(v1, write_attributes(attrs, v))
        }
    };
    let r = c.ok(
        Operation::CREATE_KEY_PAIR,
        vec![
            part(Tag::COMMON_TEMPLATE_ATTRIBUTE, Tag::COMMON_ATTRIBUTES, &common),
            part(Tag::PRIVATE_KEY_TEMPLATE_ATTRIBUTE, Tag::PRIVATE_KEY_ATTRIBUTES, &private),
            part(Tag::PUBLIC_KEY_TEMPLATE_ATTRIBUTE, Tag::PUBLIC_KEY_ATTRIBUTES, &public),
        ],
    );
    let text = |t| r.find(t).unwrap().as_text().unwrap().to_owned();
    (text(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER), text(Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER))
}

fn params(items: Vec<Ttlv>) -> Ttlv {
    Ttlv::structure(Tag::CRYPTOGRAPHIC_PARAMETERS, items)
}

fn sign(c: &mut Client, id: &str, p: &[Ttlv], data: &[u8]) -> Vec<u8> {
    let mut payload = vec![uid(id)];
    payload.extend(p.iter().cloned());
    payload.push(Ttlv::new(Tag::DATA, Value::ByteString(data.to_vec())));
    c.ok(Operation::SIGN, payload).find(Tag::SIGNATURE_DATA).unwrap().as_bytes().unwrap().to_vec()
}

fn verify(c: &mut Client, id: &str, p: &[Ttlv], data: &[u8], sig: &[u8]) -> bool {
    let mut payload = vec![uid(id)];
    payload.extend(p.iter().cloned());
    payload.push(Ttlv::new(Tag::DATA, Value::ByteString(data.to_vec())));
    payload.push(Ttlv::new(Tag::SIGNATURE_DATA, Value::ByteString(sig.to_vec())));
    let v = c
        .ok(Operation::SIGNATURE_VERIFY, payload)
        .find(Tag::VALIDITY_INDICATOR)
        .unwrap()
        .as_enum()
        .unwrap();
    v == ValidityIndicator::VALID.0
}

/// Verifies with OpenSSL, an implementation that is not ours.
fn openssl_verifies(
    dir: &std::path::Path,
    spki: &[u8],
    digest: &str,
    opts: &[&str],
    data: &[u8],
    sig: &[u8],
) -> bool {
    let (k, d, s) = (dir.join("pub.der"), dir.join("data.bin"), dir.join("sig.bin"));
    std::fs::write(&k, spki).unwrap();
    std::fs::write(&d, data).unwrap();
    std::fs::write(&s, sig).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", digest, "-keyform", "DER", "-verify"])
        .arg(&k)
        .args(opts)
        .arg("-signature")
        .arg(&s)
        .arg(&d)
        .output()
        .expect("openssl");
    out.status.success()
}

fn public_spki(c: &mut Client, id: &str) -> Vec<u8> {
    let r = c.ok(
        Operation::GET,
        vec![uid(id), enumeration(Tag::KEY_FORMAT_TYPE, KeyFormatType::X_509.0)],
    );
    r.find(Tag::PUBLIC_KEY)
        .unwrap()
        .find(Tag::KEY_BLOCK)
        .unwrap()
        .find(Tag::KEY_VALUE)
        .unwrap()
        .find(Tag::KEY_MATERIAL)
        .unwrap()
        .as_bytes()
        .unwrap()
        .to_vec()
}

#[test]
fn key_pairs_sign_and_verify_in_the_hsm() {
    let (dir, server, _certs, mut c) = started("strongroom-pairs", "alice");
    let data = b"the quick brown fox".to_vec();

    for (version, algorithm, bits, digest) in [
        (ProtocolVersion::V2_1, CryptographicAlgorithm::EC, 256, "-sha256"),
        (ProtocolVersion::V1_4, CryptographicAlgorithm::EC, 384, "-sha384"),
        (ProtocolVersion::V2_1, CryptographicAlgorithm::RSA, 2048, "-sha256"),
    ] {
        c.version = version;
        let (private, public) = create_pair(&mut c, algorithm, bits);
        let sig = sign(&mut c, &private, &[], &data);
        assert!(verify(&mut c, &public, &[], &data, &sig), "{algorithm:?}");
        assert!(!verify(&mut c, &public, &[], b"tampered", &sig), "{algorithm:?}");
        let spki = public_spki(&mut c, &public);
        assert!(
            openssl_verifies(&dir, &spki, digest, &[], &data, &sig),
            "openssl rejects {algorithm:?} {bits}"
        );
        // The private key never leaves the HSM.
        let item = c.call(Operation::GET, vec![uid(&private)]);
        assert_eq!(item.result_reason, Some(ResultReason::NOT_EXTRACTABLE));
        // A public key cannot sign; a private key cannot verify.
        let item = c.call(
            Operation::SIGN,
            vec![uid(&public), Ttlv::new(Tag::DATA, Value::ByteString(data.clone()))],
        );
        assert_eq!(item.result_reason, Some(ResultReason::INVALID_FIELD));

        if algorithm == CryptographicAlgorithm::RSA {
            // RSA-PSS, and PKCS#1 v1.5 named by Digital Signature Algorithm.
            let pss = [params(vec![
                enumeration(Tag::PADDING_METHOD, PaddingMethod::PSS.0),
                enumeration(Tag::HASHING_ALGORITHM, HashingAlgorithm::SHA_256.0),
            ])];
            let sig = sign(&mut c, &private, &pss, &data);
            assert!(verify(&mut c, &public, &pss, &data, &sig));
            let opts = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"];
            assert!(
                openssl_verifies(&dir, &spki, "-sha256", &opts, &data, &sig),
                "openssl rejects PSS"
            );
            let dsa = [params(vec![enumeration(
                Tag::DIGITAL_SIGNATURE_ALGORITHM,
                DigitalSignatureAlgorithm::SHA_512_WITH_RSA_ENCRYPTION.0,
            )])];
            let sig = sign(&mut c, &private, &dsa, &data);
            assert!(openssl_verifies(&dir, &spki, "-sha512", &[], &data, &sig));
            // The default public key format for RSA is PKCS#1.
            let r = c.ok(Operation::GET, vec![uid(&public)]);
            let kb = r.find(Tag::PUBLIC_KEY).unwrap().find(Tag::KEY_BLOCK).unwrap();
            assert_eq!(
                kb.find(Tag::KEY_FORMAT_TYPE).unwrap().as_enum().unwrap(),
                KeyFormatType::PKCS_1.0
            );
        }

        // Revoke and destroy the private key: it is gone from the HSM.
        let reason = revocation(RevocationReasonCode::CESSATION_OF_OPERATION);
        c.ok(Operation::REVOKE, vec![uid(&private), reason]);
        c.ok(Operation::DESTROY, vec![uid(&private)]);
        let item = c.call(
            Operation::SIGN,
            vec![uid(&private), Ttlv::new(Tag::DATA, Value::ByteString(data.clone()))],
        );
        assert!(item.result_reason.is_some(), "{item:?}");
    }
    server.stop();
}

#[test]
fn rsa_oaep_encryption_with_hsm_key_pairs() {
    let (dir, server, _certs, mut c) = started("strongroom-oaep", "alice");
    c.version = ProtocolVersion::V2_1;
    let (private, public) = create_pair_for(
        &mut c,
        CryptographicAlgorithm::RSA,
        2048,
        usage_mask::DECRYPT,
        usage_mask::ENCRYPT,
    );
    let oaep = Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![enumeration(Tag::PADDING_METHOD, PaddingMethod::OAEP.0)],
    );
    let data = b"wrapped data encryption key".to_vec();
    let r = c.ok(
        Operation::ENCRYPT,
        vec![uid(&public), oaep.clone(), Ttlv::new(Tag::DATA, Value::ByteString(data.clone()))],
    );
    let ct = r.find(Tag::DATA).unwrap().as_bytes().unwrap().to_vec();
    assert_eq!(ct.len(), 256);
    let r = c.ok(
        Operation::DECRYPT,
        vec![uid(&private), oaep.clone(), Ttlv::new(Tag::DATA, Value::ByteString(ct))],
    );
    assert_eq!(r.find(Tag::DATA).unwrap().as_bytes().unwrap(), data.as_slice());

    // OpenSSL encrypts to the public key from Get; the HSM's private key decrypts.
    std::fs::write(dir.join("pub.der"), public_spki(&mut c, &public)).unwrap();
    std::fs::write(dir.join("msg.bin"), &data).unwrap();
    let out = Command::new("openssl")
        .args(["pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey"])
        .arg(dir.join("pub.der"))
        .args(["-pkeyopt", "rsa_padding_mode:oaep", "-in"])
        .arg(dir.join("msg.bin"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = c.ok(
        Operation::DECRYPT,
        vec![uid(&private), oaep.clone(), Ttlv::new(Tag::DATA, Value::ByteString(out.stdout))],
    );
    assert_eq!(r.find(Tag::DATA).unwrap().as_bytes().unwrap(), data.as_slice());

    // The signing-only pair refuses encryption by its usage mask.
    let (_, verify_only) = create_pair(&mut c, CryptographicAlgorithm::RSA, 2048);
    let item = c.call(
        Operation::ENCRYPT,
        vec![uid(&verify_only), oaep, Ttlv::new(Tag::DATA, Value::ByteString(data))],
    );
    assert_eq!(item.result_reason, Some(ResultReason::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK));
    server.stop();
}

/// The certificate object's DER from a Get response.
fn certificate_der(c: &mut Client, id: &str) -> Vec<u8> {
    let r = c.ok(Operation::GET, vec![uid(id)]);
    let cert = r.find(Tag::CERTIFICATE).unwrap();
    assert_eq!(cert.find(Tag::CERTIFICATE_TYPE).unwrap().as_enum().unwrap(), 1, "X.509");
    cert.find(Tag::CERTIFICATE_VALUE).unwrap().as_bytes().unwrap().to_vec()
}

/// `openssl verify` accepts the certificate `der` with the root (`DATA/ca.crt`) as trust
/// anchor and the server's `/v1/pki/ca_chain` as intermediates.
fn assert_chains_to_root(dir: &std::path::Path, server: &Server, der: &[u8]) {
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der)
    );
    std::fs::write(dir.join("certified.pem"), pem).unwrap();
    let (status, chain) =
        https_with(server.https, tls_config(dir, None), "GET", "/v1/pki/ca_chain", &[], b"");
    assert_eq!(status, 200);
    std::fs::write(dir.join("ca_chain.pem"), chain).unwrap();
    let out = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(dir.join("ca.crt"))
        .arg("-untrusted")
        .arg(dir.join("ca_chain.pem"))
        .arg(dir.join("certified.pem"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn certify_issues_from_the_hsm_ca() {
    let (dir, server, _certs, mut c) = started("strongroom-certify", "alice");
    let (_, public) = create_pair(&mut c, CryptographicAlgorithm::EC, 256);
    let name = Attribute::new(names::NAME, name_value("payments-signer"));
    c.ok(Operation::ADD_ATTRIBUTE, vec![uid(&public), name.to_v1()]);

    // Certify a managed public key: the certificate carries that key, the CA signed it,
    // and the two objects link to each other.
    let cert_id = uid_of(&c.ok(Operation::CERTIFY, vec![uid(&public)]));
    let der = certificate_der(&mut c, &cert_id);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(cert.public_key().raw, public_spki(&mut c, &public).as_slice());
    assert_eq!(cert.subject().to_string(), "CN=payments-signer");
    // Signed by the issuing intermediate, published with the root at /v1/pki/ca_chain.
    assert_chains_to_root(&dir, &server, &der);
    let links =
        c.ok(Operation::GET_ATTRIBUTES, vec![uid(&public), text(Tag::ATTRIBUTE_NAME, "Link")]);
    let linked: Vec<String> = links
        .find_all(Tag::ATTRIBUTE)
        .map(|a| Attribute::from_v1(a).unwrap().value)
        .filter_map(|v| match v {
            Value::Structure(items) => items
                .iter()
                .find(|i| i.tag == Tag::LINKED_OBJECT_IDENTIFIER)
                .and_then(|i| i.as_text().ok().map(str::to_owned)),
            _ => None,
        })
        .collect();
    assert!(linked.contains(&cert_id), "{linked:?}");

    // KMIP Revoke of the certificate object puts it on the CA's CRL.
    c.ok(Operation::REVOKE, vec![uid(&cert_id), revocation(RevocationReasonCode::KEY_COMPROMISE)]);
    let listing = crl_listing(&dir, &server);
    let serial = hex::encode_upper(cert.raw_serial());
    assert!(listing.contains(&serial), "{serial} not in\n{listing}");
    assert!(listing.contains("KEY COMPROMISE"), "{listing}");

    // Certify a PKCS#10 request: the requester's key, its subject.
    let (key, csr) = csr_for("device-17");
    let (_, der) = certify_request(&mut c, &csr);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(cert.public_key().raw, rcgen::PublicKeyData::subject_public_key_info(&key));
    assert_eq!(cert.subject().to_string(), "CN=device-17");

    // A tampered request is refused, and nothing is issued for it.
    let mut bad = csr;
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let item = c.call(
        Operation::CERTIFY,
        vec![
            enumeration(Tag::CERTIFICATE_REQUEST_TYPE, 2),
            Ttlv::new(Tag::CERTIFICATE_REQUEST, Value::ByteString(bad)),
        ],
    );
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_FIELD), "{item:?}");
    server.stop();
}

/// The CA that Certify issues from also authenticates KMIP clients, by subject: a
/// certificate for another identity's name must not log in as it, while one for the
/// caller's own name does. And a Registered copy of a certificate, revoked, leaves the
/// original off the CRL: only the object Certify made revokes it.
#[test]
fn certify_mints_no_login_and_copies_revoke_nothing() {
    let (dir, server, _certs, mut c) = started("strongroom-certify-login", "alice");
    let out = dir.join("certified-logins");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(dir.join("ca.crt"), out.join("ca.crt")).unwrap();
    let mut issued = Vec::new();
    for (name, logs_in) in [("kms-admin", false), ("alice", true)] {
        let (key, csr) = csr_for(name);
        let (id, der) = certify_request(&mut c, &csr);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        // Server authentication is an admin's to give: a common name may name any host.
        assert!(!eku.server_auth, "{name}");
        assert_eq!(eku.client_auth, logs_in, "{name}");
        assert_eq!(eku.other.is_empty(), logs_in, "document signing otherwise: {name}");
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der)
        );
        std::fs::write(out.join(format!("{name}.crt")), pem).unwrap();
        std::fs::write(out.join(format!("{name}.key")), key.serialize_pem()).unwrap();
        let mut login = Client::connect_with(server.kmip, tls_config(&out, Some(name)));
        let discover = request(ProtocolVersion::V1_4, vec![(Operation::DISCOVER_VERSIONS, vec![])]);
        let discover = kmip::ttlv::binary::encode(&discover.to_ttlv());
        assert_eq!(login.send_raw(&discover).is_ok(), logs_in, "{name} logs in");
        issued.push((id, der));
    }

    // Bob registers a byte-for-byte copy of alice's certificate and revokes his copy: the
    // CA's record (CRL) is untouched. Alice's own Revoke of her object does revoke it.
    let (_, der) = issued.pop().unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let serial = hex::encode_upper(cert.raw_serial());
    const CERTIFICATE: u32 = kmip::enums::ObjectType::CERTIFICATE.0;
    let bob_certs = client_cert(&dir, "bob");
    let mut bob = Client::connect(&server, &bob_certs, "bob");
    let copy = uid_of(&bob.ok(
        Operation::REGISTER,
        vec![
            enumeration(Tag::OBJECT_TYPE, CERTIFICATE),
            Ttlv::structure(Tag::TEMPLATE_ATTRIBUTE, vec![]),
            Ttlv::structure(
                Tag::CERTIFICATE,
                vec![
                    enumeration(Tag::CERTIFICATE_TYPE, 1),
                    Ttlv::new(Tag::CERTIFICATE_VALUE, Value::ByteString(der.clone())),
                ],
            ),
        ],
    ));
    bob.ok(Operation::REVOKE, vec![uid(&copy), revocation(RevocationReasonCode::KEY_COMPROMISE)]);
    assert!(!crl_listing(&dir, &server).contains(&serial), "a copy's Revoke revoked {serial}");
    let found = c.ok(
        Operation::LOCATE,
        vec![Attribute::new(names::OBJECT_TYPE, Value::Enumeration(CERTIFICATE)).to_v1()],
    );
    let alices: Vec<String> = found
        .find_all(Tag::UNIQUE_IDENTIFIER)
        .filter_map(|u| u.as_text().ok().map(str::to_owned))
        .collect();
    for id in &alices {
        if certificate_der(&mut c, id) == der {
            // Active first: a Pre-Active object is destroyed, not deactivated (§3.22).
            c.ok(Operation::ACTIVATE, vec![uid(id)]);
            c.ok(Operation::REVOKE, vec![uid(id), revocation(RevocationReasonCode::SUPERSEDED)]);
        }
    }
    assert!(crl_listing(&dir, &server).contains(&serial), "the original's Revoke");

    // A certificate object destroyed, then revoked for a compromise (Destroyed
    // Compromised), still puts its certificate on the CRL: found by the object, whose
    // material is gone.
    let (id, der) = issued.pop().unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let serial = hex::encode_upper(cert.raw_serial());
    c.ok(Operation::DESTROY, vec![uid(&id)]);
    c.ok(Operation::REVOKE, vec![uid(&id), revocation(RevocationReasonCode::KEY_COMPROMISE)]);
    assert!(crl_listing(&dir, &server).contains(&serial), "revoked after Destroy");
    server.stop();
}

/// A new key and a PKCS#10 request (DER) for it with common name `cn`.
fn csr_for(cn: &str) -> (rcgen::KeyPair, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let csr = params.serialize_request(&key).unwrap().der().to_vec();
    (key, csr)
}

/// Certify of a PKCS#10 request: the certificate object's id and the certificate's DER.
fn certify_request(c: &mut Client, csr: &[u8]) -> (String, Vec<u8>) {
    let item = c.ok(
        Operation::CERTIFY,
        vec![
            enumeration(Tag::CERTIFICATE_REQUEST_TYPE, 2),
            Ttlv::new(Tag::CERTIFICATE_REQUEST, Value::ByteString(csr.to_vec())),
        ],
    );
    let id = uid_of(&item);
    let der = certificate_der(c, &id);
    (id, der)
}

/// The issuing CA's current CRL as `openssl crl -text` prints it, in upper case.
fn crl_listing(dir: &std::path::Path, server: &Server) -> String {
    let (status, crl) =
        https_with(server.https, tls_config(dir, None), "GET", "/v1/pki/crl/pem", &[], b"");
    assert_eq!(status, 200);
    std::fs::write(dir.join("crl.pem"), crl).unwrap();
    let out = Command::new("openssl")
        .args(["crl", "-noout", "-text", "-in"])
        .arg(dir.join("crl.pem"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_uppercase()
}

/// A Key Block holding `material` in `format`.
/// Registers a private or public key `block` with a Cryptographic Usage Mask; its id.
fn register_key(c: &mut Client, private: bool, mask: i32, block: Ttlv) -> String {
    use kmip::enums::ObjectType;
    let (object_type, tag) = match private {
        true => (ObjectType::PRIVATE_KEY, Tag::PRIVATE_KEY),
        false => (ObjectType::PUBLIC_KEY, Tag::PUBLIC_KEY),
    };
    let attrs = [Attribute::new(names::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(mask))];
    uid_of(&c.ok(
        Operation::REGISTER,
        vec![
            enumeration(Tag::OBJECT_TYPE, object_type.0),
            Ttlv::structure(
                Tag::TEMPLATE_ATTRIBUTE,
                write_attributes(&attrs, ProtocolVersion::V1_4),
            ),
            Ttlv::structure(tag, vec![block]),
        ],
    ))
}

/// Registers `block` as a private key without attributes, expecting a refusal: its reason.
fn register_private_reason(c: &mut Client, block: Ttlv) -> Option<ResultReason> {
    let item = c.call(
        Operation::REGISTER,
        vec![
            enumeration(Tag::OBJECT_TYPE, kmip::enums::ObjectType::PRIVATE_KEY.0),
            Ttlv::structure(Tag::PRIVATE_KEY, vec![block]),
        ],
    );
    assert_eq!(item.result_status, kmip::enums::ResultStatus::OPERATION_FAILED, "{item:?}");
    item.result_reason
}

fn key_block(format: KeyFormatType, material: Vec<u8>) -> Ttlv {
    Ttlv::structure(
        Tag::KEY_BLOCK,
        vec![
            enumeration(Tag::KEY_FORMAT_TYPE, format.0),
            Ttlv::structure(
                Tag::KEY_VALUE,
                vec![Ttlv::new(Tag::KEY_MATERIAL, Value::ByteString(material))],
            ),
        ],
    )
}

#[test]
fn registered_rsa_private_keys_work_inside_the_hsm() {
    let (dir, server, _certs, mut c) = started("strongroom-register-private", "alice");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let block = key_block(KeyFormatType::PKCS_8, key.serialize_der());
    let id = register_key(&mut c, true, usage_mask::SIGN | usage_mask::DECRYPT, block);
    c.ok(Operation::ACTIVATE, vec![uid(&id)]);
    // Like a generated private key, it never comes back out.
    let item = c.call(Operation::GET, vec![uid(&id)]);
    assert_eq!(item.result_reason, Some(ResultReason::NOT_EXTRACTABLE), "{item:?}");

    // It signs in the HSM (OpenSSL checks with the public half) and decrypts what OpenSSL
    // encrypted to it with RSA-OAEP.
    std::fs::write(dir.join("reg-pub.pem"), key.public_key_pem()).unwrap();
    let data = b"registered, then used only inside the HSM".to_vec();
    let p = [params(vec![enumeration(Tag::PADDING_METHOD, PaddingMethod::PKCS1_V1_5.0)])];
    let signature = sign(&mut c, &id, &p, &data);
    std::fs::write(dir.join("reg-msg.bin"), &data).unwrap();
    std::fs::write(dir.join("reg-sig.bin"), &signature).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(dir.join("reg-pub.pem"))
        .arg("-signature")
        .arg(dir.join("reg-sig.bin"))
        .arg(dir.join("reg-msg.bin"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new("openssl")
        .args(["pkeyutl", "-encrypt", "-pubin", "-inkey"])
        .arg(dir.join("reg-pub.pem"))
        .args(["-pkeyopt", "rsa_padding_mode:oaep", "-in"])
        .arg(dir.join("reg-msg.bin"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let oaep = Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![enumeration(Tag::PADDING_METHOD, PaddingMethod::OAEP.0)],
    );
    let r = c.ok(
        Operation::DECRYPT,
        vec![uid(&id), oaep, Ttlv::new(Tag::DATA, Value::ByteString(out.stdout))],
    );
    assert_eq!(r.find(Tag::DATA).unwrap().as_bytes().unwrap(), data.as_slice());

    // OAEP with SHA-2 and a label (P Source), which SoftHSM's own OAEP lacks: the HSM does
    // raw RSA and the server the padding. OpenSSL encrypts, the HSM decrypts; the server
    // encrypts with the registered public key, OpenSSL decrypts with the private one.
    std::fs::write(dir.join("reg-key.pem"), key.serialize_pem()).unwrap();
    let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
    let public =
        register_key(&mut c, false, usage_mask::ENCRYPT, key_block(KeyFormatType::X_509, spki));
    c.ok(Operation::ACTIVATE, vec![uid(&public)]);
    for (hash, mgf, openssl_hash, openssl_mgf, label) in [
        (HashingAlgorithm::SHA_256, HashingAlgorithm::SHA_256, "sha256", "sha256", &b"L"[..]),
        (HashingAlgorithm::SHA_512, HashingAlgorithm::SHA_1, "sha512", "sha1", b""),
    ] {
        let options = |cmd: &mut Command| {
            cmd.args(["-pkeyopt", "rsa_padding_mode:oaep"])
                .args(["-pkeyopt", &format!("rsa_oaep_md:{openssl_hash}")])
                .args(["-pkeyopt", &format!("rsa_mgf1_md:{openssl_mgf}")]);
            if !label.is_empty() {
                cmd.args(["-pkeyopt", &format!("rsa_oaep_label:{}", hex::encode(label))]);
            }
        };
        let p = params(vec![
            enumeration(Tag::PADDING_METHOD, PaddingMethod::OAEP.0),
            enumeration(Tag::HASHING_ALGORITHM, hash.0),
            enumeration(Tag::MASK_GENERATOR_HASHING_ALGORITHM, mgf.0),
            Ttlv::new(Tag::P_SOURCE, Value::ByteString(label.to_vec())),
        ]);
        let mut cmd = Command::new("openssl");
        cmd.args(["pkeyutl", "-encrypt", "-pubin", "-inkey"]).arg(dir.join("reg-pub.pem"));
        options(&mut cmd);
        let out = cmd.arg("-in").arg(dir.join("reg-msg.bin")).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let r = c.ok(
            Operation::DECRYPT,
            vec![uid(&id), p.clone(), Ttlv::new(Tag::DATA, Value::ByteString(out.stdout.clone()))],
        );
        assert_eq!(
            r.find(Tag::DATA).unwrap().as_bytes().unwrap(),
            data.as_slice(),
            "{openssl_hash}"
        );
        // The wrong label does not decrypt, and says no more than that.
        let wrong = params(vec![
            enumeration(Tag::PADDING_METHOD, PaddingMethod::OAEP.0),
            enumeration(Tag::HASHING_ALGORITHM, hash.0),
            enumeration(Tag::MASK_GENERATOR_HASHING_ALGORITHM, mgf.0),
            Ttlv::new(Tag::P_SOURCE, Value::ByteString(b"other".to_vec())),
        ]);
        let item = c.call(
            Operation::DECRYPT,
            vec![uid(&id), wrong, Ttlv::new(Tag::DATA, Value::ByteString(out.stdout))],
        );
        assert_eq!(item.result_reason, Some(ResultReason::CRYPTOGRAPHIC_FAILURE), "{item:?}");

        let r = c.ok(
            Operation::ENCRYPT,
            vec![uid(&public), p, Ttlv::new(Tag::DATA, Value::ByteString(data.clone()))],
        );
        std::fs::write(dir.join("reg-ct.bin"), r.find(Tag::DATA).unwrap().as_bytes().unwrap())
            .unwrap();
        let mut cmd = Command::new("openssl");
        cmd.args(["pkeyutl", "-decrypt", "-inkey"]).arg(dir.join("reg-key.pem"));
        options(&mut cmd);
        let out = cmd.arg("-in").arg(dir.join("reg-ct.bin")).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, data, "{openssl_hash}");
    }

    // Material that is not an RSA private key is refused as invalid.
    let refused = register_private_reason(
        &mut c,
        key_block(KeyFormatType::PKCS_1, vec![0x30, 0x03, 1, 2, 3]),
    );
    assert_eq!(refused, Some(ResultReason::INVALID_FIELD));
    server.stop();
}

/// Import with Replace Existing of a private key (KMIP 2.1 §6.1.25): the old key stays in
/// the HSM, and signs, when its replacement is refused; once replaced, only the new key
/// signs under the identifier.
#[test]
fn a_replacing_import_keeps_the_old_private_key_until_the_new_one_is_in() {
    let (dir, server, _certs, mut c) = started("strongroom-import-private", "alice");
    let (old, new) = (rcgen::KeyPair::generate().unwrap(), rcgen::KeyPair::generate().unwrap());
    let id = register_key(
        &mut c,
        true,
        usage_mask::SIGN,
        key_block(KeyFormatType::PKCS_8, old.serialize_der()),
    );
    c.ok(Operation::ACTIVATE, vec![uid(&id)]);
    let data = b"signed before and after an import";
    let signed_by = |c: &mut Client, key: &rcgen::KeyPair| {
        let signature = sign(c, &id, &[], data);
        let spki = rcgen::PublicKeyData::subject_public_key_info(key);
        openssl_verifies(&dir, &spki, "-sha256", &[], data, &signature)
    };
    assert!(signed_by(&mut c, &old));

    c.version = ProtocolVersion::V2_1;
    let import = |c: &mut Client, block: Ttlv| {
        let attrs = [
            Attribute::new(names::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(usage_mask::SIGN)),
            Attribute::new(names::STATE, Value::Enumeration(kmip::enums::State::ACTIVE.0)),
        ];
        let mut payload = vec![
            uid(&id),
            Ttlv::new(Tag::REPLACE_EXISTING, Value::Boolean(true)),
            enumeration(Tag::OBJECT_TYPE, kmip::enums::ObjectType::PRIVATE_KEY.0),
        ];
        payload.extend(write_attributes(&attrs, ProtocolVersion::V2_1));
        payload.push(Ttlv::structure(Tag::PRIVATE_KEY, vec![block]));
        c.call(Operation::IMPORT, payload)
    };
    let refused = import(&mut c, key_block(KeyFormatType::ECPRIVATEKEY, vec![0x30, 0x03, 2, 1, 1]));
    assert_eq!(refused.result_reason, Some(ResultReason::INVALID_FIELD), "{refused:?}");
    assert!(signed_by(&mut c, &old), "the old key is back in place");

    let replaced = import(&mut c, key_block(KeyFormatType::PKCS_8, new.serialize_der()));
    assert_eq!(replaced.result_status, kmip::enums::ResultStatus::SUCCESS, "{replaced:?}");
    assert!(signed_by(&mut c, &new));
    assert!(!signed_by(&mut c, &old));
    server.stop();
}

/// EC private keys registered in PKCS#8 (P-256, from rcgen) and ECPrivateKey (P-384, from
/// OpenSSL) go into the HSM as non-extractable objects, sign there, and OpenSSL verifies.
#[test]
fn registered_ec_private_keys_sign_inside_the_hsm() {
    let (dir, server, _certs, mut c) = started("strongroom-register-ec", "alice");
    let p256 = rcgen::KeyPair::generate().unwrap();
    std::fs::write(dir.join("p256.pem"), p256.public_key_pem()).unwrap();
    let out = Command::new("openssl")
        .args(["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-outform", "DER", "-out"])
        .arg(dir.join("p384.der"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new("openssl")
        .args(["ec", "-inform", "DER", "-pubout", "-in"])
        .arg(dir.join("p384.der"))
        .arg("-out")
        .arg(dir.join("p384.pem"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let p384 = std::fs::read(dir.join("p384.der")).unwrap();
    let data = b"signed by a registered EC key".to_vec();
    std::fs::write(dir.join("ec-msg.bin"), &data).unwrap();
    for (format, material, bits, public, digest) in [
        (KeyFormatType::PKCS_8, p256.serialize_der(), 256, "p256.pem", "-sha256"),
        (KeyFormatType::ECPRIVATEKEY, p384, 384, "p384.pem", "-sha384"),
    ] {
        let sha256 = <sha2::Sha256 as sha2::Digest>::digest(&material).to_vec();
        let id = register_key(&mut c, true, usage_mask::SIGN, key_block(format, material));
        c.ok(Operation::ACTIVATE, vec![uid(&id)]);
        // The Digest of what was registered, computed before the key went into the HSM.
        let got =
            c.ok(Operation::GET_ATTRIBUTES, vec![uid(&id), text(Tag::ATTRIBUTE_NAME, "Digest")]);
        let value = Attribute::from_v1(got.find(Tag::ATTRIBUTE).unwrap()).unwrap().value;
        let value = Ttlv::new(Tag::DIGEST, value);
        assert_eq!(
            value.find(Tag::DIGEST_VALUE).and_then(|v| v.as_bytes().ok()),
            Some(&sha256[..])
        );
        assert_eq!(
            value.find(Tag::KEY_FORMAT_TYPE).map(|v| &v.value),
            Some(&Value::Enumeration(format.0))
        );
        let item = c.call(Operation::GET, vec![uid(&id)]);
        assert_eq!(item.result_reason, Some(ResultReason::NOT_EXTRACTABLE), "{item:?}");
        let length = c.ok(
            Operation::GET_ATTRIBUTES,
            vec![uid(&id), text(Tag::ATTRIBUTE_NAME, "Cryptographic Length")],
        );
        let length = Attribute::from_v1(length.find(Tag::ATTRIBUTE).unwrap()).unwrap();
        assert_eq!(length.value, Value::Integer(bits));
        let signature = sign(&mut c, &id, &[], &data);
        let sig_path = dir.join(format!("ec-{bits}.sig"));
        std::fs::write(&sig_path, &signature).unwrap();
        let out = Command::new("openssl")
            .args(["dgst", digest, "-verify"])
            .arg(dir.join(public))
            .arg("-signature")
            .arg(&sig_path)
            .arg(dir.join("ec-msg.bin"))
            .output()
            .unwrap();
        assert!(out.status.success(), "P-{bits}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let refused = register_private_reason(
        &mut c,
        key_block(KeyFormatType::ECPRIVATEKEY, vec![0x30, 0x03, 2, 1, 1]),
    );
    assert_eq!(refused, Some(ResultReason::INVALID_FIELD));

    // A public key whose point is off its curve is no one's key: refused at Register (an
    // ECDH in the HSM with it would fail as if the device had).
    let mut spki = rcgen::PublicKeyData::subject_public_key_info(&p256);
    let last = spki.len() - 1;
    spki[last] ^= 1;
    let item = c.call(
        Operation::REGISTER,
        vec![
            enumeration(Tag::OBJECT_TYPE, kmip::enums::ObjectType::PUBLIC_KEY.0),
            Ttlv::structure(Tag::PUBLIC_KEY, vec![key_block(KeyFormatType::X_509, spki)]),
        ],
    );
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_FIELD), "{item:?}");
    server.stop();
}

/// The Link targets of `id`, by Link Type.
fn links_of(c: &mut Client, id: &str) -> Vec<(u32, String)> {
    let r = c.ok(Operation::GET_ATTRIBUTES, vec![uid(id), text(Tag::ATTRIBUTE_NAME, "Link")]);
    r.find_all(Tag::ATTRIBUTE)
        .filter_map(|a| match Attribute::from_v1(a).unwrap().value {
            Value::Structure(items) => {
                let t = items.iter().find(|i| i.tag == Tag::LINK_TYPE)?.as_enum().ok()?;
                let target = items.iter().find(|i| i.tag == Tag::LINKED_OBJECT_IDENTIFIER)?;
                Some((t, target.as_text().ok()?.to_owned()))
            }
            _ => None,
        })
        .collect()
}

/// Re-key Key Pair (KMIP 1.4 §4.5): a new pair of the same kind, generated in the HSM, that
/// takes over the old halves' names and attributes; old and new halves link both ways and
/// the new halves to each other; the new pair signs and verifies.
#[test]
fn rekey_key_pair_replaces_both_halves() {
    use kmip::enums::LinkType;
    let (_dir, server, _certs, mut c) = started("strongroom-rekey-pair", "alice");
    let (old_private, old_public) = create_pair(&mut c, CryptographicAlgorithm::EC, 384);
    let named = Attribute::new(names::NAME, name_value("release-signer"));
    c.ok(Operation::ADD_ATTRIBUTE, vec![uid(&old_private), named.to_v1()]);
    let r = c.ok(
        Operation::RE_KEY_KEY_PAIR,
        vec![
            Ttlv::new(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER, Value::TextString(old_private.clone())),
            Ttlv::new(Tag::OFFSET, Value::Interval(0)),
        ],
    );
    let text_of = |t| r.find(t).unwrap().as_text().unwrap().to_owned();
    let (private, public) =
        (text_of(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER), text_of(Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER));
    assert!(private != old_private && public != old_public);

    let has = |links: &[(u32, String)], t: LinkType, id: &str| {
        links.iter().any(|(lt, target)| *lt == t.0 && target == id)
    };
    let new_private_links = links_of(&mut c, &private);
    assert!(has(&new_private_links, LinkType::REPLACED_OBJECT_LINK, &old_private));
    assert!(has(&new_private_links, LinkType::PUBLIC_KEY_LINK, &public));
    let new_public_links = links_of(&mut c, &public);
    assert!(has(&new_public_links, LinkType::REPLACED_OBJECT_LINK, &old_public));
    assert!(has(&new_public_links, LinkType::PRIVATE_KEY_LINK, &private));
    assert!(has(&links_of(&mut c, &old_private), LinkType::REPLACEMENT_OBJECT_LINK, &private));
    assert!(has(&links_of(&mut c, &old_public), LinkType::REPLACEMENT_OBJECT_LINK, &public));

    // The name moved; the kind (P-384) and usage are the old pair's; Offset 0 activates now.
    let located = c.ok(Operation::LOCATE, vec![named.to_v1()]);
    let found: Vec<String> =
        located.find_all(Tag::UNIQUE_IDENTIFIER).map(|u| u.as_text().unwrap().to_owned()).collect();
    assert_eq!(found, vec![private.clone()]);
    let length = c.ok(
        Operation::GET_ATTRIBUTES,
        vec![uid(&private), text(Tag::ATTRIBUTE_NAME, "Cryptographic Length")],
    );
    assert_eq!(
        Attribute::from_v1(length.find(Tag::ATTRIBUTE).unwrap()).unwrap().value,
        Value::Integer(384)
    );
    let data = b"release 2.0".to_vec();
    let signature = sign(&mut c, &private, &[], &data);
    assert!(verify(&mut c, &public, &[], &data, &signature));
    assert!(!verify(&mut c, &old_public, &[], &data, &signature), "a different key");

    // The request names the private key: a public key is refused.
    let item = c.call(
        Operation::RE_KEY_KEY_PAIR,
        vec![Ttlv::new(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER, Value::TextString(public.clone()))],
    );
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_FIELD), "{item:?}");
    server.stop();
}

/// The Key Block of a transparent key: `fields` as Big Integers.
fn transparent(format: KeyFormatType, fields: &[(Tag, &[u8])]) -> Ttlv {
    let items = fields
        .iter()
        .map(|(tag, magnitude)| {
            // A zero byte keeps the top bit clear (Big Integers are two's complement).
            Ttlv::new(*tag, Value::BigInteger([&[0u8][..], magnitude].concat()))
        })
        .collect();
    transparent_block(format, items)
}

/// The Key Block of a transparent key whose Key Material structure holds `items`.
fn transparent_block(format: KeyFormatType, items: Vec<Ttlv>) -> Ttlv {
    Ttlv::structure(
        Tag::KEY_BLOCK,
        vec![
            enumeration(Tag::KEY_FORMAT_TYPE, format.0),
            Ttlv::structure(Tag::KEY_VALUE, vec![Ttlv::structure(Tag::KEY_MATERIAL, items)]),
        ],
    )
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().expect("openssl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Transparent RSA Public and Private Keys (KMIP 2.1 §3.7–3.8): an OpenSSL key registered
/// by its numbers comes back as the SubjectPublicKeyInfo OpenSSL encodes for it, and in its
/// transparent form by default; the private key signs in the HSM for OpenSSL to verify.
#[test]
fn transparent_rsa_keys_register_by_their_numbers() {
    let (dir, server, _certs, mut c) = started("strongroom-transparent-rsa", "alice");
    let pem = dir.join("rsa.pem");
    let pem = pem.to_str().unwrap();
    openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", pem]);
    let pkcs1 = openssl(&["rsa", "-in", pem, "-outform", "DER", "-traditional"]);
    let spki = openssl(&["rsa", "-in", pem, "-pubout", "-outform", "DER"]);
    let numbers = kmip::pkcs1::decode(&pkcs1, true).expect("OpenSSL's RSAPrivateKey");
    let private_fields: Vec<(Tag, &[u8])> = kmip::pkcs1::PRIVATE_FIELDS
        .iter()
        .copied()
        .zip(numbers.iter().map(Vec::as_slice))
        .collect();

    let public = register_key(
        &mut c,
        false,
        usage_mask::VERIFY,
        transparent(KeyFormatType::TRANSPARENT_RSA_PUBLIC_KEY, &private_fields[..2]),
    );
    assert_eq!(public_spki(&mut c, &public), spki, "OpenSSL's SubjectPublicKeyInfo");
    let r = c.ok(Operation::GET, vec![uid(&public)]);
    let block = r.find(Tag::PUBLIC_KEY).unwrap().find(Tag::KEY_BLOCK).unwrap();
    let format = block.find(Tag::KEY_FORMAT_TYPE).unwrap().as_enum().unwrap();
    assert_eq!(format, KeyFormatType::TRANSPARENT_RSA_PUBLIC_KEY.0, "the registered format");
    let material = block.find(Tag::KEY_VALUE).unwrap().find(Tag::KEY_MATERIAL).unwrap();
    let Value::BigInteger(modulus) = &material.find(Tag::MODULUS).unwrap().value else {
        panic!("no modulus")
    };
    assert_eq!(modulus.len() % 8, 0);
    assert_eq!(modulus.iter().skip_while(|b| **b == 0).copied().collect::<Vec<_>>(), numbers[0]);

    let private = register_key(
        &mut c,
        true,
        usage_mask::SIGN,
        transparent(KeyFormatType::TRANSPARENT_RSA_PRIVATE_KEY, &private_fields),
    );
    c.ok(Operation::ACTIVATE, vec![uid(&private)]);
    let data = b"signed by a key registered as numbers";
    let p = [params(vec![enumeration(Tag::PADDING_METHOD, PaddingMethod::PKCS1_V1_5.0)])];
    let signature = sign(&mut c, &private, &p, data);
    assert!(openssl_verifies(&dir, &spki, "-sha256", &[], data, &signature));

    // A private key missing its CRT fields is refused.
    let short = transparent(KeyFormatType::TRANSPARENT_RSA_PRIVATE_KEY, &private_fields[..3]);
    assert!(register_private_reason(&mut c, short).is_some());
    server.stop();
}

/// Transparent DSA Public Keys (KMIP 2.1 §3.6): an OpenSSL DSA key registered by its
/// numbers comes back as the SubjectPublicKeyInfo OpenSSL writes for it, and by its numbers
/// by default. DSA private keys are kept sealed and come back (the HSM binding has no DSA,
/// so they cannot be held in the HSM); DSA signatures are refused as not supported.
#[test]
fn dsa_public_keys_register_by_their_numbers() {
    let (dir, server, _certs, mut c) = started("strongroom-transparent-dsa", "alice");
    let params = dir.join("dsa-params.pem");
    let params = params.to_str().unwrap();
    let pem = dir.join("dsa.pem");
    let pem = pem.to_str().unwrap();
    openssl(&[
        "genpkey",
        "-genparam",
        "-algorithm",
        "DSA",
        "-pkeyopt",
        "dsa_paramgen_bits:2048",
        "-out",
        params,
    ]);
    openssl(&["genpkey", "-paramfile", params, "-out", pem]);
    let spki = openssl(&["pkey", "-in", pem, "-pubout", "-outform", "DER"]);
    let pkcs8 = openssl(&["pkcs8", "-topk8", "-nocrypt", "-in", pem, "-outform", "DER"]);
    let public_numbers = kmip::dsa::DsaKey::from_spki(&spki).expect("OpenSSL's DSA SPKI");
    let private_numbers = kmip::dsa::DsaKey::from_pkcs8(&pkcs8).expect("OpenSSL's DSA PKCS#8");
    let fields = |key: &kmip::dsa::DsaKey, value: Tag| {
        [
            (Tag::P, key.p.clone()),
            (Tag::Q, key.q.clone()),
            (Tag::G, key.g.clone()),
            (value, key.value.clone()),
        ]
    };
    let block = |format, fields: [(Tag, Vec<u8>); 4]| {
        let refs: Vec<(Tag, &[u8])> = fields.iter().map(|(t, v)| (*t, v.as_slice())).collect();
        transparent(format, &refs)
    };

    let public = register_key(
        &mut c,
        false,
        usage_mask::VERIFY,
        block(KeyFormatType::TRANSPARENT_DSA_PUBLIC_KEY, fields(&public_numbers, Tag::Y)),
    );
    assert_eq!(public_spki(&mut c, &public), spki, "OpenSSL's SubjectPublicKeyInfo");
    let r = c.ok(Operation::GET, vec![uid(&public)]);
    let block_out = r.find(Tag::PUBLIC_KEY).unwrap().find(Tag::KEY_BLOCK).unwrap();
    let format = block_out.find(Tag::KEY_FORMAT_TYPE).unwrap().as_enum().unwrap();
    assert_eq!(format, KeyFormatType::TRANSPARENT_DSA_PUBLIC_KEY.0, "the registered format");
    let material = block_out.find(Tag::KEY_VALUE).unwrap().find(Tag::KEY_MATERIAL).unwrap();
    let Value::BigInteger(y) = &material.find(Tag::Y).unwrap().value else { panic!("no Y") };
    assert_eq!(
        y.iter().skip_while(|b| **b == 0).copied().collect::<Vec<_>>(),
        public_numbers.value
    );
    let algorithm = block_out.find(Tag::CRYPTOGRAPHIC_ALGORITHM).unwrap().as_enum().unwrap();
    assert_eq!(algorithm, CryptographicAlgorithm::DSA.0);
    assert_eq!(block_out.find(Tag::CRYPTOGRAPHIC_LENGTH).unwrap().as_i32().unwrap(), 2048);

    // A DSA private key cannot go into the HSM (its binding has no DSA): it is kept sealed
    // and comes back, by its numbers (as registered) or as OpenSSL's PKCS#8, and marks itself
    // no longer Fresh; nothing signs or verifies with DSA.
    let private = register_key(
        &mut c,
        true,
        usage_mask::SIGN,
        block(KeyFormatType::TRANSPARENT_DSA_PRIVATE_KEY, fields(&private_numbers, Tag::X)),
    );
    let r = c.ok(Operation::GET, vec![uid(&private)]);
    let got = r.find(Tag::PRIVATE_KEY).unwrap().find(Tag::KEY_BLOCK).unwrap();
    let format = got.find(Tag::KEY_FORMAT_TYPE).unwrap().as_enum().unwrap();
    assert_eq!(format, KeyFormatType::TRANSPARENT_DSA_PRIVATE_KEY.0);
    let material = got.find(Tag::KEY_VALUE).unwrap().find(Tag::KEY_MATERIAL).unwrap();
    let Value::BigInteger(x) = &material.find(Tag::X).unwrap().value else { panic!("no X") };
    assert_eq!(
        x.iter().skip_while(|b| **b == 0).copied().collect::<Vec<_>>(),
        private_numbers.value
    );
    let r = c.ok(
        Operation::GET,
        vec![uid(&private), enumeration(Tag::KEY_FORMAT_TYPE, KeyFormatType::PKCS_8.0)],
    );
    assert_eq!(key_material(&r), pkcs8, "OpenSSL's PKCS#8");
    let r =
        c.ok(Operation::GET_ATTRIBUTES, vec![uid(&private), text(Tag::ATTRIBUTE_NAME, "Fresh")]);
    let fresh = r.find(Tag::ATTRIBUTE).unwrap().find(Tag::ATTRIBUTE_VALUE).unwrap();
    assert_eq!(fresh.value, Value::Boolean(false));
    // It says what it is (KMIP 2.x attributes): extractable, and not Sensitive.
    let version = std::mem::replace(&mut c.version, ProtocolVersion::V2_1);
    let all = c.ok(Operation::GET_ATTRIBUTES, vec![uid(&private)]);
    let all = all.find(Tag::ATTRIBUTES).unwrap();
    for (tag, want) in
        [(Tag::SENSITIVE, false), (Tag::EXTRACTABLE, true), (Tag::NEVER_EXTRACTABLE, false)]
    {
        assert_eq!(all.find(tag).map(|t| &t.value), Some(&Value::Boolean(want)), "{tag:?}");
    }
    c.version = version;
    c.ok(Operation::ACTIVATE, vec![uid(&private)]);
    let item = c.call(
        Operation::SIGN,
        vec![uid(&private), Ttlv::new(Tag::DATA, Value::ByteString(b"data".to_vec()))],
    );
    assert_eq!(item.result_reason, Some(ResultReason::FEATURE_NOT_SUPPORTED), "{item:?}");
    c.ok(Operation::ACTIVATE, vec![uid(&public)]);
    let item = c.call(
        Operation::SIGNATURE_VERIFY,
        vec![
            uid(&public),
            Ttlv::new(Tag::DATA, Value::ByteString(b"data".to_vec())),
            Ttlv::new(Tag::SIGNATURE_DATA, Value::ByteString(vec![0; 64])),
        ],
    );
    assert_eq!(item.result_reason, Some(ResultReason::FEATURE_NOT_SUPPORTED), "{item:?}");
    server.stop();
}

/// The point (`pub:`) and NIST curve name OpenSSL prints for an EC SubjectPublicKeyInfo.
fn openssl_ec_point(dir: &std::path::Path, spki: &[u8]) -> (Vec<u8>, String) {
    let path = dir.join("ec-spki.der");
    std::fs::write(&path, spki).unwrap();
    let out = openssl(&[
        "ec",
        "-pubin",
        "-inform",
        "DER",
        "-in",
        path.to_str().unwrap(),
        "-text",
        "-noout",
    ]);
    let text = String::from_utf8(out).unwrap();
    let curve = text.lines().find_map(|l| l.trim().strip_prefix("NIST CURVE: ")).unwrap();
    (hex_field(&text, "pub:"), curve.to_owned())
}

/// The bytes OpenSSL's `-text` output lists, colon-separated, under `label`.
fn hex_field(text: &str, label: &str) -> Vec<u8> {
    let hex: String = text
        .split(label)
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .flat_map(|l| l.trim().split(':').filter(|b| !b.is_empty()).map(str::to_owned))
        .collect();
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

/// Transparent EC keys (KMIP 2.1 §3.11–3.12; 1.x's Transparent ECDSA keys have the same
/// fields): a key pair made in the HSM gives its public key as Recommended Curve and Q
/// String equal to what OpenSSL reads from its SubjectPublicKeyInfo; a key registered by
/// curve and point comes back as the SubjectPublicKeyInfo OpenSSL writes for it, and one
/// registered by curve and D signs in the HSM for OpenSSL to verify.
#[test]
fn transparent_ec_keys() {
    use kmip::enums::RecommendedCurve;
    let (dir, server, _certs, mut c) = started("strongroom-transparent-ec", "alice");
    let (_, public) = create_pair(&mut c, CryptographicAlgorithm::EC, 384);
    let spki = public_spki(&mut c, &public);
    let (point, curve) = openssl_ec_point(&dir, &spki);
    assert_eq!(curve, "P-384");
    let r = c.ok(
        Operation::GET,
        vec![
            uid(&public),
            enumeration(Tag::KEY_FORMAT_TYPE, KeyFormatType::TRANSPARENT_EC_PUBLIC_KEY.0),
        ],
    );
    let block = r.find(Tag::PUBLIC_KEY).unwrap().find(Tag::KEY_BLOCK).unwrap();
    let material = block.find(Tag::KEY_VALUE).unwrap().find(Tag::KEY_MATERIAL).unwrap();
    assert_eq!(
        material.find(Tag::RECOMMENDED_CURVE).unwrap().as_enum().unwrap(),
        RecommendedCurve::P_384.0
    );
    assert_eq!(material.find(Tag::Q_STRING).unwrap().as_bytes().unwrap(), point);

    let pem = dir.join("ec.pem");
    let pem = pem.to_str().unwrap();
    openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", pem]);
    let theirs = openssl(&["pkey", "-in", pem, "-pubout", "-outform", "DER"]);
    let (q, _) = openssl_ec_point(&dir, &theirs);
    for format in
        [KeyFormatType::TRANSPARENT_EC_PUBLIC_KEY, KeyFormatType::TRANSPARENT_ECDSA_PUBLIC_KEY]
    {
        let block = transparent_block(
            format,
            vec![
                enumeration(Tag::RECOMMENDED_CURVE, RecommendedCurve::P_256.0),
                Ttlv::new(Tag::Q_STRING, Value::ByteString(q.clone())),
            ],
        );
        let id = register_key(&mut c, false, usage_mask::VERIFY, block);
        assert_eq!(public_spki(&mut c, &id), theirs, "OpenSSL's SubjectPublicKeyInfo");
    }
    // The private key by curve and D goes into the HSM and signs there.
    let text = String::from_utf8(openssl(&["ec", "-in", pem, "-text", "-noout"])).unwrap();
    let d = hex_field(&text, "priv:");
    let block = transparent_block(
        KeyFormatType::TRANSPARENT_EC_PRIVATE_KEY,
        vec![
            enumeration(Tag::RECOMMENDED_CURVE, RecommendedCurve::P_256.0),
            Ttlv::new(Tag::D, Value::BigInteger([&[0u8; 8][..], &d].concat())),
        ],
    );
    let private = register_key(&mut c, true, usage_mask::SIGN, block);
    c.ok(Operation::ACTIVATE, vec![uid(&private)]);
    let data = b"signed by a key registered by its curve and scalar";
    let signature = sign(&mut c, &private, &[], data);
    assert!(openssl_verifies(&dir, &theirs, "-sha256", &[], data, &signature));

    // A curve this server does not map is refused as such.
    let block = transparent_block(
        KeyFormatType::TRANSPARENT_EC_PUBLIC_KEY,
        vec![
            enumeration(Tag::RECOMMENDED_CURVE, RecommendedCurve::K_163.0),
            Ttlv::new(Tag::Q_STRING, Value::ByteString(q)),
        ],
    );
    let item = c.call(
        Operation::REGISTER,
        vec![
            enumeration(Tag::OBJECT_TYPE, kmip::enums::ObjectType::PUBLIC_KEY.0),
            Ttlv::structure(Tag::PUBLIC_KEY, vec![block]),
        ],
    );
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_FIELD), "{item:?}");
    server.stop();
}

/// Derive Key by Asymmetric Key agreement (KMIP 2.1 §11.14): ECDH in the HSM between a
/// server-made P-256 private key and a public key OpenSSL made, equal to what OpenSSL
/// agrees from the other side; with a Hashing Algorithm, the ANSI X9.63 KDF over it
/// (checked with Python's `cryptography`).
#[test]
fn ecdh_key_agreement_matches_openssl() {
    use kmip::enums::{DerivationMethod, ObjectType};
    let (dir, server, _certs, mut c) = started("strongroom-ecdh", "alice");
    c.version = ProtocolVersion::V2_1;
    let (private, public) = create_pair_for(
        &mut c,
        CryptographicAlgorithm::EC,
        256,
        usage_mask::DERIVE_KEY,
        usage_mask::VERIFY,
    );
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &path("peer.pem")]);
    openssl(&[
        "ec",
        "-in",
        &path("peer.pem"),
        "-pubout",
        "-outform",
        "DER",
        "-out",
        &path("peer.der"),
    ]);
    let peer = std::fs::read(dir.join("peer.der")).unwrap();
    let peer =
        register_key(&mut c, false, usage_mask::VERIFY, key_block(KeyFormatType::X_509, peer));
    std::fs::write(dir.join("ours.der"), public_spki(&mut c, &public)).unwrap();
    let z = openssl(&[
        "pkeyutl",
        "-derive",
        "-inkey",
        &path("peer.pem"),
        "-peerkey",
        &path("ours.der"),
        "-peerform",
        "DER",
    ]);
    assert_eq!(z.len(), 32);

    let secret_data = |bits: i32| {
        write_attributes(
            &[Attribute::new(names::CRYPTOGRAPHIC_LENGTH, Value::Integer(bits))],
            ProtocolVersion::V2_1,
        )
    };
    let derive = |c: &mut Client, bases: &[&str], params: Vec<Ttlv>, bits: i32| {
        let mut p = vec![enumeration(Tag::OBJECT_TYPE, ObjectType::SECRET_DATA.0)];
        p.extend(bases.iter().map(|b| uid(b)));
        p.push(enumeration(Tag::DERIVATION_METHOD, DerivationMethod::ASYMMETRIC_KEY.0));
        p.push(Ttlv::structure(Tag::DERIVATION_PARAMETERS, params));
        p.extend(secret_data(bits));
        c.call(Operation::DERIVE_KEY, p)
    };
    let value = |c: &mut Client, item: kmip::message::ResponseBatchItem| {
        assert_eq!(item.result_status, kmip::enums::ResultStatus::SUCCESS, "{item:?}");
        key_material(&c.ok(Operation::GET, vec![uid(&uid_of(&item.payload.unwrap()))]))
    };
    let item = derive(&mut c, &[&private, &peer], vec![], 256);
    assert_eq!(value(&mut c, item), z, "the shared secret");

    // X9.63 KDF with SHA-256 and the Derivation Data as SharedInfo, 64 bytes.
    let sha256 = params(vec![enumeration(Tag::HASHING_ALGORITHM, HashingAlgorithm::SHA_256.0)]);
    let info = Ttlv::new(Tag::DERIVATION_DATA, Value::ByteString(b"strongroom ecdh".to_vec()));
    let item = derive(&mut c, &[&private, &peer], vec![sha256, info], 512);
    let got = value(&mut c, item);
    let script = format!(
        "from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF\n\
         from cryptography.hazmat.primitives import hashes\n\
         print(X963KDF(algorithm=hashes.SHA256(), length=64, sharedinfo=b'strongroom ecdh')\
         .derive(bytes.fromhex('{}')).hex())",
        hex::encode(&z)
    );
    let out = Command::new("python3").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(hex::encode(got), String::from_utf8(out.stdout).unwrap().trim());

    // Refused: longer than Z without a KDF, the wrong order, a key without Derive Key.
    let item = derive(&mut c, &[&private, &peer], vec![], 512);
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_FIELD), "{item:?}");
    let item = derive(&mut c, &[&peer, &private], vec![], 256);
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_FIELD), "{item:?}");
    let (signer, _) = create_pair(&mut c, CryptographicAlgorithm::EC, 256);
    let item = derive(&mut c, &[&signer, &peer], vec![], 256);
    assert_eq!(item.result_reason, Some(ResultReason::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK));
    server.stop();
}

/// Multi-part Sign and Signature Verify (KMIP 2.1 §6.1.51–52): the data arrives in parts
/// and is digested in the HSM; the signature verifies single-part, with OpenSSL, and in
/// parts, and a changed one does not.
#[test]
fn multi_part_signatures() {
    let (dir, server, _certs, mut c) = started("strongroom-sign-parts", "alice");
    c.version = ProtocolVersion::V2_1;
    let (private, public) = create_pair(&mut c, CryptographicAlgorithm::EC, 256);
    let message: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
    let flag = |tag, v| Ttlv::new(tag, Value::Boolean(v));
    let bytes = |tag, b: &[u8]| Ttlv::new(tag, Value::ByteString(b.to_vec()));
    let in_parts = |c: &mut Client, op: Operation, id: &str, last_extra: Vec<Ttlv>| {
        let first =
            vec![uid(id), bytes(Tag::DATA, &message[..100]), flag(Tag::INIT_INDICATOR, true)];
        let r = c.ok(op, first);
        let corr = r.find(Tag::CORRELATION_VALUE).unwrap().as_bytes().unwrap().to_vec();
        c.ok(
            op,
            vec![
                uid(id),
                bytes(Tag::DATA, &message[100..250]),
                bytes(Tag::CORRELATION_VALUE, &corr),
            ],
        );
        let mut last = vec![
            uid(id),
            bytes(Tag::DATA, &message[250..]),
            bytes(Tag::CORRELATION_VALUE, &corr),
            flag(Tag::FINAL_INDICATOR, true),
        ];
        last.extend(last_extra);
        c.ok(op, last)
    };
    let r = in_parts(&mut c, Operation::SIGN, &private, vec![]);
    let signature = r.find(Tag::SIGNATURE_DATA).unwrap().as_bytes().unwrap().to_vec();
    assert!(verify(&mut c, &public, &[], &message, &signature), "single-part verify");
    std::fs::write(dir.join("pub.der"), public_spki(&mut c, &public)).unwrap();
    std::fs::write(dir.join("msg.bin"), &message).unwrap();
    std::fs::write(dir.join("sig.der"), &signature).unwrap();
    let path = |n: &str| dir.join(n).to_str().unwrap().to_owned();
    openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        &path("pub.der"),
        "-keyform",
        "DER",
        "-signature",
        &path("sig.der"),
        &path("msg.bin"),
    ]);
    let valid = |r: &Ttlv| r.find(Tag::VALIDITY_INDICATOR).unwrap().value.clone();
    let r = in_parts(
        &mut c,
        Operation::SIGNATURE_VERIFY,
        &public,
        vec![bytes(Tag::SIGNATURE_DATA, &signature)],
    );
    assert_eq!(valid(&r), Value::Enumeration(ValidityIndicator::VALID.0));
    let mut bad = signature.clone();
    let n = bad.len() - 1;
    bad[n] ^= 1;
    let r = in_parts(
        &mut c,
        Operation::SIGNATURE_VERIFY,
        &public,
        vec![bytes(Tag::SIGNATURE_DATA, &bad)],
    );
    assert_eq!(valid(&r), Value::Enumeration(ValidityIndicator::INVALID.0));
    // Digested Data cannot come in parts.
    let item = c.call(
        Operation::SIGN,
        vec![uid(&private), bytes(Tag::DIGESTED_DATA, &[1; 32]), flag(Tag::INIT_INDICATOR, true)],
    );
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_FIELD), "{item:?}");
    server.stop();
}

/// A public key the client marks Sensitive (KMIP 2.1 §4.55) does not leave, even when asked
/// for wrapped: public keys are never wrapped here.
#[test]
fn sensitive_public_keys_stay() {
    let (_dir, server, _certs, mut c) = started("strongroom-sensitive-public", "alice");
    c.version = ProtocolVersion::V2_1;
    let (_, public) = create_pair(&mut c, CryptographicAlgorithm::EC, 256);
    let mut attrs = aes_attributes(256);
    attrs[2] =
        Attribute::new(names::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(usage_mask::WRAP_KEY));
    let kek = uid_of(&c.ok(Operation::CREATE, create_payload(c.version, &attrs)));
    c.ok(Operation::ACTIVATE, vec![uid(&kek)]);
    let sensitive = Ttlv::new(Tag::SENSITIVE, Value::Boolean(true));
    c.ok(
        Operation::SET_ATTRIBUTE,
        vec![uid(&public), Ttlv::structure(Tag::NEW_ATTRIBUTE, vec![sensitive])],
    );
    let wrapping = Ttlv::structure(
        Tag::KEY_WRAPPING_SPECIFICATION,
        vec![
            enumeration(Tag::WRAPPING_METHOD, kmip::enums::WrappingMethod::ENCRYPT.0),
            Ttlv::structure(Tag::ENCRYPTION_KEY_INFORMATION, vec![uid(&kek)]),
        ],
    );
    for request in [vec![uid(&public)], vec![uid(&public), wrapping]] {
        let item = c.call(Operation::GET, request);
        assert_eq!(item.result_reason, Some(ResultReason::SENSITIVE), "{item:?}");
    }
    server.stop();
}

/// Wrapping Method Encrypt with `kek` and RSA-OAEP `params` (a Key Wrapping Specification
/// or, with `tag` Key Wrapping Data, the same fields), No Encoding.
fn oaep_wrapping(tag: Tag, kek: &str, params: Vec<Ttlv>) -> Ttlv {
    let mut p = vec![enumeration(Tag::PADDING_METHOD, PaddingMethod::OAEP.0)];
    p.extend(params);
    Ttlv::structure(
        tag,
        vec![
            enumeration(Tag::WRAPPING_METHOD, kmip::enums::WrappingMethod::ENCRYPT.0),
            Ttlv::structure(
                Tag::ENCRYPTION_KEY_INFORMATION,
                vec![uid(kek), Ttlv::structure(Tag::CRYPTOGRAPHIC_PARAMETERS, p)],
            ),
            enumeration(Tag::ENCODING_OPTION, kmip::enums::EncodingOption::NO_ENCODING.0),
        ],
    )
}

/// Bring your own key, both ways, with RSA-OAEP key wrapping (KMIP 1.4 §2.1.5–6): Get
/// returns an AES key wrapped by a registered RSA public key, which OpenSSL unwraps with
/// the private key it holds; Register takes an AES key OpenSSL wrapped with the public
/// half of a key pair made in the HSM and unwraps it there (SHA-256, and SHA-1 by default).
#[test]
fn rsa_oaep_key_wrapping_both_ways() {
    let (dir, server, _certs, mut c) = started("strongroom-rsa-wrap", "alice");
    let sha256 = || {
        vec![
            enumeration(Tag::HASHING_ALGORITHM, HashingAlgorithm::SHA_256.0),
            enumeration(Tag::MASK_GENERATOR_HASHING_ALGORITHM, HashingAlgorithm::SHA_256.0),
        ]
    };
    let pem = dir.join("theirs.pem");
    let pem = pem.to_str().unwrap();
    openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", pem]);
    let spki = openssl(&["pkey", "-in", pem, "-pubout", "-outform", "DER"]);
    let theirs = register_key(
        &mut c,
        false,
        usage_mask::WRAP_KEY,
        key_block(KeyFormatType::X_509, spki.clone()),
    );
    c.ok(Operation::ACTIVATE, vec![uid(&theirs)]);
    let aes = uid_of(&c.ok(Operation::CREATE, create_payload(c.version, &aes_attributes(256))));
    let key = key_material(&c.ok(Operation::GET, vec![uid(&aes)]));
    let r = c.ok(
        Operation::GET,
        vec![uid(&aes), oaep_wrapping(Tag::KEY_WRAPPING_SPECIFICATION, &theirs, sha256())],
    );
    let block = r.find(Tag::SYMMETRIC_KEY).unwrap().find(Tag::KEY_BLOCK).unwrap();
    let data = block.find(Tag::KEY_WRAPPING_DATA).unwrap();
    let params = data.find(Tag::ENCRYPTION_KEY_INFORMATION).unwrap();
    let params = params.find(Tag::CRYPTOGRAPHIC_PARAMETERS).unwrap();
    assert_eq!(
        params.find(Tag::HASHING_ALGORITHM).unwrap().as_enum().unwrap(),
        HashingAlgorithm::SHA_256.0
    );
    let value = block.find(Tag::KEY_VALUE).unwrap();
    let wrapped = value.find(Tag::KEY_MATERIAL).unwrap_or(value).as_bytes().unwrap();
    assert_eq!(wrapped.len(), 256);
    let path = dir.join("wrapped.bin");
    std::fs::write(&path, wrapped).unwrap();
    let unwrapped = openssl(&[
        "pkeyutl",
        "-decrypt",
        "-inkey",
        pem,
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha256",
        "-pkeyopt",
        "rsa_mgf1_md:sha256",
        "-in",
        path.to_str().unwrap(),
    ]);
    assert_eq!(unwrapped, key, "OpenSSL unwraps the key Get wrapped");

    // The other way: a key pair in the HSM, OpenSSL wraps a key for it.
    let (private, public) = create_pair_for(
        &mut c,
        CryptographicAlgorithm::RSA,
        2048,
        usage_mask::UNWRAP_KEY,
        usage_mask::WRAP_KEY,
    );
    let ours = dir.join("ours.der");
    std::fs::write(&ours, public_spki(&mut c, &public)).unwrap();
    let ours = ours.to_str().unwrap();
    let plain = dir.join("plain.bin");
    for (params, md) in [(sha256(), "sha256"), (vec![], "sha1")] {
        let key = vec![md.len() as u8; 32];
        std::fs::write(&plain, &key).unwrap();
        let wrapped = openssl(&[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-keyform",
            "DER",
            "-inkey",
            ours,
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            &format!("rsa_oaep_md:{md}"),
            "-pkeyopt",
            &format!("rsa_mgf1_md:{md}"),
            "-in",
            plain.to_str().unwrap(),
        ]);
        let block = Ttlv::structure(
            Tag::KEY_BLOCK,
            vec![
                enumeration(Tag::KEY_FORMAT_TYPE, KeyFormatType::RAW.0),
                Ttlv::structure(
                    Tag::KEY_VALUE,
                    vec![Ttlv::new(Tag::KEY_MATERIAL, Value::ByteString(wrapped.clone()))],
                ),
                enumeration(Tag::CRYPTOGRAPHIC_ALGORITHM, CryptographicAlgorithm::AES.0),
                Ttlv::new(Tag::CRYPTOGRAPHIC_LENGTH, Value::Integer(256)),
                oaep_wrapping(Tag::KEY_WRAPPING_DATA, &private, params.clone()),
            ],
        );
        let register = |c: &mut Client, block: Ttlv| {
            c.call(
                Operation::REGISTER,
                vec![
                    enumeration(Tag::OBJECT_TYPE, kmip::enums::ObjectType::SYMMETRIC_KEY.0),
                    Ttlv::structure(Tag::TEMPLATE_ATTRIBUTE, vec![]),
                    Ttlv::structure(Tag::SYMMETRIC_KEY, vec![block]),
                ],
            )
        };
        let item = register(&mut c, block.clone());
        let id = uid_of(item.payload.as_ref().unwrap_or_else(|| panic!("{item:?}")));
        assert_eq!(key_material(&c.ok(Operation::GET, vec![uid(&id)])), key, "{md}");
        // Other bytes do not unwrap: a cryptographic failure, nothing stored.
        let mut bad = block;
        if let Value::Structure(items) = &mut bad.value {
            items[1] = Ttlv::structure(
                Tag::KEY_VALUE,
                vec![Ttlv::new(Tag::KEY_MATERIAL, Value::ByteString(vec![1; wrapped.len()]))],
            );
        }
        let item = register(&mut c, bad);
        assert_eq!(item.result_reason, Some(ResultReason::CRYPTOGRAPHIC_FAILURE), "{item:?}");
    }
    // A public key does not unwrap, a private key does not wrap.
    let item = c.call(
        Operation::GET,
        vec![uid(&aes), oaep_wrapping(Tag::KEY_WRAPPING_SPECIFICATION, &private, vec![])],
    );
    assert_eq!(item.result_reason, Some(ResultReason::INVALID_FIELD), "{item:?}");
    server.stop();
}

/// Automatic rotation of a key pair (KMIP 2.1 §4.48–4.54): a private key with Rotate
/// Automatic and a Rotate Interval is re-keyed as a pair by the server once the interval
/// has passed; the new private key takes the Name, counts Rotate Generation 1, has a new
/// public half, and signs in the HSM for OpenSSL to verify with that public key.
#[test]
fn key_pairs_rotate_automatically() {
    let (dir, server, _certs, mut c) = started("strongroom-pair-rotation", "alice");
    c.version = ProtocolVersion::V2_1;
    let rotation = [
        Attribute::new(names::ROTATE_AUTOMATIC, Value::Boolean(true)),
        Attribute::new(names::ROTATE_INTERVAL, Value::Interval(2)),
        Attribute::new(names::NAME, name_value("rotating-pair")),
    ];
    let (old, _) = create_pair_with(
        &mut c,
        CryptographicAlgorithm::EC,
        256,
        usage_mask::SIGN,
        usage_mask::VERIFY,
        &rotation,
    );
    let new = rotated(&mut c, "rotating-pair", &old);
    let attrs = c.ok(Operation::GET_ATTRIBUTES, vec![uid(&new)]);
    let attrs = attrs.find(Tag::ATTRIBUTES).unwrap();
    assert_eq!(attrs.find(Tag::ROTATE_GENERATION).unwrap().value, Value::Integer(1));
    let public = attrs
        .find_all(Tag::LINK)
        .find(|l| {
            l.find(Tag::LINK_TYPE).unwrap().as_enum().unwrap()
                == kmip::enums::LinkType::PUBLIC_KEY_LINK.0
        })
        .and_then(|l| l.find(Tag::LINKED_OBJECT_IDENTIFIER))
        .unwrap()
        .as_text()
        .unwrap()
        .to_owned();
    let spki = public_spki(&mut c, &public);
    let data = b"signed after an automatic rotation";
    let signature = sign(&mut c, &new, &[], data);
    assert!(openssl_verifies(&dir, &spki, "-sha256", &[], data, &signature));
    server.stop();
}

/// Re-certify (KMIP 1.4 §4.8): a new certificate from the HSM CA for the same key, which
/// takes over the old one's Name; the two link to each other and the public key's
/// Certificate Link moves to the new one. With Rotate Automatic and a Rotate Interval
/// (KMIP 2.1), the server re-certifies on its own.
#[test]
fn recertify_renews_for_the_same_key() {
    let (dir, server, _certs, mut c) = started("strongroom-recertify", "alice");
    let (_, public) = create_pair(&mut c, CryptographicAlgorithm::EC, 256);
    let name = Attribute::new(names::NAME, name_value("web-signer"));
    c.ok(Operation::ADD_ATTRIBUTE, vec![uid(&public), name.to_v1()]);
    let first = uid_of(&c.ok(Operation::CERTIFY, vec![uid(&public)]));
    let cert_name = Attribute::new(names::NAME, name_value("web-cert"));
    c.ok(Operation::ADD_ATTRIBUTE, vec![uid(&first), cert_name.to_v1()]);
    c.ok(Operation::ACTIVATE, vec![uid(&first)]);

    let second = uid_of(&c.ok(Operation::RE_CERTIFY, vec![uid(&first)]));
    let (old_der, new_der) = (certificate_der(&mut c, &first), certificate_der(&mut c, &second));
    let (_, old_cert) = x509_parser::parse_x509_certificate(&old_der).unwrap();
    let (_, new_cert) = x509_parser::parse_x509_certificate(&new_der).unwrap();
    assert_eq!(new_cert.public_key().raw, old_cert.public_key().raw, "the same key");
    assert_eq!(new_cert.subject().to_string(), "CN=web-signer");
    assert_ne!(new_cert.raw_serial(), old_cert.raw_serial());
    assert_chains_to_root(&dir, &server, &new_der);

    use kmip::enums::LinkType;
    let links_of_type = |c: &mut Client, id: &str, t: LinkType| -> Vec<String> {
        links_of(c, id).into_iter().filter(|(k, _)| *k == t.0).map(|(_, id)| id).collect()
    };
    assert_eq!(
        links_of_type(&mut c, &first, LinkType::REPLACEMENT_OBJECT_LINK),
        vec![second.clone()]
    );
    assert_eq!(links_of_type(&mut c, &second, LinkType::REPLACED_OBJECT_LINK), vec![first.clone()]);
    assert_eq!(links_of_type(&mut c, &second, LinkType::PUBLIC_KEY_LINK), vec![public.clone()]);
    assert_eq!(links_of_type(&mut c, &public, LinkType::CERTIFICATE_LINK), vec![second.clone()]);
    let located = uid_of(&c.ok(Operation::LOCATE, vec![cert_name.to_v1()]));
    assert_eq!(located, second, "the Name moved to the new certificate");

    // Automatic: the server re-certifies once the Rotate Interval has passed.
    c.version = ProtocolVersion::V2_1;
    for a in [
        Ttlv::new(Tag::ROTATE_INTERVAL, Value::Interval(2)),
        Ttlv::new(Tag::ROTATE_AUTOMATIC, Value::Boolean(true)),
    ] {
        c.ok(
            Operation::SET_ATTRIBUTE,
            vec![uid(&second), Ttlv::structure(Tag::NEW_ATTRIBUTE, vec![a])],
        );
    }
    // (Active already: the Activation Date was copied from the first certificate.)
    let third = rotated(&mut c, "web-cert", &second);
    let a = c.ok(Operation::GET_ATTRIBUTES, vec![uid(&third)]);
    let a = a.find(Tag::ATTRIBUTES).unwrap();
    assert_eq!(a.find(Tag::ROTATE_GENERATION).unwrap().value, Value::Integer(1));
    let third_der = certificate_der(&mut c, &third);
    let (_, third_cert) = x509_parser::parse_x509_certificate(&third_der).unwrap();
    assert_eq!(third_cert.public_key().raw, old_cert.public_key().raw);

    // With a PKCS#10 request the new certificate is for the request's key: the managed
    // public key keeps its link to the certificate it has.
    let key = dir.join("other.pem");
    let key = key.to_str().unwrap();
    openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key]);
    let csr = openssl(&["req", "-new", "-key", key, "-subj", "/CN=other", "-outform", "DER"]);
    let theirs = openssl(&["pkey", "-in", key, "-pubout", "-outform", "DER"]);
    let fourth = uid_of(&c.ok(
        Operation::RE_CERTIFY,
        vec![
            uid(&third),
            enumeration(
                Tag::CERTIFICATE_REQUEST_TYPE,
                kmip::enums::CertificateRequestType::PKCS_10.0,
            ),
            Ttlv::new(Tag::CERTIFICATE_REQUEST_VALUE, Value::ByteString(csr)),
        ],
    ));
    let fourth_der = certificate_der(&mut c, &fourth);
    let (_, fourth_cert) = x509_parser::parse_x509_certificate(&fourth_der).unwrap();
    assert_eq!(fourth_cert.public_key().raw, theirs.as_slice());
    assert_eq!(fourth_cert.subject().to_string(), "CN=other");
    c.version = ProtocolVersion::V1_4;
    assert!(links_of_type(&mut c, &fourth, LinkType::PUBLIC_KEY_LINK).is_empty());
    assert_eq!(links_of_type(&mut c, &public, LinkType::CERTIFICATE_LINK), vec![third]);
    server.stop();
}
