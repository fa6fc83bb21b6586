//! Errors of the TTLV layer: decoding bytes into the tree, and reading typed fields out of it.

use crate::tag::{ItemType, Tag};

/// Why bytes could not be decoded as TTLV, with the byte offset and the tag path
/// (outermost first) of the item being decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("TTLV decode error at byte {offset} (path {path:?}): {kind}")]
pub struct DecodeError {
    /// Offset of the item header where decoding failed.
    pub offset: usize,
    /// Tags of the enclosing structures, outermost first, then the failing item's tag.
    pub path: Vec<Tag>,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

/// The kinds of TTLV decode failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// The input ends before the item does.
    #[error("truncated: needed {needed} bytes, {available} available")]
    Truncated {
        /// Bytes the item needs.
        needed: usize,
        /// Bytes left in the input.
        available: usize,
    },
    /// The message is larger than the configured maximum.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The declared length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Structures nest deeper than the configured maximum.
    #[error("nesting deeper than {max}")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// More items than the configured maximum.
    #[error("more than {max} items")]
    TooManyItems {
        /// The limit.
        max: usize,
    },
    /// The item type byte is not one KMIP defines.
    #[error("unknown item type 0x{0:02X}")]
    UnknownItemType(u8),
    /// A tag outside the 0x42xxxx and 0x54xxxx ranges.
    #[error("invalid tag 0x{0:06X}")]
    InvalidTag(u32),
    /// The length field does not fit the item type.
    #[error("length {len} is invalid for {item_type:?}")]
    BadLength {
        /// The item type.
        item_type: ItemType,
        /// The declared length.
        len: u32,
    },
    /// A Boolean whose value is neither 0 nor 1.
    #[error("boolean value {0} is neither 0 nor 1")]
    BadBoolean(u64),
    /// A Text String that is not UTF-8.
    #[error("text string is not valid UTF-8")]
    InvalidUtf8,
    /// Bytes after the top-level item.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
}

/// A typed field could not be read from a decoded tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// A required field is absent.
    #[error("{parent:?} lacks the required {tag:?}")]
    Missing {
        /// The structure searched.
        parent: Tag,
        /// The missing field.
        tag: Tag,
    },
    /// A field has the wrong item type.
    #[error("{tag:?} must be {expected:?}, found {found:?}")]
    WrongType {
        /// The field.
        tag: Tag,
        /// What the spec requires.
        expected: ItemType,
        /// What was sent.
        found: ItemType,
    },
    /// A field has a value the specification does not allow here.
    #[error("{tag:?}: {reason}")]
    Invalid {
        /// The field.
        tag: Tag,
        /// Why it is invalid.
        reason: &'static str,
    },
}

/// Why XML or JSON text could not be decoded as TTLV (KMIP Profiles 2.1 §5.4, §5.5).
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// Not well-formed XML.
    #[error("XML syntax error at byte {position}: {source}")]
    Xml {
        /// Byte offset.
        position: u64,
        /// The parser's error.
        #[source]
        source: quick_xml::Error,
    },
    /// Not valid JSON.
    #[error("JSON syntax error: {0}")]
    Json(#[source] serde_json::Error),
    /// A tag name that is neither a specification tag nor hex.
    #[error("unknown tag {0:?}")]
    UnknownTag(String),
    /// A malformed attribute.
    #[error("malformed attribute")]
    BadAttribute,
    /// An item type name KMIP does not define.
    #[error("unknown item type {0:?}")]
    UnknownType(String),
    /// A primitive without a type.
    #[error("{0} has a value but no type")]
    MissingType(String),
    /// A primitive without a value (KMIP Profiles §5.4 and §5.5 give every one a value;
    /// only a string's may be empty).
    #[error("{0} has a type but no value")]
    MissingValue(String),
    /// A value that does not read as its type.
    #[error("{tag}: {value:?} is not a valid {item_type}")]
    BadValue {
        /// The item's tag.
        tag: String,
        /// Its declared type.
        item_type: &'static str,
        /// The value (first 64 characters).
        value: String,
    },
    /// Text content where only elements belong.
    #[error("unexpected text content")]
    UnexpectedText,
    /// Start and end elements do not pair up.
    #[error("unbalanced elements")]
    Unbalanced,
    /// A JSON value that is not an item object.
    #[error("expected an object with tag, type and value")]
    NotAnItem,
    /// Not exactly one root item.
    #[error("expected one root item, found {0}")]
    RootCount(usize),
    /// Larger than the limit.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Nested deeper than the limit.
    #[error("nesting deeper than {max}")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// More items than the limit.
    #[error("more than {max} items")]
    TooManyItems {
        /// The limit.
        max: usize,
    },
}
