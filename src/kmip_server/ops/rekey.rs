//! Re-key: a replacement key generated in the HSM that takes over the existing key's names
//! and attributes; both keys are linked to each other (KMIP 1.4 §4.4).

use kmip::attributes::{names, Attribute};
use kmip::enums::{CryptographicAlgorithm, LinkType, ObjectType, State};
use kmip::ops::rekey;
use kmip::{Tag, Ttlv, Value};

use super::{effective_state, OpCtx, Outcome};
use crate::kmip_server::error::OpError;

/// A Link attribute value (KMIP 1.4 §3.35).
pub(crate) fn link(link_type: LinkType, target: &str) -> Attribute {
    Attribute::new(
        "Link",
        Value::Structure(vec![
            Ttlv::new(Tag::LINK_TYPE, Value::Enumeration(link_type.0)),
            Ttlv::new(Tag::LINKED_OBJECT_IDENTIFIER, Value::TextString(target.to_owned())),
        ]),
    )
}

pub(crate) async fn handle(cx: &OpCtx<'_>, req: rekey::Request) -> Result<Outcome, OpError> {
    let old_id = cx.target(req.unique_identifier)?;
    let old = cx.load(&old_id).await?;
    if old.object_type != i64::from(ObjectType::SYMMETRIC_KEY.0) {
        return Err(OpError::Unsupported("Re-key applies to symmetric keys"));
    }
    let state = effective_state(&old, cx.now);
    if matches!(state, State::DESTROYED | State::DESTROYED_COMPROMISED) {
        return Err(OpError::Destroyed(old_id));
    }
    let stored = cx.state.store.attributes(&old_id).await?;
    // Copy everything but what the replacement gets anew; the request's attributes win.
    let mut attrs: Vec<Attribute> = stored
        .into_iter()
        .filter(|a| !matches!(a.name.as_str(), names::DIGEST | "Link"))
        .filter(|a| !req.attributes.iter().any(|r| r.name == a.name))
        .map(|a| Attribute { index: None, ..a })
        .collect();
    attrs.extend(req.attributes);
    let int = |name| match kmip::attributes::find(&attrs, name).map(|a| &a.value) {
        Some(Value::Integer(v)) => Some(*v as u32),
        Some(Value::Enumeration(v)) => Some(*v),
        _ => None,
    };
    if int(names::CRYPTOGRAPHIC_ALGORITHM) != Some(CryptographicAlgorithm::AES.0) {
        return Err(OpError::Unsupported("only AES keys can be re-keyed"));
    }
    let bits = match int(names::CRYPTOGRAPHIC_LENGTH) {
        Some(b @ (128 | 192 | 256)) => b as usize,
        _ => return Err(OpError::Invalid("AES keys are 128, 192 or 256 bits long")),
    };
    // Dates (KMIP 1.4 Table 172): copied, or shifted so Activation = now + Offset.
    let (activation, deactivation) = match (req.offset, old.activation_date) {
        (None, a) => (a, old.deactivation_date),
        (Some(offset), a1) => {
            let a2 = cx.now + i64::from(offset);
            let shift = a1.map(|a1| a2 - a1);
            (Some(a2), old.deactivation_date.zip(shift).map(|(d, s)| d + s))
        }
    };
    let mut dated = attrs;
    if let Some(a) = activation {
        dated.push(Attribute::new(names::ACTIVATION_DATE, Value::DateTime(a)));
    }
    if let Some(d) = deactivation {
        dated.push(Attribute::new(names::DEACTIVATION_DATE, Value::DateTime(d)));
    }
    let (row, mut attributes) = super::register::new_object(cx, ObjectType::SYMMETRIC_KEY, dated)?;
    super::create::generated_here(cx, &mut attributes);
    attributes.push(link(LinkType::REPLACED_OBJECT_LINK, &old_id));
    let aad = row.id.clone();
    let sealed =
        cx.state.hsm.run(move |hsm, s| hsm.generate_sealed_aes(s, bits, aad.as_bytes())).await?;
    let (row, attributes) = super::register::prepare(row, sealed, None, attributes);
    let new_id = row.id.clone();
    let replacement = link(LinkType::REPLACEMENT_OBJECT_LINK, &new_id);
    cx.state.store.rekey(&row, &attributes, &old, &replacement, cx.now).await?;
    Ok(Outcome::new(rekey::response(&new_id), Some(new_id)))
}
