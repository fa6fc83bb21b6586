//! Conformance: replays the OASIS KMIP Profiles test cases (KMIP 1.4 and 2.1, mandatory and
//! optional; `kmip/tests/vectors/oasis-kmip-profiles`) against the running server over
//! TTLV/mutual TLS, and compares each response with the expected one. Allowances for what a
//! server chooses: unique identifiers (bound on first sight, then checked), dates, result
//! messages, server identification, generated key material, ciphertexts made with
//! generated keys or IVs (compared by length, then sent back where the case decrypts them),
//! and the server's PKCS#11 module description. Prints the pass count per profile, and fails when fewer cases pass than the floor recorded here (so a regression
//! fails the build; raise the floor as the server learns more).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use common::*;
use kmip::message::ResponseMessage;
use kmip::ttlv::binary::{self, Limits};
use kmip::ttlv::{text, xml};
use kmip::{Tag, Ttlv, Value};

/// Cases that must pass; raise as support grows.
const FLOOR: usize = 156;
/// Byte strings the expected side leaves open (a `$NAME` placeholder there) are written as
/// this prefix followed by the hex of NAME, and bound to what the server returns.
const ANY_BYTES: &str = "a11b17e5";

fn case_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("kmip/tests/vectors/oasis-kmip-profiles");
    let mut files = Vec::new();
    for version in ["v1.4", "v2.1"] {
        for kind in ["mandatory", "optional"] {
            for e in std::fs::read_dir(root.join(version).join(kind)).unwrap() {
                files.push(e.unwrap().path());
            }
        }
    }
    files.sort();
    files
}

/// The request and response element texts of a case file, in order.
fn messages(text: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let req = rest.find("<RequestMessage>");
        let resp = rest.find("<ResponseMessage>");
        let (is_request, start, end_tag) = match (req, resp) {
            (Some(a), Some(b)) if a < b => (true, a, "</RequestMessage>"),
            (Some(a), None) => (true, a, "</RequestMessage>"),
            (_, Some(b)) => (false, b, "</ResponseMessage>"),
            (None, None) => break,
        };
        let end = rest[start..].find(end_tag).unwrap() + start + end_tag.len();
        out.push((is_request, rest[start..end].to_owned()));
        rest = &rest[end..];
    }
    out
}

/// Fills placeholders: in requests with bound values (or a value an earlier response gave
/// under that tag name, `seen`, where the expected response spelled it out) and the
/// current time; in expected responses, dates with any date and open byte strings with
/// [`ANY_BYTES`].
fn fill(
    text: &str,
    bindings: &HashMap<String, String>,
    seen: &HashMap<String, String>,
    request: bool,
) -> Result<String, String> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut out = String::with_capacity(text.len());
    let mut parts = text.split("value=\"$");
    out.push_str(parts.next().unwrap_or(""));
    for part in parts {
        let end = part.find('"').ok_or("unterminated placeholder")?;
        let (name, rest) = part.split_at(end);
        let typed = out.rsplit("type=\"").next().unwrap_or("");
        let value = if let Some(offset) = name.strip_prefix("NOW") {
            let delta: i64 = if offset.is_empty() {
                0
            } else {
                offset.parse().map_err(|_| format!("${name}"))?
            };
            text::datetime_to_text(now + delta)
        } else if let Some(v) = bindings.get(name) {
            v.clone()
        } else if let Some(v) = seen_value(seen, name).filter(|_| request) {
            v.clone()
        } else if request {
            return Err(format!("needs ${name}, which no earlier response bound"));
        } else if typed.starts_with("ByteString") {
            format!("{ANY_BYTES}{}", text::hex(name.as_bytes()))
        } else {
            format!("${name}")
        };
        out.push_str("value=\"");
        out.push_str(&value);
        out.push_str(rest);
    }
    Ok(out)
}

/// A value an earlier response gave under the placeholder's tag name: `$MAC_DATA`, or
/// `$DATA_0` for the first Data where the expected responses spelled it out instead of
/// binding it (CS-BC-M-13-14).
fn seen_value<'a>(seen: &'a HashMap<String, String>, name: &str) -> Option<&'a String> {
    seen.get(name).or_else(|| {
        let (tag, n) = name.rsplit_once('_')?;
        n.parse::<u32>().ok().and_then(|_| seen.get(tag))
    })
}

