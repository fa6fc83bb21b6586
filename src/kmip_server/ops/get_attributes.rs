//! Get Attributes and Get Attribute List.

use kmip::ops::{get_attribute_list, get_attributes};

use super::{all_attributes, OpCtx, Outcome};
use crate::kmip_server::error::OpError;

pub(crate) async fn handle(
    cx: &OpCtx<'_>,
    req: get_attributes::Request,
) -> Result<Outcome, OpError> {
    let id = cx.target(req.unique_identifier)?;
    let (row, stored) = cx.load_with_attributes(&id).await?;
    let mut attrs = all_attributes(cx, &row, stored);
    if !req.names.is_empty() {
        let wanted: std::collections::HashSet<&str> =
            req.names.iter().map(String::as_str).collect();
        attrs.retain(|a| wanted.contains(a.name.as_str()));
    }
    Ok(Outcome::new(get_attributes::response(&id, &attrs, cx.version), Some(id)))
}

pub(crate) async fn handle_list(
    cx: &OpCtx<'_>,
    req: get_attribute_list::Request,
) -> Result<Outcome, OpError> {
    let id = cx.target(req.unique_identifier)?;
    let (row, stored) = cx.load_with_attributes(&id).await?;
    let mut names: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for a in all_attributes(cx, &row, stored) {
        if seen.insert(a.name.clone()) {
            names.push(a.name);
        }
    }
    Ok(Outcome::new(get_attribute_list::response(&id, &names, cx.version), Some(id)))
}

/// Obtain Lease (KMIP 1.4 §4.20): the object's Lease Time, which the client may keep it
/// for, and its Last Change Date. Refused when leases are off (`lease_time_secs = 0`) and
/// for destroyed objects.
pub(crate) async fn obtain_lease(cx: &OpCtx<'_>, uid: Option<String>) -> Result<Outcome, OpError> {
    use kmip::enums::State;
    let id = cx.target(uid)?;
    let row = cx.load(&id).await?;
    if cx.state.kmip_lease_time == 0 {
        return Err(OpError::UnsupportedOperation);
    }
    let state = super::effective_state(&row, cx.now);
    if matches!(state, State::DESTROYED | State::DESTROYED_COMPROMISED) {
        return Err(OpError::Destroyed(id));
    }
    let payload =
        kmip::ops::obtain_lease::response(&id, cx.state.kmip_lease_time, row.last_change_date);
    Ok(Outcome::new(payload, Some(id)))
}
