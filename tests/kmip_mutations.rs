//! Robustness: the requests of the OASIS KMIP profile test cases
//! (`kmip/tests/vectors/oasis-kmip-profiles`), replayed in order with most of them mutated
//! at the tree level (a value set to an edge value of its type, an item dropped, repeated,
//! retagged, retyped or moved), to the running server over TTLV/mutual TLS, and some over
//! XML and JSON on HTTPS. Every request must get a response message, and never the
//! answer the server gives its own failures ("HSM operation failed", "internal storage
//! error"): a dropped connection (a panic in the server), no answer in time or an internal
//! failure fails the test, with the request's hex to replay. Most of these trees decode;
//! it is the operations behind the decoders that meet them.
//!
//! `MUTATION_SEED` (default fixed, so a failure repeats) and `MUTATION_COUNT` (requests;
//! default 2500) change the run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::*;
use kmip::message::ResponseMessage;
use kmip::ttlv::binary::{self, Limits};
use kmip::ttlv::{json, text, xml};
use kmip::{Tag, Ttlv, Value};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn case_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("kmip/tests/vectors/oasis-kmip-profiles");
    let mut files: Vec<PathBuf> = ["v1.4", "v2.1"]
        .iter()
        .flat_map(|v| ["mandatory", "optional"].map(|k| root.join(v).join(k)))
        .flat_map(|d| std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()))
        .collect();
    files.sort();
    files
}

/// The request elements of a case file, in order.
fn requests(text: &str) -> Vec<String> {
    text.split("<RequestMessage>")
        .skip(1)
        .filter_map(|part| part.split_once("</RequestMessage>"))
        .map(|(body, _)| format!("<RequestMessage>{body}</RequestMessage>"))
        .collect()
}

/// Fills a request's placeholders: identifiers with objects the server made earlier in
/// the run, dates with now, byte strings with random bytes.
fn fill(element: &str, uids: &[String], rng: &mut Rng) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut parts = element.split("value=\"$");
    let mut out = parts.next().unwrap_or("").to_owned();
    for part in parts {
        let (name, rest) = part.split_at(part.find('"').unwrap_or(part.len()));
        let typed = out.rsplit("type=\"").next().unwrap_or("").to_owned();
        let value = if let Some(offset) = name.strip_prefix("NOW") {
            text::datetime_to_text(now + offset.parse::<i64>().unwrap_or(0))
        } else if typed.starts_with("TextString") {
            if uids.is_empty() {
                "none".to_owned()
            } else {
                rng.pick(uids).clone()
            }
        } else if typed.starts_with("ByteString") {
            let n = [16, 32, 64][rng.below(3)];
            text::hex(&rng.bytes(n))
        } else if typed.starts_with("DateTime") {
            text::datetime_to_text(now)
        } else {
            "1".to_owned()
        };
        out.push_str("value=\"");
        out.push_str(&value);
        out.push_str(rest);
    }
    out
}

/// What the corpus uses: tags and enumeration values to mutate into.
struct Vocabulary {
    tags: Vec<Tag>,
    enums: Vec<u32>,
}

impl Vocabulary {
    fn of<'a>(trees: impl Iterator<Item = &'a Ttlv>) -> Vocabulary {
        fn learn(t: &Ttlv, tags: &mut BTreeSet<u32>, enums: &mut BTreeSet<u32>) {
            tags.insert(t.tag.0);
            match &t.value {
                Value::Structure(c) => c.iter().for_each(|c| learn(c, tags, enums)),
                Value::Enumeration(v) => {
                    enums.insert(*v);
                }
                _ => {}
            }
        }
        let (mut tags, mut enums) = (BTreeSet::new(), BTreeSet::new());
        trees.for_each(|t| learn(t, &mut tags, &mut enums));
        Vocabulary { tags: tags.into_iter().map(Tag).collect(), enums: enums.into_iter().collect() }
    }
}

/// The number of items in the tree.
fn size(t: &Ttlv) -> usize {
    1 + t.children().iter().map(size).sum::<usize>()
}

/// Runs `f` on the `n`th item in pre-order; whether there was one.
fn at(t: &mut Ttlv, n: &mut usize, f: &mut dyn FnMut(&mut Ttlv)) -> bool {
    if *n == 0 {
        f(t);
        return true;
    }
    *n -= 1;
    match &mut t.value {
        Value::Structure(c) => c.iter_mut().any(|child| at(child, n, f)),
        _ => false,
    }
}

