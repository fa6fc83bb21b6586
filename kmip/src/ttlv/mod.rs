//! The typed TTLV tree (KMIP 1.4 §9.1, KMIP 2.1 §9): every item carries its tag and item
//! type, so each codec (binary, XML, JSON) maps it without guessing.

pub mod binary;
mod error;
pub mod json;
pub mod text;
pub mod xml;

pub use error::{DecodeError, DecodeErrorKind, FieldError, TextError};

use crate::tag::{ItemType, Tag};

/// One TTLV item: a tag and a typed value (KMIP 2.1 §9.1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ttlv {
    /// The item's tag.
    pub tag: Tag,
    /// The item's type and value.
    pub value: Value,
}

/// A TTLV value with its item type (KMIP 2.1 §9.1.1.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Structure: an ordered list of items.
    Structure(Vec<Ttlv>),
    /// Integer.
    Integer(i32),
    /// Long Integer.
    LongInteger(i64),
    /// Big Integer: two's complement, big-endian; its encoded length is a multiple of 8.
    BigInteger(Vec<u8>),
    /// Enumeration.
    Enumeration(u32),
    /// Boolean.
    Boolean(bool),
    /// Text String (UTF-8).
    TextString(String),
    /// Byte String.
    ByteString(Vec<u8>),
    /// Date-Time: seconds since the POSIX epoch.
    DateTime(i64),
    /// Interval: seconds.
    Interval(u32),
    /// Date-Time Extended: microseconds since the POSIX epoch (KMIP 2.0).
    DateTimeExtended(i64),
}

impl Value {
    /// The item type of this value.
    pub fn item_type(&self) -> ItemType {
        match self {
            Value::Structure(_) => ItemType::Structure,
            Value::Integer(_) => ItemType::Integer,
            Value::LongInteger(_) => ItemType::LongInteger,
            Value::BigInteger(_) => ItemType::BigInteger,
            Value::Enumeration(_) => ItemType::Enumeration,
            Value::Boolean(_) => ItemType::Boolean,
            Value::TextString(_) => ItemType::TextString,
            Value::ByteString(_) => ItemType::ByteString,
            Value::DateTime(_) => ItemType::DateTime,
            Value::Interval(_) => ItemType::Interval,
            Value::DateTimeExtended(_) => ItemType::DateTimeExtended,
        }
    }
}

impl Ttlv {
    /// A new item.
    pub fn new(tag: Tag, value: Value) -> Self {
        Ttlv { tag, value }
    }

    /// A structure item.
    pub fn structure(tag: Tag, children: Vec<Ttlv>) -> Self {
        Ttlv::new(tag, Value::Structure(children))
    }

    /// The children of a structure (empty for a primitive).
    pub fn children(&self) -> &[Ttlv] {
        match &self.value {
            Value::Structure(c) => c,
            _ => &[],
        }
    }

    /// The first child with `tag`.
    pub fn find(&self, tag: Tag) -> Option<&Ttlv> {
        self.children().iter().find(|c| c.tag == tag)
    }

    /// Every child with `tag`, in order.
    pub fn find_all(&self, tag: Tag) -> impl Iterator<Item = &Ttlv> {
        self.children().iter().filter(move |c| c.tag == tag)
    }

    /// The first child with `tag`, or a [`FieldError::Missing`].
    pub fn require(&self, tag: Tag) -> Result<&Ttlv, FieldError> {
        self.find(tag).ok_or(FieldError::Missing { parent: self.tag, tag })
    }

    fn wrong_type(&self, expected: ItemType) -> FieldError {
        FieldError::WrongType { tag: self.tag, expected, found: self.value.item_type() }
    }

    /// This item as an Integer.
    pub fn as_i32(&self) -> Result<i32, FieldError> {
        match self.value {
            Value::Integer(v) => Ok(v),
            _ => Err(self.wrong_type(ItemType::Integer)),
        }
    }

    /// This item as a Long Integer.
    pub fn as_i64(&self) -> Result<i64, FieldError> {
        match self.value {
            Value::LongInteger(v) => Ok(v),
            _ => Err(self.wrong_type(ItemType::LongInteger)),
        }
    }

    /// This item as an Enumeration.
    pub fn as_enum(&self) -> Result<u32, FieldError> {
        match self.value {
            Value::Enumeration(v) => Ok(v),
            _ => Err(self.wrong_type(ItemType::Enumeration)),
        }
    }

    /// This item as a Boolean.
    pub fn as_bool(&self) -> Result<bool, FieldError> {
        match self.value {
            Value::Boolean(v) => Ok(v),
            _ => Err(self.wrong_type(ItemType::Boolean)),
        }
    }

    /// This item as a Text String.
    pub fn as_text(&self) -> Result<&str, FieldError> {
        match &self.value {
            Value::TextString(v) => Ok(v),
            _ => Err(self.wrong_type(ItemType::TextString)),
        }
    }

    /// This item as a Byte String.
    pub fn as_bytes(&self) -> Result<&[u8], FieldError> {
        match &self.value {
            Value::ByteString(v) => Ok(v),
            _ => Err(self.wrong_type(ItemType::ByteString)),
        }
    }

    /// This item as a Date-Time (seconds); a Date-Time Extended is truncated to seconds.
    pub fn as_datetime(&self) -> Result<i64, FieldError> {
        match self.value {
            Value::DateTime(v) => Ok(v),
            Value::DateTimeExtended(v) => Ok(v.div_euclid(1_000_000)),
            _ => Err(self.wrong_type(ItemType::DateTime)),
        }
    }

    /// This item as an Interval.
    pub fn as_interval(&self) -> Result<u32, FieldError> {
        match self.value {
            Value::Interval(v) => Ok(v),
            _ => Err(self.wrong_type(ItemType::Interval)),
        }
    }

    /// This item as a structure's children.
    pub fn as_structure(&self) -> Result<&[Ttlv], FieldError> {
        match &self.value {
            Value::Structure(c) => Ok(c),
            _ => Err(self.wrong_type(ItemType::Structure)),
        }
    }
}