/// Tags whose values the server chooses (generated key material and its digest included).
fn server_chosen(tag: Tag) -> bool {
    matches!(
        tag,
        Tag::RESULT_MESSAGE
            | Tag::VENDOR_IDENTIFICATION
            | Tag::SERVER_INFORMATION
            | Tag::TIME_STAMP
            | Tag::KEY_MATERIAL
            | Tag::DIGEST_VALUE
            // Which generator made a key is the server's to describe.
            | Tag::RANDOM_NUMBER_GENERATOR
    )
}

fn compare(
    expected: &Ttlv,
    actual: &Ttlv,
    bindings: &mut HashMap<String, String>,
    path: &str,
) -> Result<(), String> {
    let here = format!("{path}/{}", text::tag_to_text(expected.tag));
    if expected.tag != actual.tag {
        return Err(format!("{here}: got {}", text::tag_to_text(actual.tag)));
    }
    if server_chosen(expected.tag) {
        return Ok(());
    }
    // 1.x spells the generator's description as a named attribute.
    let rng = |t: &Ttlv| {
        t.find(Tag::ATTRIBUTE_NAME).and_then(|n| n.as_text().ok())
            == Some("Random Number Generator")
    };
    if expected.tag == Tag::ATTRIBUTE && rng(expected) && rng(actual) {
        return Ok(());
    }
    // Random data is random: only its length is compared.
    if expected.tag == Tag::BATCH_ITEM
        && expected.find(Tag::OPERATION).map(|o| &o.value)
            == Some(&Value::Enumeration(kmip::enums::Operation::RNG_RETRIEVE.0))
    {
        let data = |t: &Ttlv| {
            t.find(Tag::RESPONSE_PAYLOAD)
                .and_then(|p| p.find(Tag::DATA))
                .and_then(|d| d.as_bytes().ok())
                .map(<[u8]>::len)
        };
        return if data(expected) == data(actual) {
            Ok(())
        } else {
            Err(format!("{here}: random data of another length"))
        };
    }
    // C_GetInfo's output describes the server's own PKCS#11 module: compared as a CK_INFO
    // (the profile's encoding), not byte for byte.
    if expected.tag == Tag::PKCS_11_OUTPUT_PARAMETERS {
        let info = |t: &Ttlv| t.as_bytes().ok().and_then(kmip::ops::pkcs11::CkInfo::decode);
        return match (info(expected), info(actual)) {
            (Some(_), Some(a)) if a.cryptoki_version.0 >= 2 => Ok(()),
            _ => Err(format!("{here}: not a CK_INFO")),
        };
    }
    // What a server supports is its own choice: Query answers are not compared item by item.
    if expected.tag == Tag::BATCH_ITEM
        && expected.find(Tag::OPERATION).map(|o| &o.value)
            == Some(&Value::Enumeration(kmip::enums::Operation::QUERY.0))
    {
        let shape = |t: &Ttlv| {
            t.children()
                .iter()
                .map(|c| c.tag)
                .filter(|t| *t != Tag::RESPONSE_PAYLOAD)
                .collect::<Vec<_>>()
        };
        return if shape(expected) == shape(actual) {
            Ok(())
        } else {
            Err(format!("{here}: Query result differs"))
        };
    }
    match (&expected.value, &actual.value) {
        (Value::Structure(e), Value::Structure(a)) if expected.tag == Tag::RESPONSE_HEADER => {
            // Correlation values are optional in a response header (KMIP 2.1 §8.5).
            let strip = |v: &[Ttlv]| {
                let kept = v.iter().filter(|t| {
                    !matches!(t.tag, Tag::CLIENT_CORRELATION_VALUE | Tag::SERVER_CORRELATION_VALUE)
                });
                Ttlv::structure(Tag::RESPONSE_HEADER, kept.cloned().collect())
            };
            compare_children(&strip(e), &strip(a), bindings, path)
        }
        (Value::Structure(_), Value::Structure(_)) => {
            compare_children(expected, actual, bindings, path)
        }
        (Value::TextString(e), Value::TextString(a)) if e.starts_with('$') => {
            let key = e[1..].to_owned();
            match bindings.get(&key) {
                Some(bound) if bound != a => Err(format!("{here}: ${key} is {bound}, got {a}")),
                Some(_) => Ok(()),
                None => {
                    bindings.insert(key, a.clone());
                    Ok(())
                }
            }
        }
        (Value::DateTime(_), Value::DateTime(_)) => Ok(()),
        (Value::ByteString(e), Value::ByteString(a)) if text::hex(e).starts_with(ANY_BYTES) => {
            let name = text::unhex(&text::hex(e)[ANY_BYTES.len()..]).unwrap_or_default();
            let key = String::from_utf8_lossy(&name).into_owned();
            match bindings.get(&key) {
                Some(bound) if *bound != text::hex(a) => Err(format!("{here}: ${key} differs")),
                _ => {
                    bindings.insert(key, text::hex(a));
                    Ok(())
                }
            }
        }
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{here}: expected {e:?}, got {a:?}")),
    }
}

