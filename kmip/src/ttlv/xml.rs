//! The KMIP XML encoding (KMIP Profiles 2.1 §5.4) of the TTLV tree: one element per item,
//! named after its tag, with `type` and `value` attributes for primitives and child elements
//! for structures. Tags without a name are written `<TTLV tag="0x540001" …>`.

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use super::binary::Limits;
use super::text::*;
use super::{TextError, Ttlv, Value};
use crate::tag::{ItemType, Tag};

/// Encodes one item as an XML document fragment (two-space indentation).
pub fn encode(item: &Ttlv) -> String {
    let mut out = String::new();
    write(item, item.tag, 0, &mut out);
    out
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn type_name(t: ItemType) -> &'static str {
    match t {
        ItemType::Structure => "Structure",
        ItemType::Integer => "Integer",
        ItemType::LongInteger => "LongInteger",
        ItemType::BigInteger => "BigInteger",
        ItemType::Enumeration => "Enumeration",
        ItemType::Boolean => "Boolean",
        ItemType::TextString => "TextString",
        ItemType::ByteString => "ByteString",
        ItemType::DateTime => "DateTime",
        ItemType::Interval => "Interval",
        ItemType::DateTimeExtended => "DateTimeExtended",
    }
}

pub(crate) fn type_from_name(name: &str) -> Option<ItemType> {
    use ItemType::*;
    Some(match name {
        "Structure" => Structure,
        "Integer" => Integer,
        "LongInteger" => LongInteger,
        "BigInteger" => BigInteger,
        "Enumeration" => Enumeration,
        "Boolean" => Boolean,
        "TextString" => TextString,
        "ByteString" => ByteString,
        "DateTime" => DateTime,
        "Interval" => Interval,
        "DateTimeExtended" => DateTimeExtended,
        _ => return None,
    })
}

/// The text form of a primitive value, as both text encodings write it.
pub(crate) fn value_text(tag: Tag, value: &Value) -> String {
    match value {
        Value::Structure(_) => String::new(),
        Value::Integer(v) => mask_to_text(tag, *v).unwrap_or_else(|| v.to_string()),
        Value::LongInteger(v) => v.to_string(),
        Value::BigInteger(b) => hex(b),
        Value::Enumeration(v) => enum_to_text(tag, *v),
        Value::Boolean(b) => b.to_string(),
        Value::TextString(s) => s.clone(),
        Value::ByteString(b) => hex(b),
        Value::DateTime(v) => datetime_to_text(*v),
        Value::Interval(v) => v.to_string(),
        Value::DateTimeExtended(v) => datetime_ext_to_text(*v),
    }
}

/// Reads a primitive value of `item_type` from its text form.
pub(crate) fn value_from_text(tag: Tag, item_type: ItemType, text: &str) -> Option<Value> {
    Some(match item_type {
        ItemType::Structure => return None,
        ItemType::Integer => Value::Integer(int_from_text(tag, text)?),
        ItemType::LongInteger => Value::LongInteger(match text.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok()? as i64,
            None => text.parse().ok()?,
        }),
        ItemType::BigInteger => Value::BigInteger(unhex(text)?),
        ItemType::Enumeration => Value::Enumeration(enum_from_text(tag, text)?),
        ItemType::Boolean => Value::Boolean(match text {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return None,
        }),
        ItemType::TextString => Value::TextString(text.to_owned()),
        ItemType::ByteString => Value::ByteString(unhex(text)?),
        ItemType::DateTime => Value::DateTime(datetime_from_text(text)?),
        ItemType::Interval => Value::Interval(match text.strip_prefix("0x") {
            Some(h) => u32::from_str_radix(h, 16).ok()?,
            None => text.parse().ok()?,
        }),
        ItemType::DateTimeExtended => Value::DateTimeExtended(datetime_ext_from_text(text)?),
    })
}

/// Writes `item`; `naming` is the tag whose value names apply (see [`naming_tag`]).
fn write(item: &Ttlv, naming: Tag, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    let name = match item.tag.name() {
        Some(_) => tag_to_text(item.tag),
        None => format!("TTLV tag=\"0x{:06X}\"", item.tag.0),
    };
    let close = name.split(' ').next().unwrap_or("TTLV");
    match &item.value {
        Value::Structure(children) if children.is_empty() => {
            out.push_str(&format!("{indent}<{name}/>\n"));
        }
        Value::Structure(children) => {
            out.push_str(&format!("{indent}<{name}>\n"));
            for c in children {
                write(c, naming_tag(c.tag, children), depth + 1, out);
            }
            out.push_str(&format!("{indent}</{close}>\n"));
        }
        v => out.push_str(&format!(
            "{indent}<{name} type=\"{}\" value=\"{}\"/>\n",
            type_name(v.item_type()),
            escape(&value_text(naming, v))
        )),
    }
}

/// Decodes exactly one item (a root element) from `text`.
pub fn decode(text: &str, limits: &Limits) -> Result<Ttlv, TextError> {
    let mut items = decode_all(text, limits)?;
    match items.len() {
        1 => Ok(items.remove(0)),
        n => Err(TextError::RootCount(n)),
    }
}

