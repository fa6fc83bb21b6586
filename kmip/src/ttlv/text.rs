//! What the XML and JSON encodings share (KMIP Profiles 2.1 §5.4 and §5.5): names of tags,
//! enumeration values and mask flags in their encoded form (`SymmetricKey`, `SHA_256`,
//! `PKCS_11Function`), hex forms for values without a name, and dates as ISO 8601.

use std::collections::HashMap;
use std::sync::OnceLock;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::tag::Tag;

/// The encoded form of a specification name: words joined without separators, each word
/// capitalised; an underscore stands before a word that starts with a digit and for a hyphen
/// between two acronyms (`SHA-256` → `SHA_256`, `HMAC-SHA256` → `HMAC_SHA256`, but
/// `Pre-Active` → `PreActive`); underscores are kept (`C_Initialize`).
pub fn encoded_name(spec: &str) -> String {
    if spec == "3DES" {
        return "DES3".to_owned();
    }
    let is_acronym = |w: &str| w.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let mut out = String::with_capacity(spec.len());
    let mut prev: Option<&str> = None;
    let mut rest = spec;
    while !rest.is_empty() {
        let start =
            rest.find(|c: char| c.is_ascii_alphanumeric() || c == '_').unwrap_or(rest.len());
        let sep = &rest[..start];
        rest = &rest[start..];
        let end =
            rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let word = &rest[..end];
        rest = &rest[end..];
        let Some(first) = word.chars().next() else { break };
        if let Some(p) = prev {
            let acronyms = sep == "-" && is_acronym(p) && is_acronym(word);
            if first.is_ascii_digit() || acronyms {
                out.push('_');
            }
        }
        out.push(first.to_ascii_uppercase());
        out.push_str(&word[first.len_utf8()..]);
        prev = Some(word);
    }
    out
}

fn tag_names() -> &'static HashMap<String, Tag> {
    static MAP: OnceLock<HashMap<String, Tag>> = OnceLock::new();
    MAP.get_or_init(|| {
        crate::spec_tags::TAG_NAMES.iter().map(|(v, n)| (encoded_name(n), Tag(*v))).collect()
    })
}

/// The encoded name of a tag, or its hex form (`0x540001`) when it has none.
pub fn tag_to_text(tag: Tag) -> String {
    match tag.name() {
        Some(n) => encoded_name(n),
        None => format!("0x{:06X}", tag.0),
    }
}

/// The tag an encoded name (or hex form) stands for.
pub fn tag_from_text(text: &str) -> Option<Tag> {
    if let Some(hex) = text.strip_prefix("0x") {
        // Only what the binary encoding can carry (a stored value is kept in it).
        return u32::from_str_radix(hex, 16).ok().map(Tag).filter(|t| t.is_valid());
    }
    tag_names().get(text).copied()
}

/// The tag whose value names apply to an item: an Attribute Value (KMIP 1.x) takes those of
/// the attribute its sibling Attribute Name names.
pub fn naming_tag(tag: Tag, siblings: &[crate::Ttlv]) -> Tag {
    if tag != Tag::ATTRIBUTE_VALUE {
        return tag;
    }
    // The name leads its Attribute (KMIP 1.4 §2.1.1: Name, Index, Value; a KMIP 2.1 vendor
    // attribute, Table 150: Vendor Identification, Name, Value): looking further would make a structure of many
    // Attribute Values cost the square of their number.
    siblings
        .iter()
        .take(3)
        .find(|s| s.tag == Tag::ATTRIBUTE_NAME)
        .and_then(|s| s.as_text().ok())
        .and_then(Tag::from_name)
        .unwrap_or(tag)
}

/// An Enumeration value of an item tagged `tag`: its encoded name, else hex.
pub fn enum_to_text(tag: Tag, value: u32) -> String {
    // Attribute Reference (KMIP 2.1 §5.5) holds a tag as its enumeration value.
    if tag == Tag::ATTRIBUTE_REFERENCE
        && let Some(n) = Tag(value).name()
    {
        return encoded_name(n);
    }
    crate::enums::enum_values(tag)
        .and_then(|vs| vs.iter().find(|(v, _)| *v == value))
        .map(|(_, n)| encoded_name(n))
        .unwrap_or_else(|| format!("0x{value:08X}"))
}

/// The value of the entry of `values` (an enumeration's, or a mask's flags) whose encoded
/// name is `text`. Each table's names are encoded once, into a map kept for later lookups:
/// a message may hold many thousands of named values, and some tables hundreds of names.
fn value_by_name(values: &'static [(u32, &'static str)], text: &str) -> Option<u32> {
    type Names = std::sync::Arc<HashMap<String, u32>>;
    static MAPS: OnceLock<std::sync::RwLock<HashMap<usize, Names>>> = OnceLock::new();
    let maps = MAPS.get_or_init(Default::default);
    // The tables are statics: where one lies identifies it.
    let key = values.as_ptr() as usize;
    let known = maps.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key).cloned();
    let names = known.unwrap_or_else(|| {
        let mut map = HashMap::new();
        // The first of a name that appears twice, as a scan would find.
        for (v, n) in values {
            map.entry(encoded_name(n)).or_insert(*v);
        }
        let names: Names = std::sync::Arc::new(map);
        let mut maps = maps.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        maps.entry(key).or_insert(names).clone()
    });
    names.get(text).copied()
}

