//! Export and Import (KMIP 2.1 §6.1.18, §6.1.25): moving an object between key managers
//! with its identifier and all its attributes. Export is Get plus the attributes; Import
//! registers the object under the given identifier with every attribute as supplied
//! (lifecycle ones included), replacing an existing object only when asked to. Private
//! keys go into the HSM as on Register, and, as with Get, never come out.

use kmip::attributes::write_attributes;
use kmip::ops::{get, import};
use kmip::{Tag, Ttlv};

use super::{all_attributes, Import, OpCtx, Outcome};
use crate::hsm::HsmError;
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
    // An object's identifier is also its HSM objects' CKA_ID, and the service's own keys
    // have theirs: an Import must not name them.
    if id.starts_with(crate::hsm::SERVICE_ID_PREFIX) {
        return Err(OpError::Invalid("Unique Identifiers starting strongroom- are the server's"));
    }
    let Some(existing) = cx.state.store.object(&id).await? else {
        register_as(cx, Import { id: id.clone(), replaces: None }, req.object).await?;
        return Ok(Outcome::new(import::response(&id), Some(id)));
    };
    if !req.replace_existing {
        return Err(OpError::AlreadyExists(id));
    }
    // Replacing needs the right to act on the object. The store swaps the two in one
    // transaction; a key pair half's HSM object, which the identifier also names, is set
    // aside under another CKA_ID meanwhile, and put back if the replacement fails.
    let old = cx.load(&existing.id).await?;
    let _one_at_a_time = REPLACING.lock().await;
    let in_hsm = super::is_key_pair_half(&old);
    let aside = format!("replaced:{}", crate::util::uuid_v4());
    if in_hsm {
        rebind(cx, &id, &aside).await?;
    }
    let import = Import { id: id.clone(), replaces: Some(old.version) };
    let result = register_as(cx, import, req.object).await;
    if in_hsm {
        let tidied = match &result {
            Ok(()) => {
                let hsm_id = aside.clone();
                cx.state.hsm.run(move |hsm, s| hsm.destroy_by_id(s, hsm_id.as_bytes())).await
            }
            Err(_) => rebind(cx, &aside, &id).await.map(drop),
        };
        if let Err(e) = tidied {
            // The store is right either way; what is left in the token is named here.
            tracing::error!(object = %id, hsm_id = %aside, put_back = result.is_err(), error = %e,
                "a replaced object's HSM key could not be tidied up");
        }
    }
    result?;
    Ok(Outcome::new(import::response(&id), Some(id)))
}

/// Replacing Imports, one at a time: each sets HSM objects aside under the identifier it
/// replaces, which a second one would take for its own.
static REPLACING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Moves HSM objects from CKA_ID `from` to `to`.
async fn rebind(cx: &OpCtx<'_>, from: &str, to: &str) -> Result<usize, HsmError> {
    let (from, to) = (from.to_owned(), to.to_owned());
    cx.state.hsm.run(move |hsm, s| hsm.rebind_id(s, from.as_bytes(), to.as_bytes())).await
}

/// Registers `object` as `import` says, attributes as supplied.
async fn register_as(
    cx: &OpCtx<'_>,
    import: Import,
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
        import: Some(import),
    };
    super::register::handle(&icx, object).await.map(|_| ())
}
