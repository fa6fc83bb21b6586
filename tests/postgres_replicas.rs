//! Several Strongroom processes over one PostgreSQL database (`--store-url`), sharing one
//! HSM token and CA (one data directory): what one replica stores the others serve,
//! concurrent changes from different replicas are not lost, the audit chain stays one
//! verifiable chain, an ACME nonce one replica issued is good once at any of them, exactly
//! one replica runs the background work and another takes it
//! over when that one is killed, and nothing a killed replica acknowledged is lost (the
//! load's client retries against the survivor; nothing is stored half-made). When
//! the database goes away during a Create load, requests fail with KMIP errors, work again
//! once it is back, and every Create acknowledged before, during or after is there.
//! The PostgreSQL server is the one `scripts/test` starts (`STRONGROOM_TEST_POSTGRES_URL`
//! overrides it); each test makes a database of its own with `psql`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::acme::AcmeClient;
use common::*;
use kmip::attributes::Attribute;
use kmip::enums::{Operation, ResultStatus};
use kmip::message::ResponseMessage;
use kmip::ttlv::binary::{decode, encode, Limits};
use kmip::{ProtocolVersion, Tag, Value};

fn metrics(server: &Server) -> String {
    let (status, body) =
        https_with(server.https, tls_config(&server.data_dir, None), "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    String::from_utf8(body).unwrap()
}

/// Whether the replica reports itself as the one running background work.
fn leads(server: &Server) -> bool {
    metrics(server).lines().any(|l| l == "strongroom_leader 1")
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what} did not happen within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn create(c: &mut Client) -> String {
    uid_of(&c.ok(Operation::CREATE, create_payload(ProtocolVersion::V1_4, &aes_attributes(256))))
}

#[test]
fn replicas_share_one_store() {
    let db = PgDatabase::new("replicas");
    let dir = temp_dir("strongroom-replicas");
    let store = ["--store-url", db.url.as_str()];
    // The first start creates the token, the CA and the schema; the second joins them.
    let a = Server::start_with(&dir, &store);
    let b = Server::start_with(&dir, &store);
    let certs = client_cert_env(&dir, "app", &store, &[]);
    let mut ca = Client::connect(&a, &certs, "app");
    let mut cb = Client::connect(&b, &certs, "app");

    // What one replica creates, the other serves, byte for byte.
    let id = create(&mut ca);
    let from_a = key_material(&ca.ok(Operation::GET, vec![uid(&id)]));
    let from_b = key_material(&cb.ok(Operation::GET, vec![uid(&id)]));
    assert_eq!(from_a, from_b);

    // A private key replaced by Import at one replica: the other signs with the new key
    // within a second (its session copy of the old one is checked against the token).
    replaced_keys_sign_anew_at_every_replica(&mut ca, &mut cb);

    // Both replicas add instances of one attribute to one object at once: none is lost and
    // no index is used twice.
    let adds = 20;
    std::thread::scope(|s| {
        for server in [&a, &b] {
            let (id, certs) = (&id, &certs);
            s.spawn(move || {
                let mut c = Client::connect(server, certs, "app");
                for i in 0..adds {
                    let v = format!("{}-{i}", server.https.port());
                    c.ok(
                        Operation::ADD_ATTRIBUTE,
                        vec![uid(id), Attribute::new("x-writer", Value::TextString(v)).to_v1()],
                    );
                }
            });
        }
    });
    let attrs =
        cb.ok(Operation::GET_ATTRIBUTES, vec![uid(&id), text(Tag::ATTRIBUTE_NAME, "x-writer")]);
    let mut indices: Vec<i32> = attrs
        .find_all(Tag::ATTRIBUTE)
        .map(|a| Attribute::from_v1(a).unwrap().index.unwrap_or(0))
        .collect();
    indices.sort_unstable();
    assert_eq!(indices, (0..2 * adds).collect::<Vec<_>>());

    // Lifecycle changes on one replica are what the other reports.
    cb.ok(Operation::ACTIVATE, vec![uid(&id)]);
    let state =
        ca.ok(Operation::GET_ATTRIBUTES, vec![uid(&id), text(Tag::ATTRIBUTE_NAME, "State")]);
    let state = Attribute::from_v1(state.find(Tag::ATTRIBUTE).unwrap()).unwrap();
    assert_eq!(state.value, Value::Enumeration(kmip::enums::State::ACTIVE.0));

    // ACME nonces are shared: one a replica issued is good once, at any replica.
    let mut acme = AcmeClient::new(&a, &dir);
    let nonce = acme.fresh_nonce();
    acme.addr = b.https;
    acme.nonce = Some(nonce.clone());
    acme.register();
    acme.addr = a.https;
    acme.nonce = Some(nonce);
    let replay =
        acme.post("/acme/new-account", Some(serde_json::json!({"onlyReturnExisting": true})));
    assert_eq!((replay.status, replay.problem().as_str()), (400, "badNonce"), "{replay:?}");
    // The answer carried a fresh nonce, which the other replica takes.
    acme.addr = b.https;
    let kid = acme.kid.clone().unwrap();
    let account_path = kid[kid.find("/acme/").unwrap()..].to_owned();
    let account = acme.post(&account_path, None);
    assert_eq!(account.status, 200, "{account:?}");

    // A replica's new order uses its nonce up in the statement that stores the order,
    // and checks there that the account is as the replica last read it.
    let order = serde_json::json!({"identifiers": [{"type": "ip", "value": "127.0.0.1"}]});
    let nonce = acme.fresh_nonce();
    acme.nonce = Some(nonce.clone());
    assert_eq!(acme.post("/acme/new-order", Some(order.clone())).status, 201);
    acme.nonce = Some(nonce);
    let replay = acme.post("/acme/new-order", Some(order.clone()));
    assert_eq!(replay.problem(), "badNonce", "{replay:?}");
    let orders = acme.post(&format!("{account_path}/orders"), None).json();
    assert_eq!(orders["orders"].as_array().map(Vec::len), Some(1), "{orders}");
    // Deactivated at one replica, the account orders nothing at the other, which read it
    // before: badNonce (nothing stored), and the client's retry is refused for what it is.
    acme.addr = a.https;
    let deactivated = acme.post(&account_path, Some(serde_json::json!({"status": "deactivated"})));
    assert_eq!(deactivated.json()["status"], "deactivated", "{deactivated:?}");
    acme.addr = b.https;
    let stale = acme.post("/acme/new-order", Some(order.clone()));
    assert_eq!(stale.problem(), "badNonce", "{stale:?}");
    let retry = acme.post("/acme/new-order", Some(order));
    assert_eq!(retry.problem(), "unauthorized", "{retry:?}");
    // A request answered before its write (a refused identifier) reads the account again
    // as it uses its nonce up: what the handler found does not reach an account that
    // changed meanwhile.
    let mut other = AcmeClient::new(&b, &dir);
    other.register();
    let kid = other.kid.clone().unwrap();
    let other_path = kid[kid.find("/acme/").unwrap()..].to_owned();
    assert_eq!(other.post(&other_path, None).status, 200);
    other.addr = a.https;
    let deactivate = Some(serde_json::json!({"status": "deactivated"}));
    assert_eq!(other.post(&other_path, deactivate).json()["status"], "deactivated");
    other.addr = b.https;
    let bad = serde_json::json!({"identifiers": [{"type": "dns", "value": "bad_name.test"}]});
    let refused = other.post("/acme/new-order", Some(bad.clone()));
    assert_eq!(refused.problem(), "badNonce", "{refused:?}");
    assert_eq!(other.post("/acme/new-order", Some(bad)).problem(), "unauthorized");

    // A CA rotation on one replica reaches the other: it issues from the new intermediate.
    let (api_a, api_b) = (Api::admin(&a), Api::admin(&b));
    let rotated = api_a.ok("POST", "/v1/pki/intermediate/rotate", serde_json::json!(null));
    let new_issuer = rotated["data"]["certificate"].as_str().unwrap().to_owned();
    api_b.ok(
        "POST",
        "/v1/pki/roles/svc",
        serde_json::json!({ "allowed_domains": ["svc.internal"], "allow_subdomains": true }),
    );
    wait_for("the rotation to reach the other replica", Duration::from_secs(20), || {
        let issued = api_b.ok(
            "POST",
            "/v1/pki/issue/svc",
            serde_json::json!({ "common_name": "x.svc.internal" }),
        );
        issued["data"]["issuing_ca"] == new_issuer.as_str()
    });

    // The same TDE key created at both replicas at once: one key, which both serve.
    for round in 0..3 {
        let path = format!("/v1/tde/keys/both{round}");
        let statuses: Vec<u16> = std::thread::scope(|s| {
            let made = [&api_a, &api_b]
                .map(|api| s.spawn(|| api.call("POST", &path, serde_json::json!(null)).0));
            made.map(|h| h.join().unwrap()).to_vec()
        });
        let mut sorted = statuses.clone();
        sorted.sort();
        assert_eq!(sorted, [200, 409], "{statuses:?}");
        for api in [&api_a, &api_b] {
            let (status, body) =
                api.call("GET", &format!("/v1/tde/data/both{round}"), serde_json::json!(null));
            assert_eq!(status, 200, "{body}");
        }
    }

    // Exactly one replica runs the background work.
    wait_for("a leader", Duration::from_secs(15), || leads(&a) || leads(&b));
    assert!(leads(&a) != leads(&b), "exactly one leader");
    let (leader, follower, mut cf) = if leads(&a) { (a, b, cb) } else { (b, a, ca) };

    // Kill -9 the leader in the middle of a load on it: the client retries against the
    // survivor, every Create acknowledged by either is served by the survivor, no object
    // is half-created (each one stored has its key), and the survivor takes over the
    // background work.
    let locate_all = |c: &mut Client| -> Vec<String> {
        let r = c.ok(Operation::LOCATE, vec![]);
        r.find_all(Tag::UNIQUE_IDENTIFIER).map(|t| t.as_text().unwrap().to_owned()).collect()
    };
    let before = locate_all(&mut cf).len();
    let acked_count = AtomicUsize::new(0);
    let acked = std::thread::scope(|s| {
        let load = s.spawn(|| {
            let mut c = Client::connect(&leader, &certs, "app");
            let create = request(
                ProtocolVersion::V1_4,
                vec![(
                    Operation::CREATE,
                    create_payload(ProtocolVersion::V1_4, &aes_attributes(128)),
                )],
            );
            let bytes = encode(&create.to_ttlv());
            let (mut acked, mut after_switch, mut switched) = (Vec::new(), 0, false);
            while after_switch < 10 {
                let answer = match c.send_raw(&bytes) {
                    Ok(answer) => answer,
                    // The replica died: the same request again, to the other one.
                    Err(_) if !switched => {
                        switched = true;
                        c = Client::connect(&follower, &certs, "app");
                        continue;
                    }
                    Err(e) => panic!("the survivor failed too: {e}"),
                };
                let r = ResponseMessage::from_ttlv(&decode(&answer, &Limits::default()).unwrap());
                let item = r.unwrap().batch_items.remove(0);
                assert_eq!(item.result_status, ResultStatus::SUCCESS, "{:?}", item.result_message);
                acked.push(uid_of(&item.payload.unwrap()));
                acked_count.store(acked.len(), Ordering::SeqCst);
                after_switch += usize::from(switched);
            }
            acked
        });
        wait_for("load", Duration::from_secs(30), || acked_count.load(Ordering::SeqCst) >= 20);
        let killed = Command::new("kill").args(["-9", &leader.pid().to_string()]).status();
        assert!(killed.unwrap().success());
        load.join().unwrap()
    });
    drop(leader);
    for id in &acked {
        cf.ok(Operation::GET, vec![uid(id)]);
    }
    // At most the one Create in flight at the kill was stored without its answer arriving,
    // and it is whole too.
    let stored = locate_all(&mut cf);
    let extra = stored.len() - before - acked.len();
    assert!(extra <= 1, "{extra} objects stored beyond those acknowledged");
    for id in &stored {
        let got = cf.ok(Operation::GET, vec![uid(id)]);
        assert!(!key_material(&got).is_empty(), "{id} half-created");
    }
    wait_for("the survivor to lead", Duration::from_secs(20), || leads(&follower));

    // One chain, written by both replicas (and the CLI), verifies.
    let out = Command::new(BIN)
        .args(["audit", "verify", "--data-dir"])
        .arg(&*dir)
        .args(store)
        .env("STRONGROOM_LOG", "warn")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("records"), "{report}");
    follower.stop();
}

