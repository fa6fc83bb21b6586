//! Re-key: a replacement key (AES, 3DES or HMAC) generated in the HSM that takes over the existing key's names
//! and attributes; both keys are linked to each other (KMIP 1.4 §4.4).

use kmip::attributes::{names, Attribute};
use kmip::enums::{LinkType, ObjectType, State};
use kmip::ops::rekey;
use kmip::{Tag, Ttlv, Value};

use super::{effective_state, OpCtx, Outcome};
use crate::kmip_server::error::OpError;
use crate::store::Replacement;

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

/// The attributes the replacement of `old` gets: those copied from it (the request's
/// win), less what a new object gets anew (Digest, Links), with the dates of KMIP 1.4
/// Table 172: copied, or shifted so that Activation = now + Offset.
pub(crate) fn replacement_attributes(
    cx: &OpCtx<'_>,
    old: &crate::store::ObjectRow,
    stored: Vec<Attribute>,
    requested: Vec<Attribute>,
    offset: Option<u32>,
) -> Result<Vec<Attribute>, OpError> {
    // The replacement belongs to the old object's owner and takes over its names: a
    // grantee may not choose how it is protected, what it is, or when it is usable (an
    // attribute the old key has as given, a client echoing them, is fine).
    if old.owner != cx.principal.as_str() && !cx.is_admin() {
        let changed =
            |a: &Attribute| !stored.iter().any(|s| s.name == a.name && s.value == a.value);
        if offset.is_some() || requested.iter().any(|a| is_protective(&a.name) && changed(a)) {
            return Err(OpError::Denied(old.id.clone()));
        }
    }
    let shift = date_shift(cx, old, offset);
    let mut attrs: Vec<Attribute> = stored
        .into_iter()
        // What the server sets anew for the replacement.
        .filter(|a| {
            !matches!(
                a.name.as_str(),
                names::DIGEST
                    | names::ALWAYS_SENSITIVE
                    | "Link"
                    | names::ROTATE_DATE
                    | names::ROTATE_GENERATION
                    | names::ROTATE_LATEST
            )
        })
        .filter(|a| !requested.iter().any(|r| r.name == a.name))
        .map(|a| Attribute { index: None, ..a })
        .map(fresh_usage_limits)
        .map(|a| shifted(a, shift))
        .collect();
    attrs.extend(requested);
    Ok(replacement_dates(cx, old, offset, attrs))
}

/// Attributes that say what a key is and limit how it may be used, served or found.
fn is_protective(name: &str) -> bool {
    name.starts_with("Rotate ")
        || matches!(
            name,
            names::NAME
                | names::CRYPTOGRAPHIC_ALGORITHM
                | names::CRYPTOGRAPHIC_LENGTH
                | names::SENSITIVE
                | names::EXTRACTABLE
                | names::CRYPTOGRAPHIC_USAGE_MASK
                | names::USAGE_LIMITS
                | names::ACTIVATION_DATE
                | names::DEACTIVATION_DATE
                | names::PROCESS_START_DATE
                | names::PROTECT_STOP_DATE
                | "Cryptographic Parameters"
        )
}

/// With an Offset, how far the replacement's dates move from the old object's: the new
/// Activation Date (now + Offset) less the old one (KMIP 1.4 Table 172).
fn date_shift(cx: &OpCtx<'_>, old: &crate::store::ObjectRow, offset: Option<u32>) -> Option<i64> {
    // Saturating: the dates are the client's (any Date-Time), and must not wrap.
    Some(cx.now.saturating_add(i64::from(offset?)).saturating_sub(old.activation_date?))
}

/// Process Start and Protect Stop Date moved by `shift`, as the Deactivation Date is
/// (KMIP 1.4 Table 172: "Protect Stop Date = TT1+(AT2-AT1)").
fn shifted(a: Attribute, shift: Option<i64>) -> Attribute {
    match (a.name.as_str(), &a.value, shift) {
        (names::PROCESS_START_DATE | names::PROTECT_STOP_DATE, Value::DateTime(d), Some(s)) => {
            Attribute { value: Value::DateTime(d.saturating_add(s)), ..a }
        }
        _ => a,
    }
}

/// A replacement starts with the whole of the old key's Usage Limits Total (KMIP 1.4
/// §4.4, Table 172).
fn fresh_usage_limits(a: Attribute) -> Attribute {
    if a.name != names::USAGE_LIMITS {
        return a;
    }
    match kmip::attributes::UsageLimits::from_value(&a.value) {
        Ok(limits) => Attribute {
            value: kmip::attributes::UsageLimits { count: limits.total, ..limits }.to_value(),
            ..a
        },
        Err(_) => a,
    }
}

fn replacement_dates(
    cx: &OpCtx<'_>,
    old: &crate::store::ObjectRow,
    offset: Option<u32>,
    mut attrs: Vec<Attribute>,
) -> Vec<Attribute> {
    let (activation, deactivation) = match offset {
        None => (old.activation_date, old.deactivation_date),
        Some(offset) => {
            let shift = date_shift(cx, old, Some(offset));
            let deactivation = old.deactivation_date.zip(shift).map(|(d, s)| d.saturating_add(s));
            (Some(cx.now.saturating_add(i64::from(offset))), deactivation)
        }
    };
    if let Some(a) = activation {
        attrs.push(Attribute::new(names::ACTIVATION_DATE, Value::DateTime(a)));
    }
    if let Some(d) = deactivation {
        attrs.push(Attribute::new(names::DEACTIVATION_DATE, Value::DateTime(d)));
    }
    attrs
}

