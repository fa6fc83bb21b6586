//! The XML and JSON encodings against the OASIS KMIP Profiles test cases: every message of
//! every case (KMIP 1.4 and 2.1, mandatory and optional) decodes from XML, and survives
//! XML → tree → binary TTLV → tree, tree → XML → tree and tree → JSON → tree unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use kmip::ttlv::binary::{self, Limits};
use kmip::ttlv::{json, xml};

/// Replaces the placeholders of values the server would choose with fixed values of the
/// right type, so the messages decode.
fn fill_placeholders(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, part) in text.split("value=\"$").enumerate() {
        if i == 0 {
            out.push_str(part);
            continue;
        }
        let end = part.find('"').unwrap();
        let (placeholder, rest) = part.split_at(end);
        let typed = out.rsplit("type=\"").next().unwrap_or("");
        let filled = if typed.starts_with("DateTime") {
            "2001-01-01T10:00:00+00:00".to_owned()
        } else if typed.starts_with("ByteString") {
            "00112233".to_owned()
        } else {
            format!("${placeholder}")
        };
        out.push_str("value=\"");
        out.push_str(&filled);
        out.push_str(rest);
    }
    out
}

fn cases() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/oasis-kmip-profiles");
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

#[test]
fn every_oasis_test_case_message_round_trips() {
    let limits = Limits::default();
    let mut messages = 0;
    let files = cases();
    assert!(files.len() >= 150, "test cases missing: {}", files.len());
    for path in &files {
        let text = fill_placeholders(&std::fs::read_to_string(path).unwrap());
        let items = xml::decode_all(&text, &limits).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert!(items.len() >= 2, "{path:?}: no messages");
        for item in items {
            let bytes = binary::encode(&item);
            assert_eq!(binary::decode(&bytes, &limits).unwrap(), item, "{path:?} binary");
            let again = xml::decode(&xml::encode(&item), &limits)
                .unwrap_or_else(|e| panic!("{path:?}: {e}"));
            assert_eq!(again, item, "{path:?} xml");
            let again = json::decode(&json::encode(&item), &limits)
                .unwrap_or_else(|e| panic!("{path:?}: {e}"));
            assert_eq!(again, item, "{path:?} json");
            messages += 1;
        }
    }
    assert!(messages > 1000, "{messages}");
}

#[test]
fn text_decoders_refuse_bad_input() {
    let limits = Limits::default();
    let bad_xml = [
        "<RequestMessage><BatchCount type=\"Integer\" value=\"x\"/></RequestMessage>",
        "<NoSuchTag type=\"Integer\" value=\"1\"/>",
        "<RequestMessage><BatchCount type=\"Integer\" value=\"1\"/>",
        "<BatchCount type=\"Nope\" value=\"1\"/>",
        "<BatchCount value=\"1\"/>",
        "<ObjectType type=\"Enumeration\" value=\"NotAType\"/>",
        "plain text",
        "<A/><B/>",
        // A primitive without a value is not 0.
        "<CryptographicUsageMask type=\"Integer\"/>",
    ];
    for x in bad_xml {
        assert!(xml::decode(x, &limits).is_err(), "{x}");
    }
    let deep = "<RequestMessage>".repeat(64) + &"</RequestMessage>".repeat(64);
    assert!(matches!(xml::decode(&deep, &limits), Err(kmip::ttlv::TextError::TooDeep { .. })));
    let bad_json = [
        r#"{"tag":"BatchCount","type":"Integer","value":"x"}"#,
        r#"{"tag":"Nope","type":"Integer","value":1}"#,
        r#"{"tag":"BatchCount","value":1}"#,
        r#"[1,2]"#,
        r#"{"tag":"RequestMessage","value":[{"tag":"BatchCount"}]}"#,
        r#"{"tag":"CryptographicUsageMask","type":"Integer","value":null}"#,
        r#"{"tag":"CryptographicUsageMask","type":"Integer","value":[]}"#,
    ];
    for j in bad_json {
        assert!(json::decode(j, &limits).is_err(), "{j}");
    }
    // Depth counts structures in all three encodings: an empty one at the limit's depth
    // plus one is too deep, a primitive inside the deepest allowed one is not.
    let max = limits.max_depth;
    let nest = |inner: &str, levels: usize| {
        "<RequestMessage>".repeat(levels) + inner + &"</RequestMessage>".repeat(levels)
    };
    let empty_too_deep = nest("<RequestMessage/>", max);
    assert!(matches!(
        xml::decode(&empty_too_deep, &limits),
        Err(kmip::ttlv::TextError::TooDeep { .. })
    ));
    let leaf = nest("<BatchCount type=\"Integer\" value=\"1\"/>", max);
    let item = xml::decode(&leaf, &limits).unwrap();
    assert_eq!(json::decode(&json::encode(&item), &limits).unwrap(), item);
    assert_eq!(binary::decode(&binary::encode(&item), &limits).unwrap(), item);
    // Too many items is refused before the JSON is parsed; braces inside strings are no
    // items.
    let few = Limits { max_items: 3, ..Limits::default() };
    let four = r#"{"tag":"RequestMessage","value":[{},{},{}]}"#;
    assert!(matches!(json::decode(four, &few), Err(kmip::ttlv::TextError::TooManyItems { .. })));
    let braces = r#"{"tag":"UniqueIdentifier","type":"TextString","value":"{{{\\\"{{"}"#;
    assert!(json::decode(braces, &few).is_ok());
    let small = Limits { max_bytes: 10, ..Limits::default() };
    assert!(json::decode(r#"{"tag":"BatchCount","type":"Integer","value":1}"#, &small).is_err());
}