/// An edge value of the same item type as `v`, or another type's value (`retype`).
fn edge_value(v: &Value, vocab: &Vocabulary, rng: &mut Rng, retype: bool) -> Value {
    let kind = if retype { rng.below(10) } else { usize::MAX };
    match (v, kind) {
        (Value::Integer(_), usize::MAX) | (_, 0) => {
            Value::Integer(*rng.pick(&[0, -1, 1, 7, 8, 255, 4097, 65_536, i32::MAX, i32::MIN]))
        }
        (Value::LongInteger(_), usize::MAX) | (_, 1) => {
            Value::LongInteger(*rng.pick(&[0, -1, 1, i64::MAX, i64::MIN, 1 << 40]))
        }
        (Value::BigInteger(_), usize::MAX) | (_, 2) => {
            let n = *rng.pick(&[0, 8, 16, 520]);
            Value::BigInteger(rng.bytes(n))
        }
        (Value::Enumeration(_), usize::MAX) | (_, 3) => Value::Enumeration(match rng.below(4) {
            0 => *rng.pick(&[0, u32::MAX, 0x8000_0000, 0x7FFF_FFFF]),
            _ => *rng.pick(&vocab.enums),
        }),
        (Value::Boolean(b), usize::MAX) => Value::Boolean(!b),
        (_, 4) => Value::Boolean(rng.chance(50)),
        (Value::TextString(_), usize::MAX) | (_, 5) => Value::TextString(match rng.below(5) {
            0 => String::new(),
            1 => "x".repeat(70_000),
            2 => "\u{0}é\u{202e}☃".to_owned(),
            3 => "../../etc/passwd".to_owned(),
            _ => format!("{}", rng.next()),
        }),
        (Value::ByteString(_), usize::MAX) | (_, 6) => {
            let n = *rng.pick(&[0, 1, 12, 15, 17, 33, 4096, 100_000]);
            Value::ByteString(rng.bytes(n))
        }
        (Value::DateTime(_), usize::MAX) | (_, 7) => {
            Value::DateTime(*rng.pick(&[0, -1, i64::MAX, i64::MIN, 253_402_300_800]))
        }
        (Value::Interval(_), usize::MAX) | (_, 8) => Value::Interval(*rng.pick(&[0, 1, u32::MAX])),
        (Value::DateTimeExtended(_), usize::MAX) => {
            Value::DateTimeExtended(*rng.pick(&[0, -1, i64::MAX, i64::MIN]))
        }
        (Value::Structure(_), usize::MAX) | (_, _) => Value::Structure(Vec::new()),
    }
}

/// One mutation somewhere in `message`.
fn mutate(message: &mut Ttlv, vocab: &Vocabulary, rng: &mut Rng) {
    let mut n = rng.below(size(message));
    let kind = rng.below(8);
    let mut taken: Option<Ttlv> = None;
    at(message, &mut n, &mut |item: &mut Ttlv| match (kind, &mut item.value) {
        (0..=2, _) => item.value = edge_value(&item.value, vocab, rng, false),
        (3, _) => item.value = edge_value(&item.value, vocab, rng, true),
        (4, _) => item.tag = *rng.pick(&vocab.tags),
        (5, Value::Structure(c)) if !c.is_empty() => {
            c.remove(rng.below(c.len()));
        }
        (6, Value::Structure(c)) if !c.is_empty() => {
            let i = rng.below(c.len());
            let copies = *rng.pick(&[1, 2, 300]);
            for _ in 0..copies {
                c.insert(i, c[i].clone());
            }
        }
        (7, Value::Structure(c)) if !c.is_empty() => taken = Some(c.remove(rng.below(c.len()))),
        _ => item.value = edge_value(&item.value, vocab, rng, false),
    });
    // A moved item lands in another structure, or at the top of the message.
    if let Some(item) = taken {
        let mut n = rng.below(size(message));
        let mut item = Some(item);
        at(message, &mut n, &mut |t: &mut Ttlv| {
            if let Value::Structure(c) = &mut t.value {
                c.extend(item.take());
            }
        });
        if let (Some(i), Value::Structure(c)) = (item, &mut message.value) {
            c.push(i);
        }
    }
}

/// The identifiers a response names (to use in later requests).
fn identifiers(t: &Ttlv, out: &mut Vec<String>) {
    match &t.value {
        Value::TextString(s)
            if matches!(
                t.tag,
                Tag::UNIQUE_IDENTIFIER
                    | Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER
                    | Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER
            ) =>
        {
            out.push(s.clone())
        }
        Value::Structure(c) => c.iter().for_each(|c| identifiers(c, out)),
        _ => {}
    }
}

#[test]
fn mutated_oasis_requests_are_all_answered() {
    run(&[], env_u64("MUTATION_COUNT", 2500) as usize);
}

/// The same on a PostgreSQL store, whose types are stricter than SQLite's (no NUL in text,
/// 64-bit integers only).
#[test]
fn mutated_oasis_requests_are_all_answered_on_postgresql() {
    let db = PgDatabase::new("mutations");
    run(&["--store-url", &db.url], env_u64("MUTATION_COUNT", 1200) as usize);
}

