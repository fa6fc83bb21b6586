//! Check (KMIP 1.4 §4.10) and Get Usage Allocation (KMIP 1.4 §4.18): the client's intended
//! use of an object against its Usage Limits, its Cryptographic Usage Mask and the server's
//! Lease Time, and allocations from the Usage Limits that the caller's protecting
//! operations (Encrypt, Sign, MAC) draw on before the object's Usage Limits Count.

use kmip::attributes::{find, names};
use kmip::enums::{usage_mask, ResultReason};
use kmip::ops::{check, get_usage_allocation};
use kmip::Value;

use super::{check_use, usage_limits, OpCtx, Outcome};
use crate::kmip_server::error::OpError;
use crate::store::UsageDraw;

/// The operations that apply protection, the only ones Usage Limits count.
const PROTECTING: i32 = usage_mask::ENCRYPT | usage_mask::SIGN | usage_mask::MAC_GENERATE;

pub(crate) async fn check(cx: &OpCtx<'_>, req: check::Request) -> Result<Outcome, OpError> {
    let id = cx.target(req.unique_identifier)?;
    cx.load(&id).await?;
    let stored = cx.state.store.attributes(&id).await?;
    let count = match (req.usage_limits_count, usage_limits(&stored)?) {
        (Some(wanted), Some(limits)) => {
            let allocated = cx.state.store.allocated_usage(&id, cx.principal.as_str()).await?;
            (wanted > limits.count + allocated).then_some(wanted)
        }
        _ => None,
    };
    let mask = req.usage_mask.filter(|wanted| {
        match find(&stored, names::CRYPTOGRAPHIC_USAGE_MASK).map(|a| &a.value) {
            Some(Value::Integer(allowed)) => wanted & !allowed != 0,
            _ => false,
        }
    });
    let lease = req.lease_time.filter(|wanted| *wanted > cx.state.kmip_lease_time);
    let reason = match (mask, count, lease) {
        (Some(_), _, _) => ResultReason::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK,
        (None, Some(_), _) => ResultReason::USAGE_LIMIT_EXCEEDED,
        (None, None, Some(_)) => ResultReason::PERMISSION_DENIED,
        (None, None, None) => return Ok(Outcome::new(check::response(&id), Some(id))),
    };
    Err(OpError::CheckDenied { fields: check::denial(count, mask, lease), reason })
}

pub(crate) async fn allocate(
    cx: &OpCtx<'_>,
    req: get_usage_allocation::Request,
) -> Result<Outcome, OpError> {
    let id = cx.target(req.unique_identifier)?;
    let row = cx.load(&id).await?;
    let stored = cx.state.store.attributes(&id).await?;
    if usage_limits(&stored)?.is_none() {
        return Err(OpError::Illegal("the object has no Usage Limits"));
    }
    // Only while the object may apply protection, and only if it may at all.
    check_use(&row, &stored, cx.now, "Get Usage Allocation", true, PROTECTING)?;
    if req.usage_limits_count <= 0 {
        return Err(OpError::Invalid("Usage Limits Count must be positive"));
    }
    let principal = cx.principal.as_str();
    let units = req.usage_limits_count;
    if !cx.state.store.draw_usage(&id, principal, units, UsageDraw::Allocate, cx.now).await? {
        return Err(OpError::UsageLimitsExhausted(id));
    }
    Ok(Outcome::new(get_usage_allocation::response(&id), Some(id)))
}
