//! Add, Modify, Delete and (2.x) Set Attribute on client-modifiable attributes. Activation
//! and Deactivation Date are lifecycle columns; the rest are stored attribute instances.

use kmip::attributes::{is_custom, names, Attribute};
use kmip::enums::{ObjectType, State};
use kmip::ops::{add_attribute, delete_attribute, modify_attribute, set_attribute};
use kmip::Value;

use super::{effective_state, is_server_managed, refresh_state, OpCtx, Outcome};
use crate::kmip_server::error::OpError;
use crate::store::AddIf;

/// Attributes a client may hold several instances of (KMIP 1.4 §3).
fn is_multi_valued(name: &str) -> bool {
    matches!(
        name,
        names::NAME | names::OBJECT_GROUP | "Application Specific Information" | "Alternative Name"
    ) || is_custom(name)
}

fn is_lifecycle_date(name: &str) -> bool {
    matches!(name, names::ACTIVATION_DATE | names::DEACTIVATION_DATE)
}

/// Fixed at creation: changing them would misdescribe the key material or where it came
/// from (KMIP 1.4 §3.7, 2.1 §4.42: set when the object is made, not modifiable by client).
fn is_fixed(name: &str) -> bool {
    // Usage Limits change only by use and allocation once the object exists.
    matches!(
        name,
        names::CRYPTOGRAPHIC_ALGORITHM
            | names::CRYPTOGRAPHIC_LENGTH
            | names::USAGE_LIMITS
            | names::RANDOM_NUMBER_GENERATOR
            | "Cryptographic Domain Parameters"
    )
}

/// The index of the instance of `name` that a Modify or Delete means: the one equal to
/// the 2.x Current Attribute, else the 1.x Attribute Index, else the first.
fn find_instance(
    existing: &[Attribute],
    name: &str,
    current: Option<&Attribute>,
    index: Option<i32>,
) -> Result<i32, OpError> {
    let mut instances = existing.iter().filter(|a| a.name == name);
    match (current, index) {
        (Some(current), _) => instances.find(|a| a.value == current.value),
        (None, Some(i)) => instances.find(|a| a.index == Some(i)),
        (None, None) => instances.next(),
    }
    .and_then(|a| a.index)
    .ok_or_else(|| OpError::AttributeNotFound(name.to_owned()))
}

fn check_writable(name: &str) -> Result<(), OpError> {
    if is_server_managed(name) || is_fixed(name) {
        return Err(OpError::ReadOnly(name.to_owned()));
    }
    Ok(())
}

/// [`check_writable`] for an attribute given, whose value must also be well formed.
fn check_given(attr: &Attribute) -> Result<(), OpError> {
    check_writable(&attr.name)?;
    super::check_names(std::slice::from_ref(attr))
}

/// Attributes a client may give but not always change or take back (see [`check_kept`]).
fn is_kept(name: &str) -> bool {
    matches!(
        name,
        names::CRYPTOGRAPHIC_USAGE_MASK | names::PROCESS_START_DATE | names::PROTECT_STOP_DATE
    )
}

/// Refuses to change or delete what a client may not: the Cryptographic Usage Mask never
/// (KMIP 1.4 §3.19, 2.1 §4.17: a client may give one where there is none, not change or
/// delete it), Process Start and Protect Stop Date not once reached, nor delete them at all
/// (§3.25, §3.26). Otherwise the holder of a key could lift the limits on its use.
fn check_kept(name: &str, existing: &[Attribute], now: i64, deleting: bool) -> Result<(), OpError> {
    let kept = match name {
        names::CRYPTOGRAPHIC_USAGE_MASK => existing.iter().any(|a| a.name == name),
        names::PROCESS_START_DATE | names::PROTECT_STOP_DATE => {
            deleting
                || existing
                    .iter()
                    .any(|a| a.name == name && matches!(a.value, Value::DateTime(d) if d <= now))
        }
        _ => false,
    };
    match kept {
        true => Err(OpError::ReadOnly(name.to_owned())),
        false => Ok(()),
    }
}

