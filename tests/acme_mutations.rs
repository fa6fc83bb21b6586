//! Robustness of the ACME endpoints: correctly signed requests whose payloads are mutated
//! (a value replaced by another type or an edge value, a huge or deeply nested one, a key
//! dropped or added, an array repeated) against every endpoint that reads a payload:
//! newAccount, account update, newOrder, challenge, finalize, keyChange, revokeCert, and
//! the POST-as-GET resources given a payload. Every answer must be below 500, and every
//! error a problem document with an ACME error type and a fresh nonce. The seed is fixed
//! so a failure repeats; `ACME_MUTATION_SEED` and `ACME_MUTATION_COUNT` change the run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::acme::{b64, jwk, new_key, AcmeClient as Client, Response, URL};
use common::*;
use serde_json::{json, Value};

fn path_of(url: &str) -> String {
    url.strip_prefix(URL).unwrap_or(url).to_owned()
}

fn csr(names: &[&str]) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    b64(params.serialize_request(&key).unwrap().der())
}

/// A value of another kind, or an edge value of the same: what the mutation puts in place.
fn strange(rng: &mut Rng) -> Value {
    match rng.below(16) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(0),
        3 => json!(-1),
        4 => json!(u64::MAX),
        5 => json!(1.5e308),
        6 => json!(""),
        7 => json!("x".repeat(100_000)),
        8 => json!("\u{0}\u{202e}é☃"),
        9 => json!(
            ["*.", "a..b", "999.1.1.1", "::1", "xn--", "-a.test", "a.svc.internal."][rng.below(7)]
        ),
        10 => json!(vec!["a.svc.internal"; 2000]),
        11 => json!({}),
        12 => (0..200).fold(json!(1), |v, _| json!([v])),
        13 => json!(b64(&rng.bytes(3000))),
        14 => json!({"type": "dns", "value": format!("{}.svc.internal", "a".repeat(300))}),
        _ => json!([{"type": "ip", "value": "10.0.0.1"}, {"type": "dns"}, 7]),
    }
}

/// The number of values in the tree.
fn size(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(size).sum(),
        Value::Object(o) => o.values().map(size).sum(),
        _ => 0,
    }
}

/// Runs `f` on the `n`th value in pre-order.
fn at(v: &mut Value, n: &mut usize, f: &mut dyn FnMut(&mut Value)) -> bool {
    if *n == 0 {
        f(v);
        return true;
    }
    *n -= 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|c| at(c, n, f)),
        Value::Object(o) => o.values_mut().any(|c| at(c, n, f)),
        _ => false,
    }
}

fn mutate(payload: &mut Value, rng: &mut Rng) {
    let mut n = rng.below(size(payload));
    let kind = rng.below(5);
    let replacement = strange(rng);
    let extra = format!("k{}", rng.below(1000));
    let pick = rng.next() as usize;
    at(payload, &mut n, &mut |v: &mut Value| match (kind, v) {
        (1, Value::Object(o)) if !o.is_empty() => {
            let key = o.keys().nth(pick % o.len()).unwrap().clone();
            o.remove(&key);
        }
        (2, Value::Object(o)) => {
            o.insert(extra.clone(), replacement.clone());
        }
        (3, Value::Array(a)) if !a.is_empty() => {
            let item = a[pick % a.len()].clone();
            a.extend(std::iter::repeat_n(item, 100));
        }
        (_, v) => *v = replacement.clone(),
    });
}

/// Checks one answer: below 500; an error is a problem document with a fresh nonce.
fn check(what: &str, payload: &Value, r: &Response) -> Result<(), String> {
    let fail = |why: &str| {
        let mut p = payload.to_string();
        p.truncate(400);
        Err(format!("{what}: {why}: {r:?} (payload {p})"))
    };
    if r.status >= 500 {
        return fail("server error");
    }
    if r.header("replay-nonce").is_none() {
        return fail("no Replay-Nonce");
    }
    if r.status >= 400 {
        if r.header("content-type") != Some("application/problem+json") {
            return fail("error without a problem document");
        }
        let t = r.json()["type"].as_str().unwrap_or_default().to_owned();
        if !t.starts_with("urn:ietf:params:acme:error:") {
            return fail("problem type outside ACME's");
        }
    }
    Ok(())
}

#[test]
fn mutated_acme_payloads_get_problem_documents() {
    run(&[], 1200);
}

/// The same on a PostgreSQL store, whose text cannot hold U+0000.
#[test]
fn mutated_acme_payloads_get_problem_documents_on_postgresql() {
    let db = PgDatabase::new("acme_mutations");
    run(&["--store-url", &db.url], 600);
}