/// Reads an Enumeration value of an item tagged `tag`, by name or hex.
pub fn enum_from_text(tag: Tag, text: &str) -> Option<u32> {
    if let Some(hex) = text.strip_prefix("0x") {
        return u32::from_str_radix(hex, 16).ok();
    }
    if tag == Tag::ATTRIBUTE_REFERENCE {
        return tag_from_text(text).map(|t| t.0);
    }
    value_by_name(crate::enums::enum_values(tag)?, text)
}

/// An Integer of a mask-valued tag as flag names separated by spaces, when every set bit has
/// a name; otherwise `None` (the caller writes a number).
pub fn mask_to_text(tag: Tag, value: i32) -> Option<String> {
    let flags = crate::enums::mask_flags(tag)?;
    let mut rest = value as u32;
    let mut names = Vec::new();
    for (bit, name) in flags {
        if rest & bit != 0 {
            names.push(encoded_name(name));
            rest &= !bit;
        }
    }
    (rest == 0 && !names.is_empty()).then(|| names.join(" "))
}

/// Reads an Integer: decimal, hex (`0x…`), or mask flag names separated by spaces.
pub fn int_from_text(tag: Tag, text: &str) -> Option<i32> {
    if let Ok(v) = text.parse::<i32>() {
        return Some(v);
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return u32::from_str_radix(hex, 16).ok().map(|v| v as i32);
    }
    let flags = crate::enums::mask_flags(tag)?;
    let mut v = 0u32;
    for word in text.split_whitespace() {
        v |= value_by_name(flags, word)?;
    }
    Some(v as i32)
}

/// A Date-Time as ISO 8601 with an explicit offset, as the test cases write it.
pub fn datetime_to_text(secs: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("0x{secs:016X}"),
    }
}

/// Reads a Date-Time: ISO 8601 (RFC 3339) or hex seconds.
pub fn datetime_from_text(text: &str) -> Option<i64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(|v| v as i64);
    }
    OffsetDateTime::parse(text, &Rfc3339).ok().map(|t| t.unix_timestamp())
}

/// A Date-Time Extended (microseconds) as ISO 8601 with six fractional digits.
pub fn datetime_ext_to_text(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let base = datetime_to_text(secs);
    match base.strip_suffix("+00:00") {
        Some(b) => format!("{b}.{frac:06}+00:00"),
        None => format!("0x{micros:016X}"),
    }
}

/// Reads a Date-Time Extended: ISO 8601 with fractional seconds, or hex microseconds.
pub fn datetime_ext_from_text(text: &str) -> Option<i64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(|v| v as i64);
    }
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    Some(t.unix_timestamp() * 1_000_000 + i64::from(t.microsecond()))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Reads hex (either case); `None` for odd lengths or other characters.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| text.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enums::{CryptographicAlgorithm, HashingAlgorithm, State};

    #[test]
    fn hex_tags_are_only_those_the_binary_encoding_carries() {
        assert_eq!(tag_from_text("0x540001"), Some(Tag(0x540001)));
        assert_eq!(tag_from_text("0x420001"), Some(Tag(0x420001)));
        for bad in ["0x000001", "0x550001", "0x01420001"] {
            assert_eq!(tag_from_text(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_follow_the_profiles_rules() {
        assert_eq!(encoded_name("Pre-Active"), "PreActive");
        assert_eq!(encoded_name("SHA-256"), "SHA_256");
        assert_eq!(encoded_name("PKCS#11 Function"), "PKCS_11Function");
        assert_eq!(encoded_name("X.509 Certificate Identifier"), "X_509CertificateIdentifier");
        assert_eq!(encoded_name("Private Key Template-Attribute"), "PrivateKeyTemplateAttribute");
        assert_eq!(encoded_name("3DES"), "DES3");
        assert_eq!(encoded_name("HMAC-SHA256"), "HMAC_SHA256");
        assert_eq!(encoded_name("On-line Storage"), "OnLineStorage");
        assert_eq!(encoded_name("C_Initialize"), "C_Initialize");
        assert_eq!(enum_to_text(Tag::STATE, State::PRE_ACTIVE.0), "PreActive");
        assert_eq!(
            enum_from_text(Tag::HASHING_ALGORITHM, "SHA_256"),
            Some(HashingAlgorithm::SHA_256.0)
        );
        assert_eq!(
            enum_from_text(Tag::CRYPTOGRAPHIC_ALGORITHM, "AES"),
            Some(CryptographicAlgorithm::AES.0)
        );
        assert_eq!(enum_to_text(Tag::ATTRIBUTE_REFERENCE, Tag::STATE.0), "State");
        assert_eq!(int_from_text(Tag::CRYPTOGRAPHIC_USAGE_MASK, "Encrypt Decrypt"), Some(12));
        assert_eq!(
            mask_to_text(Tag::CRYPTOGRAPHIC_USAGE_MASK, 12).as_deref(),
            Some("Encrypt Decrypt")
        );
        assert_eq!(datetime_from_text("2000-02-02T00:00:00+10:00"), Some(949_413_600));
        assert_eq!(datetime_to_text(949_413_600), "2000-02-01T14:00:00+00:00");
        assert_eq!(datetime_ext_from_text(&datetime_ext_to_text(1_234_567)), Some(1_234_567));
    }
}
