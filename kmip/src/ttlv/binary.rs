//! Binary TTLV encoding (KMIP 1.4 §9.1, KMIP 2.1 §9.1): 3-byte tag, 1-byte type, 4-byte
//! length, value padded to a multiple of 8 bytes. Works on byte slices only; the listener
//! asks [`frame_len`] how many bytes one message needs before calling [`decode`].

use super::{DecodeError, DecodeErrorKind, Ttlv, Value};
use crate::tag::{ItemType, Tag};

/// Size of an item header: tag (3), type (1), length (4).
pub const HEADER_LEN: usize = 8;

/// Limits every decode enforces before it allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole message, header included.
    pub max_bytes: usize,
    /// Deepest structure nesting (the top-level item is depth 1).
    pub max_depth: usize,
    /// Most items in one message.
    pub max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: 1 << 20, max_depth: 32, max_items: 65_536 }
    }
}

/// How many bytes the message starting at `buf` occupies, once its 8-byte header is
/// available (`None` before that). The length is the caller's to check against its limit.
pub fn frame_len(buf: &[u8]) -> Option<usize> {
    let header: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    Some(HEADER_LEN + padded(len))
}

fn padded(len: usize) -> usize {
    len.div_ceil(8) * 8
}

/// Decodes exactly one item from `buf`; bytes after it are an error.
pub fn decode(buf: &[u8], limits: &Limits) -> Result<Ttlv, DecodeError> {
    if buf.len() > limits.max_bytes {
        return Err(DecodeError {
            offset: 0,
            path: vec![],
            kind: DecodeErrorKind::TooLarge { len: buf.len(), max: limits.max_bytes },
        });
    }
    let mut d = Decoder { buf, pos: 0, items: 0, limits, path: Vec::new() };
    let item = d.item()?;
    if d.pos != buf.len() {
        return Err(d.err(DecodeErrorKind::TrailingBytes(buf.len() - d.pos)));
    }
    Ok(item)
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    items: usize,
    limits: &'a Limits,
    path: Vec<Tag>,
}

impl Decoder<'_> {
    fn err(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError { offset: self.pos, path: self.path.clone(), kind }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let available = self.buf.len() - self.pos;
        if n > available {
            return Err(self.err(DecodeErrorKind::Truncated { needed: n, available }));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn item(&mut self) -> Result<Ttlv, DecodeError> {
        self.items += 1;
        if self.items > self.limits.max_items {
            return Err(self.err(DecodeErrorKind::TooManyItems { max: self.limits.max_items }));
        }
        let start = self.pos;
        let h: [u8; HEADER_LEN] = self.take(HEADER_LEN)?.try_into().unwrap_or([0; HEADER_LEN]);
        let tag = u32::from_be_bytes([0, h[0], h[1], h[2]]);
        let type_byte = h[3];
        let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        self.path.push(Tag(tag));
        self.pos = start;
        if !Tag(tag).is_valid() {
            return Err(self.err(DecodeErrorKind::InvalidTag(tag)));
        }
        let Some(item_type) = ItemType::from_byte(type_byte) else {
            return Err(self.err(DecodeErrorKind::UnknownItemType(type_byte)));
        };
        let fixed = match item_type {
            ItemType::Integer | ItemType::Enumeration | ItemType::Interval => Some(4),
            ItemType::LongInteger
            | ItemType::Boolean
            | ItemType::DateTime
            | ItemType::DateTimeExtended => Some(8),
            _ => None,
        };
        let bad_len = match (fixed, item_type) {
            (Some(n), _) => len != n,
            (None, ItemType::BigInteger | ItemType::Structure) => !len.is_multiple_of(8),
            _ => false,
        };
        if bad_len {
            return Err(self.err(DecodeErrorKind::BadLength { item_type, len }));
        }
        self.pos = start + HEADER_LEN;
        let len = len as usize;
        let available = self.buf.len() - self.pos;
        if padded(len) > available {
            return Err(self.err(DecodeErrorKind::Truncated { needed: padded(len), available }));
        }
        let value = if item_type == ItemType::Structure {
            if self.path.len() > self.limits.max_depth {
                return Err(self.err(DecodeErrorKind::TooDeep { max: self.limits.max_depth }));
            }
            let end = self.pos + len;
            let mut children = Vec::new();
            while self.pos < end {
                let child = self.item()?;
                if self.pos > end {
                    // A child claimed bytes beyond its parent's declared length.
                    return Err(self.err(DecodeErrorKind::BadLength { item_type, len: len as u32 }));
                }
                children.push(child);
            }
            Value::Structure(children)
        } else {
            let start_value = self.pos;
            self.take(padded(len))?;
            let buf = self.buf;
            let v = &buf[start_value..start_value + len];
            let be8 = |v: &[u8]| -> [u8; 8] { v.try_into().unwrap_or([0; 8]) };
            let be4 = |v: &[u8]| -> [u8; 4] { v.try_into().unwrap_or([0; 4]) };
            match item_type {
                ItemType::Integer => Value::Integer(i32::from_be_bytes(be4(v))),
                ItemType::Enumeration => Value::Enumeration(u32::from_be_bytes(be4(v))),
                ItemType::Interval => Value::Interval(u32::from_be_bytes(be4(v))),
                ItemType::LongInteger => Value::LongInteger(i64::from_be_bytes(be8(v))),
                ItemType::DateTime => Value::DateTime(i64::from_be_bytes(be8(v))),
                ItemType::DateTimeExtended => Value::DateTimeExtended(i64::from_be_bytes(be8(v))),
                ItemType::Boolean => match u64::from_be_bytes(be8(v)) {
                    0 => Value::Boolean(false),
                    1 => Value::Boolean(true),
                    other => {
                        self.pos = start;
                        return Err(self.err(DecodeErrorKind::BadBoolean(other)));
                    }
                },
                ItemType::BigInteger => Value::BigInteger(v.to_vec()),
                ItemType::ByteString => Value::ByteString(v.to_vec()),
                ItemType::TextString => match std::str::from_utf8(v) {
                    Ok(s) => Value::TextString(s.to_owned()),
                    Err(_) => {
                        self.pos = start;
                        return Err(self.err(DecodeErrorKind::InvalidUtf8));
                    }
                },
                ItemType::Structure => unreachable_structure(),
            }
        };
        self.path.pop();
        Ok(Ttlv { tag: Tag(tag), value })
    }
}

// Structures are handled above; this keeps the match exhaustive without a panic path
// reachable from input.
fn unreachable_structure() -> Value {
    Value::Structure(Vec::new())
}

/// Encodes one item (and its children) into a new buffer.
pub fn encode(item: &Ttlv) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(item));
    encode_into(item, &mut out);
    out
}

