//! Export and Import (KMIP 2.1 §6.1.18, §6.1.25): moving an object between key managers
//! with its identifier and all its attributes. Export is Get plus the attributes; Import
//! registers the object under the given identifier with every attribute as supplied
//! (lifecycle ones included), replacing an existing object only when asked to. Private
//! keys go into the HSM as on Register, and, as with Get, never come out.

use kmip::attributes::write_attributes;
use kmip::enums::ObjectType;
use kmip::ops::{get, import};
use kmip::{Tag, Ttlv};

use super::{all_attributes, OpCtx, Outcome};
use crate::kmip_server::error::OpError;

pub(crate) async fn export(cx: &OpCtx<'_>, req: get::Request) -> Result<Outcome, OpError> {
    let id = cx.target(req.unique_identifier.clone())?;
    let mut outcome = super::get::handle(cx, req).await?;
    let row = cx.load(&id).await?;
    let stored = cx.state.store.attributes(&id).await?;
    let attrs = all_attributes(cx, &row, stored);
    let attributes = match cx.version.is_v2() {
        true => write_attributes(&attrs, cx.version),
        false => {
            vec![Ttlv::structure(Tag::TEMPLATE_ATTRIBUTE, write_attributes(&attrs, cx.version))]
        }
    };
    // Object Type and Unique Identifier, then the attributes, then the object.
    let at = outcome.payload.len().min(2);
    outcome.payload.splice(at..at, attributes);
    Ok(outcome)
}

pub(crate) async fn import(cx: &OpCtx<'_>, req: import::Request) -> Result<Outcome, OpError> {
    let id = req.unique_identifier;
    if id.is_empty() || id.len() > 256 {
        return Err(OpError::Invalid("the Unique Identifier is 1 to 256 characters"));
    }
    if let Some(existing) = cx.state.store.object(&id).await? {
        if !req.replace_existing {
            return Err(OpError::AlreadyExists(id));
        }
        // Replacing needs the right to act on the object. What replaces it is checked in
        // full first, registered under a scratch identifier and removed again, so that an
        // object refused (a bad key, say) leaves the existing one as it was. (The existing
        // object must go before the new one takes its identifier, which also binds sealed
        // material and HSM objects: a store or HSM failure in between still loses it.)
        cx.load(&existing.id).await?;
        let scratch = crate::util::uuid_v4();
        register_as(cx, &scratch, req.object.clone()).await?;
        remove(cx, &scratch, i64::from(req.object.object.object_type().0)).await?;
        remove(cx, &id, existing.object_type).await?;
    }
    register_as(cx, &id, req.object).await?;
    Ok(Outcome::new(import::response(&id), Some(id)))
}

/// Registers `object` under the identifier `id`, attributes as supplied.
async fn register_as(
    cx: &OpCtx<'_>,
    id: &str,
    object: kmip::ops::register::Request,
) -> Result<(), OpError> {
    let icx = OpCtx {
        state: cx.state,
        principal: cx.principal,
        version: cx.version,
        now: cx.now,
        placeholder: None,
        operation: cx.operation,
        policy_authorised: cx.policy_authorised,
        import: Some(id.to_owned()),
    };
    super::register::handle(&icx, object).await.map(|_| ())
}

/// Removes object `id` of `object_type`, from the HSM too for key pair halves.
async fn remove(cx: &OpCtx<'_>, id: &str, object_type: i64) -> Result<(), OpError> {
    if [ObjectType::PRIVATE_KEY.0, ObjectType::PUBLIC_KEY.0].contains(&(object_type as u32)) {
        let hsm_id = id.to_owned();
        cx.state.hsm.run(move |hsm, s| hsm.destroy_by_id(s, hsm_id.as_bytes())).await?;
    }
    cx.state.store.delete_object(id).await?;
    Ok(())
}
