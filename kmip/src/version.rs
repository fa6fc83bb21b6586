//! Protocol Version (KMIP 1.4 §6.1, KMIP 2.1 §8.1) and the versions this crate speaks.

use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv, Value};

/// A KMIP protocol version (KMIP 2.1 §8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion {
    /// Protocol Version Major.
    pub major: i32,
    /// Protocol Version Minor.
    pub minor: i32,
}

impl ProtocolVersion {
    /// KMIP 1.0.
    pub const V1_0: ProtocolVersion = ProtocolVersion { major: 1, minor: 0 };
    /// KMIP 1.1.
    pub const V1_1: ProtocolVersion = ProtocolVersion { major: 1, minor: 1 };
    /// KMIP 1.2.
    pub const V1_2: ProtocolVersion = ProtocolVersion { major: 1, minor: 2 };
    /// KMIP 1.3.
    pub const V1_3: ProtocolVersion = ProtocolVersion { major: 1, minor: 3 };
    /// KMIP 1.4.
    pub const V1_4: ProtocolVersion = ProtocolVersion { major: 1, minor: 4 };
    /// KMIP 2.0.
    pub const V2_0: ProtocolVersion = ProtocolVersion { major: 2, minor: 0 };
    /// KMIP 2.1.
    pub const V2_1: ProtocolVersion = ProtocolVersion { major: 2, minor: 1 };

    /// Every version this crate speaks, newest first (the order Discover Versions answers in,
    /// KMIP 2.1 §6.1.22).
    pub const SUPPORTED: [ProtocolVersion; 7] =
        [Self::V2_1, Self::V2_0, Self::V1_4, Self::V1_3, Self::V1_2, Self::V1_1, Self::V1_0];

    /// Whether this version uses the KMIP 2.x attribute model (Attributes structure,
    /// Attribute Reference) rather than 1.x Template-Attribute.
    pub fn is_v2(self) -> bool {
        self.major >= 2
    }

    /// Whether this crate speaks this version.
    pub fn is_supported(self) -> bool {
        Self::SUPPORTED.contains(&self)
    }

    /// Reads a Protocol Version structure.
    pub fn from_ttlv(item: &Ttlv) -> Result<Self, FieldError> {
        Ok(ProtocolVersion {
            major: item.require(Tag::PROTOCOL_VERSION_MAJOR)?.as_i32()?,
            minor: item.require(Tag::PROTOCOL_VERSION_MINOR)?.as_i32()?,
        })
    }

    /// Encodes a Protocol Version structure.
    pub fn to_ttlv(self) -> Ttlv {
        Ttlv::structure(
            Tag::PROTOCOL_VERSION,
            vec![
                Ttlv::new(Tag::PROTOCOL_VERSION_MAJOR, Value::Integer(self.major)),
                Ttlv::new(Tag::PROTOCOL_VERSION_MINOR, Value::Integer(self.minor)),
            ],
        )
    }
}

impl std::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}