/// A TCP relay to PostgreSQL that can be cut (open connections reset, new ones closed at
/// once) and restored on the same port: what a database restart looks like to its
/// clients, without restarting the server other tests share.
struct Relay {
    port: u16,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::<TcpStream>::new()));
        let (d, o) = (down.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if d.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else { continue };
                let mut open = o.lock().unwrap();
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server.try_clone().unwrap(), client.try_clone().unwrap()),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
                open.extend([client, server]);
            }
        });
        Relay { port, down, open }
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

fn ready(server: &Server) -> u16 {
    https_with(server.https, tls_config(&server.data_dir, None), "GET", "/ready", &[], b"").0
}

#[test]
fn store_outage_fails_cleanly_and_recovers() {
    let db = PgDatabase::new("outage");
    let (host_port, rest) = db.url.rsplit_once('@').unwrap().1.split_once('/').unwrap();
    let relay = Relay::start(host_port.to_owned());
    let url = format!("{}@127.0.0.1:{}/{rest}", db.url.rsplit_once('@').unwrap().0, relay.port);
    let dir = temp_dir("strongroom-outage");
    let server = Server::start_with(&dir, &["--store-url", &url]);
    let certs = client_cert_env(&dir, "app", &["--store-url", &url], &[]);
    let mut c = Client::connect(&server, &certs, "app");
    let id = create(&mut c);
    wait_for("a leader", Duration::from_secs(15), || leads(&server));

    // A Create load runs on two more connections through the outage and the recovery.
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..2)
        .map(|_| {
            let mut c = Client::connect(&server, &certs, "app");
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (mut acknowledged, mut failed) = (Vec::new(), 0);
                while !stop.load(Ordering::SeqCst) {
                    let started = Instant::now();
                    let item = c.call(
                        Operation::CREATE,
                        create_payload(ProtocolVersion::V1_4, &aes_attributes(256)),
                    );
                    assert!(started.elapsed() < Duration::from_secs(15), "a Create hung");
                    match item.result_status {
                        ResultStatus::SUCCESS => acknowledged.push(uid_of(&item.payload.unwrap())),
                        ResultStatus::OPERATION_FAILED => failed += 1,
                        _ => panic!("{item:?}"),
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                (acknowledged, failed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    // The database goes away: requests get a KMIP error promptly, the connection stays
    // usable, readiness says 503, and the replica stops leading.
    relay.cut();
    for op in [Operation::GET, Operation::CREATE] {
        let started = Instant::now();
        let payload = match op {
            Operation::GET => vec![uid(&id)],
            _ => create_payload(ProtocolVersion::V1_4, &aes_attributes(128)),
        };
        let item = c.call(op, payload);
        assert_eq!(item.result_status, ResultStatus::OPERATION_FAILED, "{item:?}");
        assert!(started.elapsed() < Duration::from_secs(15), "{op:?} took {:?}", started.elapsed());
    }
    assert_eq!(ready(&server), 503);
    assert!(metrics(&server).lines().any(|l| l == "strongroom_store_up 0"), "metrics still answer");
    wait_for("stepping down", Duration::from_secs(20), || !leads(&server));

    // It comes back on the same address: the same server and connection work again.
    relay.restore();
    wait_for("recovery", Duration::from_secs(30), || {
        let item = c.call(Operation::GET, vec![uid(&id)]);
        item.result_status == ResultStatus::SUCCESS
    });
    create(&mut c);
    assert_eq!(ready(&server), 200);
    assert!(metrics(&server).lines().any(|l| l == "strongroom_store_up 1"));
    wait_for("leading again", Duration::from_secs(20), || leads(&server));

    // Every Create the load saw acknowledged, before, during or after, is there.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let (mut acknowledged, mut failed) = (Vec::new(), 0);
    for t in load {
        let (a, f) = t.join().unwrap();
        acknowledged.extend(a);
        failed += f;
    }
    assert!(failed > 0, "the load saw no failure during the outage");
    assert!(acknowledged.len() >= 4, "{} acknowledged", acknowledged.len());
    for id in &acknowledged {
        let item = c.call(Operation::GET, vec![uid(id)]);
        assert_eq!(item.result_status, ResultStatus::SUCCESS, "acknowledged {id} lost");
    }
    server.stop();
}

fn replaced_keys_sign_anew_at_every_replica(ca: &mut Client, cb: &mut Client) {
    use kmip::enums::{usage_mask, KeyFormatType, ObjectType, State};
    use kmip::Ttlv;
    let id = format!("imported-{}", std::process::id());
    let import = |c: &mut Client, key: &rcgen::KeyPair| {
        let attrs = [
            Attribute::new("Cryptographic Usage Mask", Value::Integer(usage_mask::SIGN)),
            Attribute::new("State", Value::Enumeration(State::ACTIVE.0)),
        ];
        let mut payload = vec![
            uid(&id),
            Ttlv::new(Tag::REPLACE_EXISTING, Value::Boolean(true)),
            enumeration(Tag::OBJECT_TYPE, ObjectType::PRIVATE_KEY.0),
        ];
        payload.extend(kmip::attributes::write_attributes(&attrs, ProtocolVersion::V2_1));
        let block = Ttlv::structure(
            Tag::KEY_BLOCK,
            vec![
                enumeration(Tag::KEY_FORMAT_TYPE, KeyFormatType::PKCS_8.0),
                Ttlv::structure(
                    Tag::KEY_VALUE,
                    vec![Ttlv::new(Tag::KEY_MATERIAL, Value::ByteString(key.serialize_der()))],
                ),
            ],
        );
        payload.push(Ttlv::structure(Tag::PRIVATE_KEY, vec![block]));
        c.ok(Operation::IMPORT, payload);
    };
    let data = b"signed at either replica";
    let signed_by = |c: &mut Client, key: &rcgen::KeyPair| {
        let payload = vec![uid(&id), Ttlv::new(Tag::DATA, Value::ByteString(data.to_vec()))];
        let signature = c.ok(Operation::SIGN, payload);
        let signature = signature.find(Tag::SIGNATURE_DATA).unwrap().as_bytes().unwrap().to_vec();
        aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
            key.public_key_raw(),
        )
        .verify(data, &signature)
        .is_ok()
    };
    let (old, new) = (rcgen::KeyPair::generate().unwrap(), rcgen::KeyPair::generate().unwrap());
    let versions = (ca.version, cb.version);
    (ca.version, cb.version) = (ProtocolVersion::V2_1, ProtocolVersion::V2_1);
    import(ca, &old);
    assert!(signed_by(cb, &old));
    import(ca, &new);
    assert!(signed_by(ca, &new));
    std::thread::sleep(Duration::from_millis(1100));
    assert!(signed_by(cb, &new), "the other replica signs with the replacement");
    // Gone again, so the rest of the test finds only what it made.
    let reason = revocation(kmip::enums::RevocationReasonCode::CESSATION_OF_OPERATION);
    ca.ok(Operation::REVOKE, vec![uid(&id), reason]);
    ca.ok(Operation::DESTROY, vec![uid(&id)]);
    (ca.version, cb.version) = versions;
}

/// One row count from the test's database.
fn count(url: &str, sql: &str) -> i64 {
    let out = Command::new("psql").args([url, "-tAc", sql]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

/// Replicas started at the same moment on an empty database and no HSM token set up one
/// token, one CA and one administrator token between them (the bootstrap lock), and both
/// serve what the other stores.
#[test]
fn replicas_started_together_make_one_setup() {
    let db = PgDatabase::new("together");
    let dir = temp_dir("strongroom-replicas-together");
    let starts: Vec<_> = (0..2)
        .map(|_| {
            let (dir, url) = (dir.to_path_buf(), db.url.clone());
            std::thread::spawn(move || Server::start_with(&dir, &["--store-url", &url]))
        })
        .collect();
    let servers: Vec<Server> = starts.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(count(&db.url, "SELECT COUNT(*) FROM ca_issuers"), 1, "one issuing CA");
    assert_eq!(count(&db.url, "SELECT COUNT(*) FROM tokens"), 1, "one admin token");
    // Each replica's TLS key chains to DATA/ca.crt, and the token file works at both.
    let roots: Vec<serde_json::Value> = servers
        .iter()
        .map(|s| Api::admin(s).ok("GET", "/v1/auth/token/lookup-self", serde_json::json!(null)))
        .collect();
    assert_eq!(roots[0]["data"]["accessor"], roots[1]["data"]["accessor"]);
    let certs = client_cert_env(&dir, "app", &["--store-url", &db.url], &[]);
    let mut clients: Vec<Client> =
        servers.iter().map(|s| Client::connect(s, &certs, "app")).collect();
    let id = create(&mut clients[0]);
    let a = key_material(&clients[0].ok(Operation::GET, vec![uid(&id)]));
    let b = key_material(&clients[1].ok(Operation::GET, vec![uid(&id)]));
    assert_eq!(a, b);
    for s in servers {
        s.stop();
    }
}
