//! Get Attributes and Get Attribute List.

use kmip::ops::{get_attribute_list, get_attributes};

use super::{all_attributes, OpCtx, Outcome};
use crate::kmip_server::error::OpError;

pub(crate) async fn handle(
    cx: &OpCtx<'_>,
    req: get_attributes::Request,
) -> Result<Outcome, OpError> {
    let id = cx.target(req.unique_identifier)?;
    let row = cx.load(&id).await?;
    let stored = cx.state.store.attributes(&id).await?;
    let mut attrs = all_attributes(&row, stored, cx.now, cx.version);
    if !req.names.is_empty() {
        attrs.retain(|a| req.names.contains(&a.name));
    }
    Ok(Outcome::new(get_attributes::response(&id, &attrs, cx.version), Some(id)))
}

pub(crate) async fn handle_list(
    cx: &OpCtx<'_>,
    req: get_attribute_list::Request,
) -> Result<Outcome, OpError> {
    let id = cx.target(req.unique_identifier)?;
    let row = cx.load(&id).await?;
    let stored = cx.state.store.attributes(&id).await?;
    let mut names: Vec<String> = Vec::new();
    for a in all_attributes(&row, stored, cx.now, cx.version) {
        if !names.contains(&a.name) {
            names.push(a.name);
        }
    }
    Ok(Outcome::new(get_attribute_list::response(&id, &names, cx.version), Some(id)))
}
