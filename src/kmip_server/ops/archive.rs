//! Archive and Recover (KMIP 1.4 §4.22, §4.23): an archived object leaves on-line storage.
//! Its attributes stay readable; its key material is unavailable until it is recovered.

use kmip::enums::State;
use kmip::ops::UidRequest;

use super::{effective_state, OpCtx, Outcome};
use crate::kmip_server::error::OpError;

pub(crate) async fn handle(
    cx: &OpCtx<'_>,
    req: UidRequest,
    archive: bool,
) -> Result<Outcome, OpError> {
    let id = cx.target(req.unique_identifier)?;
    let mut row = cx.load(&id).await?;
    let state = effective_state(&row, cx.now);
    if matches!(state, State::DESTROYED | State::DESTROYED_COMPROMISED) {
        return Err(OpError::Destroyed(id));
    }
    row.archived = archive;
    row.last_change_date = cx.now;
    cx.state.store.save_lifecycle(&row).await?;
    Ok(Outcome::new(vec![kmip::ops::uid_item(&id)], Some(id)))
}