/// Checks a client's Sensitive (KMIP 2.1 §4.55): a Boolean; private keys, which never
/// leave the HSM, stay Sensitive; and only the owner (or an admin) may lift it, or a
/// grantee could read what it protects.
fn check_sensitive(
    cx: &OpCtx<'_>,
    row: &crate::store::ObjectRow,
    attr: &Attribute,
) -> Result<(), OpError> {
    if attr.name != names::SENSITIVE {
        return Ok(());
    }
    match attr.value {
        Value::Boolean(false) if row.object_type == i64::from(ObjectType::PRIVATE_KEY.0) => {
            Err(OpError::Invalid("private keys stay in the HSM: they are always Sensitive"))
        }
        Value::Boolean(false) if row.owner != cx.principal.as_str() && !cx.is_admin() => {
            Err(OpError::Denied(row.id.clone()))
        }
        Value::Boolean(_) => Ok(()),
        _ => Err(OpError::Invalid("Sensitive is a Boolean")),
    }
}

/// Once Sensitive has been False, the object is no longer Always Sensitive: recorded
/// before Sensitive itself changes, so a failure in between errs on the safe side.
async fn note_sensitive(cx: &OpCtx<'_>, id: &str, attr: &Attribute) -> Result<(), OpError> {
    if attr.name == names::SENSITIVE && attr.value == Value::Boolean(false) {
        let never = Attribute::new(names::ALWAYS_SENSITIVE, Value::Boolean(false));
        let store = &cx.state.store;
        if !store.modify_attribute(id, &never.name, 0, &never.value, cx.now).await? {
            store.add_attribute(id, &never, cx.now).await?;
        }
    }
    Ok(())
}

/// Sets Activation or Deactivation Date. Activation Date may only change while Pre-Active,
/// Deactivation Date while Pre-Active or Active (KMIP 1.4 §3.24, §3.27): after that it
/// records when the object stopped, which a client may not rewrite.
async fn set_lifecycle_date(cx: &OpCtx<'_>, id: &str, attr: &Attribute) -> Result<(), OpError> {
    let Value::DateTime(d) = attr.value else {
        return Err(OpError::Invalid("date attributes are Date-Time values"));
    };
    let mut row = cx.load(id).await?;
    refresh_state(&mut row, cx.now);
    let state = effective_state(&row, cx.now);
    if attr.name == names::ACTIVATION_DATE {
        if state != State::PRE_ACTIVE {
            return Err(OpError::WrongState { op: "changing the Activation Date", state });
        }
        row.activation_date = Some(d);
    } else {
        if state != State::PRE_ACTIVE && state != State::ACTIVE {
            return Err(OpError::WrongState { op: "changing the Deactivation Date", state });
        }
        row.deactivation_date = Some(d);
    }
    row.last_change_date = cx.now;
    Ok(cx.state.store.save_lifecycle(&row).await?)
}

pub(crate) async fn add(cx: &OpCtx<'_>, req: add_attribute::Request) -> Result<Outcome, OpError> {
    let id = cx.target(req.unique_identifier)?;
    let mut attr = req.attribute;
    check_given(&attr)?;
    let row = cx.load(&id).await?;
    check_sensitive(cx, &row, &attr)?;
    if is_lifecycle_date(&attr.name) {
        let exists = match attr.name.as_str() {
            names::ACTIVATION_DATE => row.activation_date.is_some(),
            _ => row.deactivation_date.is_some(),
        };
        if exists {
            return Err(OpError::SingleValued(attr.name));
        }
        set_lifecycle_date(cx, &id, &attr).await?;
    } else {
        let existing = cx.state.store.attributes(&id).await?;
        if existing.len() >= super::MAX_ATTRIBUTES {
            return Err(OpError::Invalid("an object has at most 1024 attributes"));
        }
        if !is_multi_valued(&attr.name) && existing.iter().any(|a| a.name == attr.name) {
            return Err(OpError::SingleValued(attr.name));
        }
        if attr.name == names::NAME
            && existing.iter().any(|a| a.name == attr.name && a.value == attr.value)
        {
            return Err(OpError::NonUniqueName);
        }
        note_sensitive(cx, &id, &attr).await?;
        // Checked above for a clear answer, and again where the add happens, which a
        // concurrent add of the same attribute cannot slip past.
        let only_if = match (is_multi_valued(&attr.name), attr.name == names::NAME) {
            (false, _) => AddIf::Absent,
            (true, true) => AddIf::NewValue,
            (true, false) => AddIf::Always,
        };
        let idx = match cx.state.store.add_attribute_if(&id, &attr, cx.now, only_if).await? {
            Some(idx) => idx,
            None if only_if == AddIf::Absent => return Err(OpError::SingleValued(attr.name)),
            None => return Err(OpError::NonUniqueName),
        };
        attr.index = Some(idx as i32);
    }
    Ok(Outcome::new(add_attribute::response(&id, &attr, cx.version), Some(id)))
}