/// Compares two structures' children: in order, except where order carries no meaning
/// (attribute lists, response payloads).
fn compare_children(
    expected: &Ttlv,
    actual: &Ttlv,
    bindings: &mut HashMap<String, String>,
    path: &str,
) -> Result<(), String> {
    let here = format!("{path}/{}", text::tag_to_text(expected.tag));
    // KMIP 1.4 §3.17: a Digest carries its value only where the server has the key
    // material; for private keys generated in the HSM it names the algorithm and format.
    let stripped;
    let digest = |t: &Ttlv| t.children().iter().any(|c| c.tag == Tag::HASHING_ALGORITHM);
    let has_value = |t: &Ttlv| t.children().iter().any(|c| c.tag == Tag::DIGEST_VALUE);
    let expected = if digest(expected) && digest(actual) && !has_value(actual) {
        let kept = expected.children().iter().filter(|c| c.tag != Tag::DIGEST_VALUE);
        stripped = Ttlv::structure(expected.tag, kept.cloned().collect());
        &stripped
    } else {
        expected
    };
    let (e, a) = (expected.children(), actual.children());
    let names =
        |v: &[Ttlv]| v.iter().map(|t| text::tag_to_text(t.tag)).collect::<Vec<_>>().join(",");
    if e.len() != a.len() {
        return Err(format!("{here}: expected [{}], got [{}]", names(e), names(a)));
    }
    let unordered = matches!(expected.tag, Tag::ATTRIBUTES | Tag::RESPONSE_PAYLOAD);
    if unordered {
        let mut used = vec![false; a.len()];
        for ec in e {
            let mut found = false;
            let mut last_err = String::new();
            for (i, ac) in a.iter().enumerate() {
                if used[i] || ac.tag != ec.tag {
                    continue;
                }
                let mut trial = bindings.clone();
                match compare(ec, ac, &mut trial, &here) {
                    Ok(()) => {
                        *bindings = trial;
                        used[i] = true;
                        found = true;
                        break;
                    }
                    Err(e) => last_err = e,
                }
            }
            if !found {
                return Err(if last_err.is_empty() {
                    format!("{here}: missing {}", text::tag_to_text(ec.tag))
                } else {
                    last_err
                });
            }
        }
        Ok(())
    } else {
        for (ec, ac) in e.iter().zip(a) {
            compare(ec, ac, bindings, &here)?;
        }
        Ok(())
    }
}

/// How requests reach the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    /// Binary TTLV over mutual TLS on the KMIP port.
    Ttlv,
    /// XML over HTTPS (`POST /kmip`), the test cases' own encoding.
    XmlHttps,
}

fn run_case(
    server: &Server,
    certs: &Path,
    name: &str,
    file: &Path,
    transport: Transport,
) -> Result<usize, String> {
    let limits = Limits::default();
    let text = std::fs::read_to_string(file).unwrap();
    let mut bindings = HashMap::new();
    let mut seen = HashMap::new();
    let mut client = Client::connect(server, certs, name);
    let tls = tls_config(certs, Some(name));
    let mut pending: Option<(Ttlv, Ttlv)> = None;
    let mut chosen = Chosen::default();
    let mut steps = 0;
    for (is_request, element) in messages(&text) {
        if is_request {
            let filled = fill(&element, &bindings, &seen, true)?;
            let mut request = xml::decode(&filled, &limits).map_err(|e| format!("request: {e}"))?;
            chosen.substitute(&mut request);
            let sent = request.clone();
            pending = Some((
                sent,
                match transport {
                    Transport::Ttlv => {
                        let bytes = client
                            .send_raw(&binary::encode(&request))
                            .map_err(|e| format!("i/o: {e}"))?;
                        binary::decode(&bytes, &limits).map_err(|e| e.to_string())?
                    }
                    Transport::XmlHttps => {
                        let body = xml::encode(&request);
                        let (status, body) = https(
                            server,
                            tls.clone(),
                            "POST",
                            "/kmip",
                            "text/xml",
                            body.as_bytes(),
                        );
                        if status != 200 {
                            return Err(format!("HTTP {status}"));
                        }
                        let text = String::from_utf8(body).map_err(|e| e.to_string())?;
                        xml::decode(&text, &limits).map_err(|e| format!("response XML: {e}"))?
                    }
                },
            ));
        } else {
            let (request, mut actual) = pending.take().ok_or("response without request")?;
            let filled = fill(&element, &bindings, &seen, false)?;
            let expected = xml::decode(&filled, &limits).map_err(|e| format!("expected: {e}"))?;
            chosen.note_keys(&request, &actual);
            chosen.ciphertext(&request, &expected, &mut actual)?;
            // A later request may name a value of this response by its tag (`$MAC_DATA`
            // for MAC Data) where the expected response spelled the value out.
            seen.extend(byte_fields(&actual));
            compare(&expected, &actual, &mut bindings, "").map_err(|e| {
                let got = ResponseMessage::from_ttlv(&actual)
                    .ok()
                    .and_then(|r| r.batch_items.first().and_then(|b| b.result_message.clone()))
                    .unwrap_or_default();
                format!("step {steps}: {e} ({got})")
            })?;
            steps += 1;
        }
    }
    Ok(steps)
}

