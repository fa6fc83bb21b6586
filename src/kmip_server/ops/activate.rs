//! Activate: Pre-Active → Active, stamping the Activation Date.

use kmip::enums::State;
use kmip::ops::activate;

use super::{refresh_state, OpCtx, Outcome};
use crate::kmip_server::error::OpError;

pub(crate) async fn handle(cx: &OpCtx<'_>, req: activate::Request) -> Result<Outcome, OpError> {
    let id = cx.target(req.unique_identifier)?;
    let mut row = cx.load(&id).await?;
    refresh_state(&mut row, cx.now);
    let state = State(row.state as u32);
    if state != State::PRE_ACTIVE {
        return Err(OpError::WrongState { op: "Activate", state });
    }
    row.state = i64::from(State::ACTIVE.0);
    row.activation_date = Some(cx.now);
    row.last_change_date = cx.now;
    cx.state.store.save_lifecycle(&row).await?;
    Ok(Outcome::new(vec![kmip::ops::uid_item(&id)], Some(id)))
}
