//! Destroy: removes the key material and keeps the metadata. Active objects must be
//! revoked first (KMIP 1.4 §4.21).

use kmip::enums::{ObjectType, State};
use kmip::ops::destroy;

use super::{refresh_state, OpCtx, Outcome};
use crate::kmip_server::error::OpError;

pub(crate) async fn handle(cx: &OpCtx<'_>, req: destroy::Request) -> Result<Outcome, OpError> {
    let id = cx.target(req.unique_identifier)?;
    let mut row = cx.load(&id).await?;
    refresh_state(&mut row, cx.now);
    let state = State(row.state as u32);
    row.state = i64::from(match state {
        State::PRE_ACTIVE | State::DEACTIVATED => State::DESTROYED.0,
        State::COMPROMISED => State::DESTROYED_COMPROMISED.0,
        State::DESTROYED | State::DESTROYED_COMPROMISED => return Err(OpError::Destroyed(id)),
        _ => return Err(OpError::WrongState { op: "Destroy", state }),
    });
    // Key-pair halves live in the HSM: remove them there first.
    if [ObjectType::PRIVATE_KEY.0, ObjectType::PUBLIC_KEY.0].contains(&(row.object_type as u32)) {
        let hsm_id = row.id.clone();
        cx.state.hsm.run(move |hsm, s| hsm.destroy_by_id(s, hsm_id.as_bytes())).await?;
    }
    row.sealed_material = None;
    row.public_material = None;
    row.kek_label = None;
    row.destroy_date = Some(cx.now);
    row.last_change_date = cx.now;
    cx.state.store.save_lifecycle(&row).await?;
    Ok(Outcome::new(vec![kmip::ops::uid_item(&id)], Some(id)))
}