/// The Byte String fields of a response payload, by their placeholder names (the tag's
/// name in capitals, `MAC_DATA`), as hex.
fn byte_fields(message: &Ttlv) -> Vec<(String, String)> {
    let Some((_, payload, _)) = first_item(message, Tag::RESPONSE_PAYLOAD) else {
        return Vec::new();
    };
    payload
        .children()
        .iter()
        .filter_map(|t| {
            let name = t.tag.name()?.replace([' ', '-', '/'], "_").to_ascii_uppercase();
            t.as_bytes().ok().map(|b| (name, text::hex(b)))
        })
        .collect()
}

/// The first batch item's operation, payload (request or response) and unique identifier.
fn first_item(message: &Ttlv, payload: Tag) -> Option<(Value, &Ttlv, Option<String>)> {
    let item = message.find(Tag::BATCH_ITEM)?;
    let op = item.find(Tag::OPERATION)?.value.clone();
    let payload = item.find(payload)?;
    let id = payload.find(Tag::UNIQUE_IDENTIFIER).and_then(|u| u.as_text().ok()).map(str::to_owned);
    Some((op, payload, id))
}

/// What the server chose in a case so far, for comparing ciphertexts: the keys whose
/// material it generated or that encrypt with randomness (public keys), and the
/// ciphertexts (and tags) it returned in place of the expected ones, which later requests
/// of the case send back.
#[derive(Default)]
struct Chosen {
    random_keys: std::collections::HashSet<String>,
    substitutes: HashMap<Vec<u8>, Vec<u8>>,
}

impl Chosen {
    /// Notes the keys a request/response pair made that encrypt unpredictably: keys the
    /// server generated (Create) and public keys (RSA encryption is randomized: OAEP's
    /// seed, PKCS#1 v1.5's padding string).
    fn note_keys(&mut self, request: &Ttlv, actual: &Ttlv) {
        use kmip::enums::{ObjectType, Operation};
        let Some((op, payload, _)) = first_item(request, Tag::REQUEST_PAYLOAD) else { return };
        let public = payload.find(Tag::OBJECT_TYPE).map(|t| &t.value)
            == Some(&Value::Enumeration(ObjectType::PUBLIC_KEY.0));
        let made = op == Value::Enumeration(Operation::CREATE.0)
            || (op == Value::Enumeration(Operation::REGISTER.0) && public);
        if made {
            if let Some((_, _, Some(id))) = first_item(actual, Tag::RESPONSE_PAYLOAD) {
                self.random_keys.insert(id);
            }
        }
    }

