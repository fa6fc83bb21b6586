//! Locate: the caller's objects matching every given attribute, newest first, through
//! indexed lookups (object type and state columns, the attribute match index).

use kmip::attributes::names;
use kmip::ops::locate;
use kmip::Value;

use super::{OpCtx, Outcome};
use crate::kmip_server::error::OpError;
use crate::store::{match_key, LocateQuery};

pub(crate) async fn handle(cx: &OpCtx<'_>, req: locate::Request) -> Result<Outcome, OpError> {
    let mut q = LocateQuery {
        owner: cx.principal.as_str().to_owned(),
        limit: req.maximum_items.map(i64::from),
        offset: req.offset_items.map(i64::from).unwrap_or(0),
        ..LocateQuery::default()
    };
    for a in req.attributes {
        match (a.name.as_str(), &a.value) {
            (names::OBJECT_TYPE, Value::Enumeration(t)) => q.object_type = Some(i64::from(*t)),
            (names::STATE, Value::Enumeration(s)) => {
                q.states.get_or_insert_with(Vec::new).push(i64::from(*s))
            }
            (names::CRYPTOGRAPHIC_USAGE_MASK, Value::Integer(m)) => {
                q.usage_mask = Some(i64::from(*m))
            }
            (names::OBJECT_TYPE | names::STATE | names::CRYPTOGRAPHIC_USAGE_MASK, _) => {
                return Err(OpError::Invalid("Locate attribute has the wrong type"));
            }
            (
                names::UNIQUE_IDENTIFIER
                | names::INITIAL_DATE
                | names::LAST_CHANGE_DATE
                | names::ACTIVATION_DATE
                | names::DEACTIVATION_DATE
                | names::DESTROY_DATE
                | names::COMPROMISE_DATE
                | names::COMPROMISE_OCCURRENCE_DATE
                | names::ORIGINAL_CREATION_DATE
                | names::REVOCATION_REASON,
                _,
            ) => {
                return Err(OpError::Unsupported(
                    "Locate by date or identifier is not supported yet",
                ))
            }
            (name, value) => q.attributes.push((name.to_owned(), match_key(name, value))),
        }
    }
    let (total, ids) = cx.state.store.locate(&q).await?;
    let single = (ids.len() == 1).then(|| ids[0].clone());
    let payload = locate::response(total.try_into().unwrap_or(i32::MAX), &ids, cx.version);
    Ok(Outcome::new(payload, single))
}