/// Replays `count` requests to a server started with `store` arguments.
fn run(store: &[&str], count: usize) {
    let seed = env_u64("MUTATION_SEED", 0x5eed_2026);
    println!("MUTATION_SEED={seed} MUTATION_COUNT={count}");
    let mut rng = Rng(seed);
    let limits = Limits::default();
    let cases: Vec<Vec<String>> =
        case_files().iter().map(|f| requests(&std::fs::read_to_string(f).unwrap())).collect();
    let trees: Vec<Ttlv> = cases
        .iter()
        .flatten()
        .filter_map(|e| xml::decode(&fill(e, &[], &mut Rng(0)), &limits).ok())
        .collect();
    let vocab = Vocabulary::of(trees.iter());

    let dir = temp_dir("strongroom-mutations");
    let data = dir.join("data");
    let server = Server::start_with(&data, store);
    let certs = client_cert_env(&data, "fuzz", store, &[]);
    let tls = tls_config(&certs, Some("fuzz"));
    // Connected when a request needs it: an idle new connection would meet the server's
    // handshake timeout while requests go over HTTPS.
    let mut client: Option<Client> = None;
    let mut uids: Vec<String> = Vec::new();
    let (mut sent, mut failures) = (0usize, Vec::new());
    'run: while sent < count {
        let before = sent;
        for case in &cases {
            for element in case {
                if sent == count {
                    break 'run;
                }
                let Ok(mut request) = xml::decode(&fill(element, &uids, &mut rng), &limits) else {
                    continue;
                };
                // A fifth go unchanged, so that cases still make the objects later steps use.
                if rng.chance(80) {
                    for _ in 0..1 + rng.below(3) {
                        mutate(&mut request, &vocab, &mut rng);
                    }
                }
                sent += 1;
                let bytes = binary::encode(&request);
                // Bodies over the HTTPS listener's limit are refused before they are read
                // (tests/https.rs), so only smaller ones go that way.
                let https_ok = bytes.len() < 1 << 18;
                let answer = match rng.below(10) {
                    0 if https_ok => via_https(&server, &tls, &request, true),
                    1 if https_ok => via_https(&server, &tls, &request, false),
                    _ => client
                        .get_or_insert_with(|| Client::connect(&server, &certs, "fuzz"))
                        .send_raw(&bytes)
                        .map_err(|e| format!("no answer over TTLV: {e}"))
                        .and_then(|b| binary::decode(&b, &limits).map_err(|e| e.to_string())),
                };
                match answer.and_then(|t| {
                    ResponseMessage::from_ttlv(&t).map(|r| (t, r)).map_err(|e| e.to_string())
                }) {
                    Ok((t, r)) => {
                        identifiers(&t, &mut uids);
                        // The server's words for its own failures, which a client's
                        // mistake must never get.
                        let internal = ["HSM operation failed", "internal storage error"];
                        if let Some(b) = r.batch_items.iter().find(|b| {
                            b.result_message.as_deref().is_some_and(|m| internal.contains(&m))
                        }) {
                            failures.push(format!(
                                "internal failure {:?}: {}",
                                b.result_message,
                                hex::encode(&bytes)
                            ));
                        }
                        // A message that cannot be framed is answered, then the connection
                        // closes.
                        if r.batch_items.iter().any(|b| {
                            b.result_reason == Some(kmip::enums::ResultReason::INVALID_MESSAGE)
                        }) {
                            client = None;
                        }
                    }
                    // The server answers a message over its size limit (1 MiB) after its
                    // header, and reads at most 1 MiB more of it before closing; a client
                    // still sending then finds the connection closed.
                    Err(_) if bytes.len() > 2 << 20 => {
                        client = None;
                    }
                    Err(e) => {
                        failures.push(format!("{e}: {}", hex::encode(&bytes)));
                        client = None;
                    }
                }
                if uids.len() > 64 {
                    uids.drain(..32);
                }
            }
        }
        assert!(sent > before, "no test-case request could be read");
    }
    // Still serving after the run.
    let mut fresh = Client::connect(&server, &certs, "fuzz");
    fresh.call(kmip::enums::Operation::DISCOVER_VERSIONS, Vec::new());
    assert!(
        failures.is_empty(),
        "{} of {sent} mutated requests got no response message or an internal failure:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Sends `request` to `POST /kmip` as JSON or XML; the decoded response tree.
fn via_https(
    server: &Server,
    tls: &std::sync::Arc<rustls::ClientConfig>,
    request: &Ttlv,
    as_json: bool,
) -> Result<Ttlv, String> {
    let limits = Limits::default();
    let (kind, body) = if as_json {
        ("application/json", json::encode(request))
    } else {
        ("text/xml", xml::encode(request))
    };
    let (status, body) = https(server, tls.clone(), "POST", "/kmip", kind, body.as_bytes());
    let body = String::from_utf8(body).map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("HTTP {status} over {kind}: {body}"));
    }
    if as_json { json::decode(&body, &limits) } else { xml::decode(&body, &limits) }
        .map_err(|e| format!("response over {kind}: {e}"))
}
