//! The KMIP JSON encoding (KMIP Profiles 2.1 §5.5): each item is an object with `tag`,
//! `type` (omitted for structures) and `value` (an array of items for structures).
//! Integers are numbers (or mask flag names), 64-bit and big integers, byte strings and
//! dates are strings.

use serde_json::{Map, Value as Json, json};

use super::binary::Limits;
use super::text::{naming_tag, tag_from_text, tag_to_text};
use super::xml::{type_from_name, type_name, value_from_text, value_text};
use super::{TextError, Ttlv, Value};
use crate::tag::ItemType;

/// Encodes one item as a JSON value.
pub fn to_json(item: &Ttlv) -> Json {
    to_json_named(item, item.tag)
}

fn to_json_named(item: &Ttlv, naming: crate::tag::Tag) -> Json {
    let tag = tag_to_text(item.tag);
    match &item.value {
        Value::Structure(children) => {
            let values: Vec<Json> =
                children.iter().map(|c| to_json_named(c, naming_tag(c.tag, children))).collect();
            json!({"tag": tag, "value": values})
        }
        v @ (Value::Integer(_) | Value::Interval(_)) => {
            let text = value_text(naming, v);
            let value = text.parse::<i64>().map(Json::from).unwrap_or(Json::String(text));
            json!({"tag": tag, "type": type_name(v.item_type()), "value": value})
        }
        Value::Boolean(b) => json!({"tag": tag, "type": "Boolean", "value": b}),
        v => {
            json!({"tag": tag, "type": type_name(v.item_type()), "value": value_text(item.tag, v)})
        }
    }
}

/// Encodes one item as JSON text.
pub fn encode(item: &Ttlv) -> String {
    to_json(item).to_string()
}

/// Decodes one item from JSON text.
pub fn decode(text: &str, limits: &Limits) -> Result<Ttlv, TextError> {
    if text.len() > limits.max_bytes {
        return Err(TextError::TooLarge { len: text.len(), max: limits.max_bytes });
    }
    // serde_json refuses nesting deeper than 128 on its own; the item limit is checked
    // before it builds anything (each item is one object), and again below.
    if objects(text) > limits.max_items {
        return Err(TextError::TooManyItems { max: limits.max_items });
    }
    let json: Json = serde_json::from_str(text).map_err(TextError::Json)?;
    let mut items = 0;
    from_json(&json, &[], 1, limits, &mut items)
}

/// How many JSON objects `text` opens: the `{` outside strings.
fn objects(text: &str) -> usize {
    let (mut count, mut in_string, mut escaped) = (0, false, false);
    for b in text.bytes() {
        match (in_string, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (false, _, b'"') => in_string = true,
            (false, _, b'{') => count += 1,
            _ => {}
        }
    }
    count
}

fn from_json(
    j: &Json,
    siblings: &[Ttlv],
    depth: usize,
    limits: &Limits,
    items: &mut usize,
) -> Result<Ttlv, TextError> {
    *items += 1;
    if *items > limits.max_items {
        return Err(TextError::TooManyItems { max: limits.max_items });
    }
    let obj: &Map<String, Json> = j.as_object().ok_or(TextError::NotAnItem)?;
    let name = obj.get("tag").and_then(Json::as_str).ok_or(TextError::NotAnItem)?;
    let tag = tag_from_text(name).ok_or_else(|| TextError::UnknownTag(name.to_owned()))?;
    let item_type = match obj.get("type").and_then(Json::as_str) {
        Some(t) => type_from_name(t).ok_or_else(|| TextError::UnknownType(t.to_owned()))?,
        None => ItemType::Structure,
    };
    let value = obj.get("value").ok_or_else(|| TextError::MissingType(name.to_owned()))?;
    if item_type == ItemType::Structure {
        // Structures count towards the depth, as in binary; primitives inside the deepest
        // one do not.
        if depth > limits.max_depth {
            return Err(TextError::TooDeep { max: limits.max_depth });
        }
        let children = value.as_array().ok_or(TextError::NotAnItem)?;
        let mut decoded = Vec::with_capacity(children.len());
        for c in children {
            let item = from_json(c, &decoded, depth + 1, limits, items)?;
            decoded.push(item);
        }
        return Ok(Ttlv::structure(tag, decoded));
    }
    let text = match value {
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        Json::Bool(b) => b.to_string(),
        // null, an array or an object is no primitive's value (not an empty one).
        _ => return Err(TextError::MissingValue(name.to_owned())),
    };
    let value = value_from_text(naming_tag(tag, siblings), item_type, &text).ok_or_else(|| {
        TextError::BadValue {
            tag: name.to_owned(),
            item_type: type_name(item_type),
            value: text.chars().take(64).collect(),
        }
    })?;
    Ok(Ttlv::new(tag, value))
}