/// The number of bytes [`encode`] produces for `item`.
pub fn encoded_len(item: &Ttlv) -> usize {
    HEADER_LEN
        + match &item.value {
            Value::Structure(c) => c.iter().map(encoded_len).sum(),
            Value::BigInteger(b) => padded(b.len()),
            Value::TextString(s) => padded(s.len()),
            Value::ByteString(b) => padded(b.len()),
            _ => 8,
        }
}

/// Appends the encoding of `item` to `out`.
pub fn encode_into(item: &Ttlv, out: &mut Vec<u8>) {
    let tag = item.tag.0.to_be_bytes();
    out.extend_from_slice(&tag[1..]);
    out.push(item.value.item_type() as u8);
    let len_at = out.len();
    out.extend_from_slice(&[0; 4]);
    let body_start = out.len();
    match &item.value {
        Value::Structure(children) => children.iter().for_each(|c| encode_into(c, out)),
        Value::Integer(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Enumeration(v) | Value::Interval(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::LongInteger(v) | Value::DateTime(v) | Value::DateTimeExtended(v) => {
            out.extend_from_slice(&v.to_be_bytes())
        }
        Value::Boolean(b) => out.extend_from_slice(&u64::from(*b).to_be_bytes()),
        Value::BigInteger(b) => {
            // Sign-extend on the left to a multiple of 8 bytes (KMIP 2.1 §9.1.1.4).
            let pad = padded(b.len()) - b.len();
            let fill = if b.first().is_some_and(|x| x & 0x80 != 0) { 0xFF } else { 0 };
            out.extend(std::iter::repeat_n(fill, pad));
            out.extend_from_slice(b);
        }
        Value::TextString(s) => out.extend_from_slice(s.as_bytes()),
        Value::ByteString(b) => out.extend_from_slice(b),
    }
    let len = out.len() - body_start;
    let declared = match item.value {
        Value::Integer(_) | Value::Enumeration(_) | Value::Interval(_) => 4,
        _ => len,
    };
    out[len_at..len_at + 4].copy_from_slice(&(declared as u32).to_be_bytes());
    out.resize(body_start + padded(len), 0);
}
