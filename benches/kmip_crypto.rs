//! KMIP Sign (ECDSA P-256 over 32 bytes) and Encrypt (AES-256-GCM over 1 KiB) through
//! Strongroom, beside the same operations as raw PKCS#11 calls into SoftHSM in this process
//! (C_Sign with CKM_ECDSA, C_Encrypt with CKM_AES_GCM), measured in the same run. The ratio
//! shows what the protocol, TLS, store and service add to the HSM's own cost; a second cell
//! for each sends the operations 32 to a request message (KMIP batch items).
//!
//! `cargo bench --bench kmip_crypto` (5 s a cell; `LOAD_SECS` to change); under
//! `cargo test` it makes a short smoke run.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use kmip::attributes::{names, write_attributes, Attribute as KAttr};
use kmip::enums::{BlockCipherMode, Operation, ResultStatus};
use kmip::{ProtocolVersion, Tag, Ttlv, Value};

const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Batch items per request message in the batched cells.
const BATCH: usize = 32;

/// Runs `op` on `threads` threads until `secs` pass; returns operations per second.
fn rate(threads: usize, secs: f64, op: impl Fn() -> Box<dyn FnMut() + Send> + Sync) -> f64 {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let total: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let mut f = op();
                s.spawn(move || {
                    let mut n = 0;
                    while Instant::now() < deadline {
                        f();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

fn raw_softhsm(dir: &std::path::Path, threads: &[usize], secs: f64) -> Vec<(f64, f64)> {
    let ctx = Pkcs11::new(SOFTHSM).expect("SoftHSM (apt-get install softhsm2)");
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).unwrap();
    let slot = ctx.get_slots_with_token().unwrap()[0];
    let so = AuthPin::from("87654321".to_owned());
    let pin = AuthPin::from("12345678".to_owned());
    ctx.init_token(slot, &so, "raw-bench").unwrap();
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).map(|i| i.label().trim() == "raw-bench").unwrap_or(false))
        .unwrap();
    let admin = ctx.open_rw_session(slot).unwrap();
    admin.login(UserType::So, Some(&so)).unwrap();
    admin.init_pin(&pin).unwrap();
    admin.logout().unwrap();
    admin.login(UserType::User, Some(&pin)).unwrap();
    let (_, ec) = admin
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(false),
                Attribute::Verify(true),
                Attribute::EcParams(vec![
                    0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07,
                ]),
            ],
            &[Attribute::Token(false), Attribute::Sign(true), Attribute::Sensitive(true)],
        )
        .unwrap();
    let aes = admin
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Token(false),
                Attribute::Encrypt(true),
            ],
        )
        .unwrap();
    let _ = dir;
    threads
        .iter()
        .map(|&t| {
            let sign = rate(t, secs, || {
                let s = ctx.open_rw_session(slot).unwrap();
                Box::new(move || {
                    s.sign(&Mechanism::Ecdsa, ec, &[7u8; 32]).unwrap();
                })
            });
            let encrypt = rate(t, secs, || {
                let s = ctx.open_rw_session(slot).unwrap();
                Box::new(move || {
                    let mut iv = [1u8; 12];
                    let params = GcmParams::new(&mut iv, &[], 128.into()).unwrap();
                    s.encrypt(&Mechanism::AesGcm(params), aes, &[0u8; 1024]).unwrap();
                })
            });
            (sign, encrypt)
        })
        .collect()
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let secs: f64 = if bench {
        std::env::var("LOAD_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5.0)
    } else {
        0.2
    };
    let threads: &[usize] = if bench { &[1, 2] } else { &[1] };
    let dir = temp_dir("strongroom-crypto-bench");
    let tokens = dir.join("raw-tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    std::fs::write(
        dir.join("softhsm2.conf"),
        format!("directories.tokendir = {}\n", tokens.display()),
    )
    .unwrap();
    // Before any thread starts; the server child process sets its own.
    std::env::set_var("SOFTHSM2_CONF", dir.join("softhsm2.conf"));

    let data_dir = dir.join("server");
    let server = Server::start_env(&data_dir, &[], &[]);
    let certs = client_cert(&data_dir, "bench");
    let tls = tls_config(&certs, Some("bench"));
    let mut c = Client::connect_with(server.kmip, tls.clone());
    c.version = ProtocolVersion::V2_1;
    let common = [
        KAttr::new(
            names::CRYPTOGRAPHIC_ALGORITHM,
            Value::Enumeration(kmip::enums::CryptographicAlgorithm::EC.0),
        ),
        KAttr::new(names::CRYPTOGRAPHIC_LENGTH, Value::Integer(256)),
        KAttr::new(names::ACTIVATION_DATE, Value::DateTime(1)),
    ];
    let pair = c.ok(
        Operation::CREATE_KEY_PAIR,
        vec![Ttlv::structure(
            Tag::COMMON_ATTRIBUTES,
            write_attributes(&common, c.version).remove(0).children().to_vec(),
        )],
    );
    let signer =
        pair.find(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER).unwrap().as_text().unwrap().to_owned();
    let mut aes_attrs = aes_attributes(256);
    aes_attrs.push(KAttr::new(names::ACTIVATION_DATE, Value::DateTime(1)));
    let aes = uid_of(&c.ok(Operation::CREATE, create_payload(c.version, &aes_attrs)));
    let gcm = Ttlv::structure(
        Tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![enumeration(Tag::BLOCK_CIPHER_MODE, BlockCipherMode::GCM.0)],
    );
    let sign_payload =
        vec![uid(&signer), Ttlv::new(Tag::DIGESTED_DATA, Value::ByteString(vec![7; 32]))];
    let encrypt_payload =
        vec![uid(&aes), gcm, Ttlv::new(Tag::DATA, Value::ByteString(vec![0; 1024]))];

    let kmip_rates: Vec<(f64, f64, f64, f64)> = threads
        .iter()
        .map(|&t| {
            let call = |op: Operation, payload: Vec<Ttlv>| {
                let tls = tls.clone();
                let addr = server.kmip;
                move || -> Box<dyn FnMut() + Send> {
                    let mut c = Client::connect_with(addr, tls.clone());
                    c.version = ProtocolVersion::V2_1;
                    let payload = payload.clone();
                    Box::new(move || {
                        let item = c.call(op, payload.clone());
                        assert_eq!(item.result_status, ResultStatus::SUCCESS, "{item:?}");
                    })
                }
            };
            let sign = rate(t, secs, call(Operation::SIGN, sign_payload.clone()));
            let enc = rate(t, secs, call(Operation::ENCRYPT, encrypt_payload.clone()));
            // The same operations, BATCH items to a request message (KMIP's batching): what
            // one round trip, TLS record and dispatch cost once per message leaves.
            let batched = |op: Operation, payload: Vec<Ttlv>| {
                let items = vec![(op, payload); BATCH];
                rate(t, secs, || {
                    let mut c = Client::connect_with(server.kmip, tls.clone());
                    c.version = ProtocolVersion::V2_1;
                    let msg = request(c.version, items.clone());
                    Box::new(move || {
                        let r = c.send(&msg);
                        assert!(r
                            .batch_items
                            .iter()
                            .all(|i| i.result_status == ResultStatus::SUCCESS));
                    })
                }) * BATCH as f64
            };
            let sign_batched = batched(Operation::SIGN, sign_payload.clone());
            let enc_batched = batched(Operation::ENCRYPT, encrypt_payload.clone());
            (sign, sign_batched, enc, enc_batched)
        })
        .collect();
    drop(server);
    let raw = raw_softhsm(&dir, threads, secs);
    let round_trips = loopback_round_trips(secs);

    println!("\nKMIP crypto vs raw SoftHSM, {secs} s per cell (ops/s)");
    println!(
        "{:<22} {:>7} {:>12} {:>12} {:>8}",
        "operation", "threads", "strongroom", "raw SoftHSM", "ratio"
    );
    for (i, &t) in threads.iter().enumerate() {
        let (ks, ksb, ke, keb) = kmip_rates[i];
        let (rs, re) = raw[i];
        let rows = [
            ("Sign ECDSA P-256".to_owned(), ks, rs),
            (format!("  same, {BATCH} per batch"), ksb, rs),
            ("Encrypt AES-GCM 1 KiB".to_owned(), ke, re),
            (format!("  same, {BATCH} per batch"), keb, re),
        ];
        for (name, ours, raw) in rows {
            println!("{name:<22} {t:>7} {ours:>12.0} {raw:>12.0} {:>7.0}%", 100.0 * ours / raw);
        }
        assert!(ks > 0.0 && ksb > 0.0 && ke > 0.0 && keb > 0.0);
    }
    // One request at a time cannot beat the HSM's time plus a bare round trip.
    let ceiling = |raw: f64| 100.0 * round_trips / (raw + round_trips);
    let (rs, re) = raw[0];
    println!(
        "\nloopback TCP round trips of one byte, one thread: {round_trips:.0}/s ({:.1} us each); \
         so one request at a time, with nothing but the round trip added, reaches at most \
         {:.0}% of raw Sign and {:.0}% of raw Encrypt",
        1e6 / round_trips,
        ceiling(rs),
        ceiling(re)
    );
}
