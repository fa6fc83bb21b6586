//! TTLV tags and item types (KMIP 1.4 §9.1.1, KMIP 2.1 §11.56 and §11.23).
//!
//! A [`Tag`] is an open newtype: every value the spec names has a constant (generated in
//! `spec_tags.rs`), and unknown or vendor tags (0x54xxxx) round-trip untouched.

use std::fmt;

/// A three-byte TTLV tag (KMIP 2.1 §11.56). Values 0x42xxxx are defined by the
/// specification, 0x54xxxx are extensions.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub u32);

impl Tag {
    /// The specification's name for this tag (for example `"Activation Date"`), if known.
    pub fn name(self) -> Option<&'static str> {
        crate::spec_tags::TAG_NAMES
            .binary_search_by_key(&self.0, |(v, _)| *v)
            .ok()
            .map(|i| crate::spec_tags::TAG_NAMES[i].1)
    }

    /// Whether the tag can be sent: three bytes, the first 0x42 (the specification's) or
    /// 0x54 (extensions), KMIP 2.1 §11.56. Every decoder refuses others.
    pub fn is_valid(self) -> bool {
        matches!(self.0 >> 16, 0x42 | 0x54)
    }

    /// The tag the specification names `name` (for example `"Activation Date"`).
    pub fn from_name(name: &str) -> Option<Tag> {
        // Asked for every attribute a message names: a map, not a scan of a thousand names.
        static BY_NAME: std::sync::OnceLock<std::collections::HashMap<&'static str, u32>> =
            std::sync::OnceLock::new();
        let by_name = BY_NAME.get_or_init(|| {
            let mut map = std::collections::HashMap::new();
            // The first of a name that appears twice, as a scan would find.
            for (v, n) in crate::spec_tags::TAG_NAMES {
                map.entry(*n).or_insert(*v);
            }
            map
        });
        by_name.get(name).map(|v| Tag(*v))
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "Tag(0x{:06X})", self.0),
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// TTLV item type byte (KMIP 1.4 §9.1.1.3, KMIP 2.1 §11.23). Closed: a byte outside this
/// list cannot be decoded because its length rules are unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ItemType {
    /// Structure (0x01).
    Structure = 0x01,
    /// 32-bit signed integer (0x02).
    Integer = 0x02,
    /// 64-bit signed integer (0x03).
    LongInteger = 0x03,
    /// Two's complement big-endian integer, length a multiple of 8 (0x04).
    BigInteger = 0x04,
    /// 32-bit unsigned enumeration (0x05).
    Enumeration = 0x05,
    /// Boolean, 8 bytes (0x06).
    Boolean = 0x06,
    /// UTF-8 text (0x07).
    TextString = 0x07,
    /// Octets (0x08).
    ByteString = 0x08,
    /// Seconds since the POSIX epoch, 64-bit signed (0x09).
    DateTime = 0x09,
    /// Seconds, 32-bit unsigned (0x0A).
    Interval = 0x0A,
    /// Microseconds since the POSIX epoch, 64-bit signed (0x0B, KMIP 2.0).
    DateTimeExtended = 0x0B,
}

impl ItemType {
    /// The item type for a type byte, if it is one KMIP defines.
    pub fn from_byte(b: u8) -> Option<ItemType> {
        use ItemType::*;
        Some(match b {
            0x01 => Structure,
            0x02 => Integer,
            0x03 => LongInteger,
            0x04 => BigInteger,
            0x05 => Enumeration,
            0x06 => Boolean,
            0x07 => TextString,
            0x08 => ByteString,
            0x09 => DateTime,
            0x0A => Interval,
            0x0B => DateTimeExtended,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(Tag::ACTIVATION_DATE.0, 0x420001);
        assert_eq!(Tag::ACTIVATION_DATE.name(), Some("Activation Date"));
        assert_eq!(Tag::from_name("Request Message"), Some(Tag::REQUEST_MESSAGE));
        assert_eq!(format!("{:?}", Tag(0x540001)), "Tag(0x540001)");
        // The specification text had a mangled space in this one.
        assert_eq!(Tag::from_name("Compromise Date"), Some(Tag::COMPROMISE_DATE));
    }

    #[test]
    fn every_name_is_plain_ascii_words() {
        for (tag, name) in crate::spec_tags::TAG_NAMES {
            assert!(name.is_ascii() && !name.contains("  "), "{tag:#x}: {name:?}");
        }
    }
}
