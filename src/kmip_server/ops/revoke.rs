//! Revoke: compromise reasons move the object to Compromised; other reasons deactivate it
//! (KMIP 1.4 §4.20).

use kmip::enums::{RevocationReasonCode, State};
use kmip::ops::revoke;

use super::{refresh_state, OpCtx, Outcome};
use crate::kmip_server::error::OpError;

pub(crate) async fn handle(cx: &OpCtx<'_>, req: revoke::Request) -> Result<Outcome, OpError> {
    let id = cx.target(req.unique_identifier)?;
    let mut row = cx.load(&id).await?;
    refresh_state(&mut row, cx.now);
    let state = State(row.state as u32);
    let compromise = matches!(
        req.reason,
        RevocationReasonCode::KEY_COMPROMISE | RevocationReasonCode::CA_COMPROMISE
    );
    if compromise {
        if !matches!(state, State::PRE_ACTIVE | State::ACTIVE | State::DEACTIVATED) {
            return Err(OpError::WrongState { op: "Revoke", state });
        }
        row.state = i64::from(State::COMPROMISED.0);
        row.compromise_date = Some(cx.now);
        row.compromise_occurrence_date = Some(req.compromise_occurrence_date.unwrap_or(cx.now));
    } else {
        if !matches!(state, State::PRE_ACTIVE | State::ACTIVE) {
            return Err(OpError::WrongState { op: "Revoke", state });
        }
        row.state = i64::from(State::DEACTIVATED.0);
        row.deactivation_date = Some(cx.now);
    }
    row.revocation_reason = Some(i64::from(req.reason.0));
    row.revocation_message = req.message;
    row.last_change_date = cx.now;
    cx.state.store.save_lifecycle(&row).await?;
    Ok(Outcome::new(vec![kmip::ops::uid_item(&id)], Some(id)))
}