/// Sends `default_count` mutated requests to a server started with `store` arguments.
fn run(store: &[&str], default_count: u64) {
    let env = |name: &str, default: u64| -> u64 {
        std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
    };
    let seed = env("ACME_MUTATION_SEED", 0xacdc_2026);
    let count = env("ACME_MUTATION_COUNT", default_count) as usize;
    println!("ACME_MUTATION_SEED={seed} ACME_MUTATION_COUNT={count}");
    let mut rng = Rng(seed);
    let dir = temp_dir("strongroom-acme-mutations");
    let config = dir.join("acme.toml");
    // Challenges are validated against closed loopback ports, so they fail fast.
    std::fs::write(
        &config,
        "[acme]\npreauthorized = [\"*.svc.internal\", \"10.0.0.0/8\"]\nhttp01_port = 1\n\
         tls_alpn01_port = 1\ndns_resolver = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend(store);
    let server = Server::start_with(&dir, &args);
    let mut c = Client::new(&server, &dir);
    c.register();

    // Real resources to aim at: an order to finalize, a pending authorization's challenge,
    // an issued certificate.
    let order = |c: &mut Client, ids: Value| {
        let r = c.post("/acme/new-order", Some(json!({"identifiers": ids})));
        assert_eq!(r.status, 201, "{r:?}");
        (r.header("location").unwrap().to_owned(), r.json())
    };
    let (_, issued) = order(&mut c, json!([{"type": "dns", "value": "b.svc.internal"}]));
    let done = c.post(
        &path_of(issued["finalize"].as_str().unwrap()),
        Some(json!({"csr": csr(&["b.svc.internal"])})),
    );
    let cert_url = path_of(done.json()["certificate"].as_str().unwrap());
    let pem = c.post(&cert_url, None).body;
    let der = x509_parser::pem::parse_x509_pem(&pem).unwrap().1.contents;
    let (pending_url, pending) = order(&mut c, json!([{"type": "dns", "value": "c.example"}]));
    let authz = path_of(pending["authorizations"][0].as_str().unwrap());
    let challenge = path_of(c.post(&authz, None).json()["challenges"][0]["url"].as_str().unwrap());
    let account = path_of(c.kid.as_deref().unwrap());

    let mut failures = Vec::new();
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..count {
        let kind = rng.below(9);
        let mut new_key_of = None;
        let (what, path, mut payload) = match kind {
            0 => ("newOrder", "/acme/new-order".to_owned(), {
                json!({"identifiers": [{"type": "dns", "value": "d.svc.internal"},
                    {"type": "ip", "value": "10.1.2.3"}]})
            }),
            1 => {
                // A ready order of its own, so that the CSR is what gets checked.
                let (_, ready) = order(&mut c, json!([{"type": "dns", "value": "a.svc.internal"}]));
                let finalize = path_of(ready["finalize"].as_str().unwrap());
                ("finalize", finalize, json!({"csr": csr(&["a.svc.internal"])}))
            }
            2 => ("account", account.clone(), json!({"contact": ["mailto:ops@example.com"]})),
            3 => ("challenge", challenge.clone(), json!({})),
            4 => ("revokeCert", "/acme/revoke-cert".to_owned(), {
                json!({"certificate": b64(&der), "reason": 4})
            }),
            5 => ("newAccount", "/acme/new-account".to_owned(), {
                json!({"termsOfServiceAgreed": true, "contact": ["mailto:a@example.com"]})
            }),
            6 => {
                let new = new_key();
                let inner = c.jws(
                    &new,
                    json!({"alg": "ES256", "jwk": jwk(&new), "url": format!("{URL}/acme/key-change")}),
                    Some(&json!({"account": c.kid.clone().unwrap(), "oldKey": jwk(&c.key)})),
                );
                new_key_of = Some(new);
                ("keyChange", "/acme/key-change".to_owned(), {
                    serde_json::from_slice::<Value>(&inner).unwrap()
                })
            }
            7 => ("order as GET", path_of(&pending_url), json!({"status": "ready"})),
            _ => ("authorization", authz.clone(), json!({"status": "deactivated"})),
        };
        // Three in four mutated; the rest exercise the unmutated path too.
        if rng.below(4) > 0 {
            for _ in 0..1 + rng.below(3) {
                mutate(&mut payload, &mut rng);
            }
        }
        // Bodies over the ACME limit (64 KiB) are refused before they are read; beyond a
        // few hundred KiB the server closes while the client is still sending (a reset, as
        // any HTTP server does), so those are not sent.
        if payload.to_string().len() > 384 << 10 {
            continue;
        }
        let r = if kind == 5 {
            // A new account signs with its own key (jwk), not the kid.
            Client::new(&server, &dir).post(&path, Some(payload.clone()))
        } else {
            c.post(&path, Some(payload.clone()))
        };
        let problem =
            r.json()["type"].as_str().map(|t| t.rsplit(':').next().unwrap_or(t).to_owned());
        *seen.entry((what, r.status, problem.unwrap_or_default())).or_insert(0) += 1;
        if let Err(e) = check(what, &payload, &r) {
            failures.push(format!("#{i} {e}"));
        }
        // An unmutated key change went through: the account answers to the new key now.
        if let (Some(key), 200) = (new_key_of.take(), r.status) {
            c.key = key;
        }
    }
    for ((what, status, problem), n) in &seen {
        println!("{what:<14} {status} {problem:<22} {n}");
    }
    // Still serving.
    let r = c.raw("GET", "/acme/directory", "text/plain", b"");
    assert_eq!(r.status, 200);
    assert!(failures.is_empty(), "{} of {count}:\n{}", failures.len(), failures.join("\n"));
    server.stop();
}