/// For an object that takes part in rotation (any Rotate attribute, KMIP 2.1 §4.48–4.54):
/// the replacement's Rotate Generation (one more than the old object's), Rotate Date and
/// Rotate Latest (True), and the old object's Rotate Latest (False). Other objects get
/// none, so a plain Re-key's replacement carries no attributes its client did not ask for.
pub(crate) fn rotation_attributes(old: &[Attribute], now: i64) -> (Vec<Attribute>, Vec<Attribute>) {
    if !old.iter().any(|a| a.name.starts_with("Rotate ")) {
        return (Vec::new(), Vec::new());
    }
    let generation = match kmip::attributes::find(old, names::ROTATE_GENERATION) {
        Some(Attribute { value: Value::Integer(g), .. }) => *g,
        _ => 0,
    };
    let new = vec![
        Attribute::new(names::ROTATE_GENERATION, Value::Integer(generation.saturating_add(1))),
        Attribute::new(names::ROTATE_DATE, Value::DateTime(now)),
        Attribute::new(names::ROTATE_LATEST, Value::Boolean(true)),
    ];
    (new, vec![Attribute::new(names::ROTATE_LATEST, Value::Boolean(false))])
}

/// Stores `new` (with `attributes`) as the replacement of `old`, in one transaction: the
/// old object's Name moves to it, the old one links to it, and takes `old_replaced` (its
/// Rotate Latest).
pub(crate) async fn store_replacement(
    cx: &OpCtx<'_>,
    old: &crate::store::ObjectRow,
    new: &crate::store::ObjectRow,
    attributes: &[Attribute],
    old_replaced: &[Attribute],
) -> Result<(), OpError> {
    let old_link = link(LinkType::REPLACEMENT_OBJECT_LINK, &new.id);
    let replaced =
        Replacement { new, new_attributes: attributes, old, old_link: &old_link, old_replaced };
    Ok(cx.state.store.rekey(&[replaced], cx.now).await?)
}

pub(crate) async fn handle(cx: &OpCtx<'_>, req: rekey::Request) -> Result<Outcome, OpError> {
    rekey(cx, req, false).await
}

/// Re-key of the latest version of a named key (the TDE API's rotate): the new key is
/// usable now, whatever became of the old one. Its dates are the old key's moved as by an
/// Offset of 0 (Activation now), less any Deactivation, Protect Stop or Process Start Date
/// the old key had already reached: a revocation's or a spent cryptoperiod's must not make
/// the new version unusable from the start.
pub(crate) async fn renew(cx: &OpCtx<'_>, id: &str) -> Result<Outcome, OpError> {
    let req = rekey::Request {
        unique_identifier: Some(id.to_owned()),
        offset: Some(0),
        attributes: Vec::new(),
    };
    rekey(cx, req, true).await
}

async fn rekey(cx: &OpCtx<'_>, req: rekey::Request, renew: bool) -> Result<Outcome, OpError> {
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
    // Another rotation got there first: this key is no longer the latest version.
    if renew && super::key_pair::linked(&stored, LinkType::REPLACEMENT_OBJECT_LINK).is_some() {
        return Err(OpError::Store(crate::store::StoreError::Conflict(old_id)));
    }
    let rotation = rotation_attributes(&stored, cx.now);
    let reached: Vec<&'static str> = [names::PROCESS_START_DATE, names::PROTECT_STOP_DATE]
        .into_iter()
        .filter(|name| {
            stored
                .iter()
                .any(|a| a.name == *name && matches!(a.value, Value::DateTime(d) if d <= cx.now))
        })
        .chain(old.deactivation_date.filter(|d| *d <= cx.now).map(|_| names::DEACTIVATION_DATE))
        .collect();
    let mut attrs = replacement_attributes(cx, &old, stored, req.attributes, req.offset)?;
    if renew {
        attrs.retain(|a| !reached.contains(&a.name.as_str()));
    }
    let kind = super::create::secret_kind(&attrs)?;
    let (mut row, mut attributes) =
        super::register::new_object(cx, ObjectType::SYMMETRIC_KEY, attrs)?;
    // The new key is the old key's owner's, whoever re-keys it: a grant of Re-key must not
    // become access to the new key.
    row.owner.clone_from(&old.owner);
    super::create::generated_here(cx, &mut attributes);
    attributes.push(link(LinkType::REPLACED_OBJECT_LINK, &old_id));
    let (new_rotation, old_replaced) = rotation;
    attributes.extend(new_rotation);
    let aad = row.id.clone();
    let sealed = cx
        .state
        .hsm
        .run_short(0, move |hsm, s| hsm.generate_sealed_secret(s, kind, aad.as_bytes()))
        .await?;
    let (row, attributes) = super::register::prepare(row, sealed, None, attributes);
    store_replacement(cx, &old, &row, &attributes, &old_replaced).await?;
    Ok(Outcome::new(rekey::response(&row.id), Some(row.id)))
}