    /// An Encrypt with such a key, or with an IV the server picked, returns a ciphertext
    /// (and tag) of the server's choosing: compared by length, then taken as the expected
    /// one, and remembered so that the case's later requests decrypt what the server
    /// returned.
    fn ciphertext(
        &mut self,
        request: &Ttlv,
        expected: &Ttlv,
        actual: &mut Ttlv,
    ) -> Result<(), String> {
        let encrypt = Value::Enumeration(kmip::enums::Operation::ENCRYPT.0);
        let Some((op, req, Some(id))) = first_item(request, Tag::REQUEST_PAYLOAD) else {
            return Ok(());
        };
        let server_iv = req.find(Tag::IV_COUNTER_NONCE).is_none()
            && first_item(actual, Tag::RESPONSE_PAYLOAD)
                .is_some_and(|(_, p, _)| p.find(Tag::IV_COUNTER_NONCE).is_some());
        if op != encrypt || !(self.random_keys.contains(&id) || server_iv) {
            return Ok(());
        }
        // The IV it picked is random too (Random IV, KMIP 1.4 §3.6).
        let iv = Some(Tag::IV_COUNTER_NONCE).filter(|_| server_iv);
        for tag in [Tag::DATA, Tag::AUTHENTICATED_ENCRYPTION_TAG].into_iter().chain(iv) {
            let field = |m: &Ttlv| {
                first_item(m, Tag::RESPONSE_PAYLOAD)
                    .and_then(|(_, p, _)| p.find(tag).and_then(|d| d.as_bytes().ok()))
                    .map(<[u8]>::to_vec)
            };
            let (Some(want), Some(got)) = (field(expected), field(actual)) else { continue };
            // A placeholder there is bound like any other.
            if text::hex(&want).starts_with(ANY_BYTES) {
                continue;
            }
            if want.len() != got.len() {
                return Err(format!("{} of another length", text::tag_to_text(tag)));
            }
            replace(actual, tag, &want);
            self.substitutes.insert(want, got);
        }
        Ok(())
    }

    /// `request` with the server's ciphertexts in place of the expected ones.
    fn substitute(&self, t: &mut Ttlv) {
        match &mut t.value {
            Value::ByteString(b) => {
                if let Some(with) = self.substitutes.get(b) {
                    *b = with.clone();
                }
            }
            Value::Structure(children) => children.iter_mut().for_each(|c| self.substitute(c)),
            _ => {}
        }
    }
}

fn replace(t: &mut Ttlv, tag: Tag, with: &[u8]) {
    if t.tag == tag {
        t.value = Value::ByteString(with.to_vec());
    } else if let Value::Structure(children) = &mut t.value {
        children.iter_mut().for_each(|c| replace(c, tag, with));
    }
}

/// Runs every case over `transport`; returns the names of the cases that passed.
fn run_all(transport: Transport) -> Vec<String> {
    let dir = temp_dir("strongroom-oasis");
    // The test cases of KMIP 2.1's baseline profile mark themselves with Interop.
    let config = dir.join("interop.toml");
    std::fs::write(&config, "[kmip]\ninterop = true\n").unwrap();
    let data = dir.join("data");
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()]);
    let mut certs: HashMap<String, PathBuf> = HashMap::new();
    let mut per_profile: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut passed = Vec::new();
    for file in case_files() {
        let case = file.file_stem().unwrap().to_string_lossy().to_string();
        let version = file
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let profile =
            format!("{version} {}", case.split("-M-").next().unwrap().split("-O-").next().unwrap());
        // One client identity per profile keeps Locate results apart.
        let identity = profile.replace([' ', '.'], "-");
        let cert_dir =
            certs.entry(identity.clone()).or_insert_with(|| client_cert(&data, &identity)).clone();
        let entry = per_profile.entry(profile).or_default();
        entry.1 += 1;
        match run_case(&server, &cert_dir, &identity, &file, transport) {
            Ok(_) => {
                entry.0 += 1;
                passed.push(case);
            }
            Err(e) => eprintln!("{transport:?} {version}/{case}: {e}"),
        }
    }
    println!("\nOASIS KMIP profile test cases over {transport:?} (passed/total):");
    for (profile, (p, t)) in &per_profile {
        println!("  {profile:<20} {p:>3}/{t}");
    }
    let total: usize = per_profile.values().map(|(_, t)| t).sum();
    println!("  all                  {:>3}/{total}\n  passed: {}", passed.len(), passed.join(" "));
    server.stop();
    passed
}

#[test]
fn oasis_profile_test_cases_over_ttlv() {
    let passed = run_all(Transport::Ttlv);
    assert!(
        passed.len() >= FLOOR,
        "only {} cases passed over TTLV; the floor is {FLOOR}",
        passed.len()
    );
}

#[test]
fn oasis_profile_test_cases_over_xml_https() {
    let passed = run_all(Transport::XmlHttps);
    assert!(
        passed.len() >= FLOOR,
        "only {} cases passed over XML/HTTPS; the floor is {FLOOR}",
        passed.len()
    );
}