pub(crate) async fn set(cx: &OpCtx<'_>, req: set_attribute::Request) -> Result<Outcome, OpError> {
    let id = cx.target(req.unique_identifier)?;
    let attr = req.attribute;
    check_given(&attr)?;
    if is_multi_valued(&attr.name) {
        return Err(OpError::Invalid("Set Attribute takes single-valued attributes only"));
    }
    let row = cx.load(&id).await?;
    check_sensitive(cx, &row, &attr)?;
    if is_kept(&attr.name) {
        check_kept(&attr.name, &cx.state.store.attributes(&id).await?, cx.now, false)?;
    }
    note_sensitive(cx, &id, &attr).await?;
    if is_lifecycle_date(&attr.name) {
        set_lifecycle_date(cx, &id, &attr).await?;
    } else if !cx.state.store.modify_attribute(&id, &attr.name, 0, &attr.value, cx.now).await?
        && cx.state.store.add_attribute_if(&id, &attr, cx.now, AddIf::Absent).await?.is_none()
    {
        // Another Set added it meanwhile: this one is the later, and replaces it.
        cx.state.store.modify_attribute(&id, &attr.name, 0, &attr.value, cx.now).await?;
    }
    Ok(Outcome::new(vec![kmip::ops::uid_item(&id)], Some(id)))
}

pub(crate) async fn modify(
    cx: &OpCtx<'_>,
    req: modify_attribute::Request,
) -> Result<Outcome, OpError> {
    let id = cx.target(req.unique_identifier)?;
    let mut attr = req.attribute;
    check_given(&attr)?;
    let row = cx.load(&id).await?;
    check_sensitive(cx, &row, &attr)?;
    if is_lifecycle_date(&attr.name) {
        set_lifecycle_date(cx, &id, &attr).await?;
    } else {
        let existing = cx.state.store.attributes(&id).await?;
        let idx = find_instance(&existing, &attr.name, req.current.as_ref(), attr.index)?;
        check_kept(&attr.name, &existing, cx.now, false)?;
        note_sensitive(cx, &id, &attr).await?;
        cx.state
            .store
            .modify_attribute(&id, &attr.name, i64::from(idx), &attr.value, cx.now)
            .await?;
        attr.index = Some(idx);
    }
    Ok(Outcome::new(modify_attribute::response(&id, &attr, cx.version), Some(id)))
}

pub(crate) async fn delete(
    cx: &OpCtx<'_>,
    req: delete_attribute::Request,
) -> Result<Outcome, OpError> {
    let id = cx.target(req.unique_identifier)?;
    check_writable(&req.name)?;
    // Sensitive always has a value (KMIP 2.1 §4.55): it is set, not deleted.
    if is_lifecycle_date(&req.name) || req.name == names::SENSITIVE {
        return Err(OpError::ReadOnly(req.name));
    }
    cx.load(&id).await?;
    let existing = cx.state.store.attributes(&id).await?;
    let idx = find_instance(&existing, &req.name, req.current.as_ref(), req.index)?;
    check_kept(&req.name, &existing, cx.now, true)?;
    let value = cx
        .state
        .store
        .delete_attribute(&id, &req.name, i64::from(idx), cx.now)
        .await?
        .ok_or_else(|| OpError::AttributeNotFound(req.name.clone()))?;
    let mut payload = vec![kmip::ops::uid_item(&id)];
    if !cx.version.is_v2() {
        payload.push(Attribute { name: req.name, index: Some(idx), value }.to_v1());
    }
    Ok(Outcome::new(payload, Some(id)))
}