/// Decodes every top-level element of `text`, in order (as in the OASIS test-case files,
/// whose `<KMIP>` wrapper is looked through).
pub fn decode_all(text: &str, limits: &Limits) -> Result<Vec<Ttlv>, TextError> {
    if text.len() > limits.max_bytes {
        return Err(TextError::TooLarge { len: text.len(), max: limits.max_bytes });
    }
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut roots = Vec::new();
    // Open structures: (tag, children so far).
    let mut stack: Vec<(Tag, Vec<Ttlv>)> = Vec::new();
    let mut items = 0usize;
    let mut wrapper_depth = 0usize;
    loop {
        let event = reader
            .read_event()
            .map_err(|source| TextError::Xml { position: reader.buffer_position(), source })?;
        let (start, empty) = match &event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                if stack.is_empty() && e.name().as_ref() == "KMIP" && wrapper_depth > 0 {
                    wrapper_depth -= 1;
                    continue;
                }
                let Some((tag, children)) = stack.pop() else {
                    return Err(TextError::Unbalanced);
                };
                let item = Ttlv::structure(tag, children);
                match stack.last_mut() {
                    Some((_, siblings)) => siblings.push(item),
                    None => roots.push(item),
                }
                continue;
            }
            Event::Eof => break,
            Event::Text(t) if !t.trim().is_empty() => {
                return Err(TextError::UnexpectedText);
            }
            _ => continue,
        };
        if stack.is_empty() && start.name().as_ref() == "KMIP" && !empty {
            wrapper_depth += 1;
            continue;
        }
        items += 1;
        if items > limits.max_items {
            return Err(TextError::TooManyItems { max: limits.max_items });
        }
        let (tag, item_type, value) = element(start)?;
        let item_type = match (item_type, empty) {
            (Some(t), _) => t,
            (None, false) => ItemType::Structure,
            (None, true) if value.is_none() => ItemType::Structure,
            (None, true) => return Err(TextError::MissingType(tag_to_text(tag))),
        };
        if item_type == ItemType::Structure {
            // An empty structure is as deep as one with items (binary counts it so too).
            if stack.len() + 1 > limits.max_depth {
                return Err(TextError::TooDeep { max: limits.max_depth });
            }
            if empty {
                let item = Ttlv::structure(tag, vec![]);
                match stack.last_mut() {
                    Some((_, siblings)) => siblings.push(item),
                    None => roots.push(item),
                }
            } else {
                stack.push((tag, Vec::new()));
            }
            continue;
        }
        // Only a string may be empty, and then it says value="" (a missing value is not 0).
        let text = match value {
            Some(text) => text,
            None if matches!(item_type, ItemType::TextString | ItemType::ByteString) => {
                String::new()
            }
            None => return Err(TextError::MissingValue(tag_to_text(tag))),
        };
        let naming = naming_tag(tag, stack.last().map(|(_, s)| s.as_slice()).unwrap_or(&[]));
        let value =
            value_from_text(naming, item_type, &text).ok_or_else(|| TextError::BadValue {
                tag: tag_to_text(tag),
                item_type: type_name(item_type),
                value: text.chars().take(64).collect(),
            })?;
        let item = Ttlv::new(tag, value);
        if !empty {
            // A primitive written as <X ...></X>: its end tag closes nothing of ours.
            skip_to_end(&mut reader, start.name().as_ref())?;
        }
        match stack.last_mut() {
            Some((_, siblings)) => siblings.push(item),
            None => roots.push(item),
        }
    }
    if !stack.is_empty() {
        return Err(TextError::Unbalanced);
    }
    Ok(roots)
}

fn skip_to_end(reader: &mut Reader<&[u8]>, name: &str) -> Result<(), TextError> {
    loop {
        match reader.read_event() {
            Ok(Event::End(e)) if e.name().as_ref() == name => return Ok(()),
            Ok(Event::Text(t)) if t.trim().is_empty() => {}
            Ok(Event::Comment(_)) => {}
            Ok(_) => return Err(TextError::Unbalanced),
            Err(source) => {
                return Err(TextError::Xml { position: reader.buffer_position(), source });
            }
        }
    }
}

/// The tag, declared type and value text of an element.
fn element(e: &BytesStart<'_>) -> Result<(Tag, Option<ItemType>, Option<String>), TextError> {
    let name = e.name().as_ref().to_owned();
    let mut tag = if name == "TTLV" {
        None
    } else {
        Some(tag_from_text(&name).ok_or(TextError::UnknownTag(name.clone()))?)
    };
    let mut item_type = None;
    let mut value = None;
    for a in e.attributes() {
        let a = a.map_err(|_| TextError::BadAttribute)?;
        let v = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|_| TextError::BadAttribute)?
            .into_owned();
        match a.key.as_ref() {
            "type" => {
                item_type = Some(type_from_name(&v).ok_or(TextError::UnknownType(v))?);
            }
            "value" => value = Some(v),
            "tag" => tag = Some(tag_from_text(&v).ok_or(TextError::UnknownTag(v))?),
            _ => {}
        }
    }
    let tag = tag.ok_or(TextError::UnknownTag(name))?;
    Ok((tag, item_type, value))
}
