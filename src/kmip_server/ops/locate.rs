//! Locate: the caller's objects matching every given attribute, newest first, through
//! indexed lookups (object type and state columns, the attribute match index).

use kmip::attributes::names;
use kmip::ops::locate;
use kmip::Value;

use super::{OpCtx, Outcome};
use crate::kmip_server::error::OpError;
use crate::store::{match_key, DateColumn, LocateQuery};

pub(crate) async fn handle(cx: &OpCtx<'_>, req: locate::Request) -> Result<Outcome, OpError> {
    let paged = req.offset_items.is_some();
    let mut q = LocateQuery {
        owner: cx.principal.as_str().to_owned(),
        all_owners: cx.is_admin(),
        limit: req.maximum_items.map(i64::from),
        offset: req.offset_items.map(i64::from).unwrap_or(0),
        ..LocateQuery::default()
    };
    // Date attributes by name, in request order: kept as lifecycle columns or as stored
    // attributes.
    let mut dates: Vec<(String, Vec<i64>)> = Vec::new();
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
            (names::UNIQUE_IDENTIFIER, Value::TextString(id)) => q.id = Some(id.clone()),
            (names::UNIQUE_IDENTIFIER | names::REVOCATION_REASON, _) => {
                return Err(OpError::Unsupported("Locate by revocation reason is not supported"));
            }
            (name, Value::DateTime(d)) => match dates.iter_mut().find(|(n, _)| n == name) {
                Some((_, values)) => values.push(*d),
                None => dates.push((name.to_owned(), vec![*d])),
            },
            (name, value) => q.attributes.push((name.to_owned(), match_key(name, value))),
        }
    }
    // One instance of a date matches that date; two bound an inclusive range (KMIP 1.4 §4.9).
    for (name, values) in dates {
        let (from, to) = match values.as_slice() {
            [d] => (*d, *d),
            [a, b] => ((*a).min(*b), (*a).max(*b)),
            _ => {
                return Err(OpError::Invalid("a date attribute may appear at most twice in Locate"))
            }
        };
        match date_column(&name) {
            Some(column) => q.date_ranges.push((column, from, to)),
            None => q.attribute_date_ranges.push((name, from, to)),
        }
    }
    // Without a Storage Status Mask, on-line objects; asking for states by name widens that
    // to destroyed ones, which are kept as metadata.
    q.storage_mask = match req.storage_status_mask {
        Some(m) => i64::from(m),
        None if q.states.is_some() => 1 | 4,
        None => 1,
    };
    let (total, ids) = cx.state.store.locate(&q).await?;
    let single = (ids.len() == 1).then(|| ids[0].clone());
    let payload = locate::response(total.try_into().unwrap_or(i32::MAX), &ids, cx.version, paged);
    Ok(Outcome::new(payload, single))
}

/// The lifecycle column a date attribute is kept in.
fn date_column(name: &str) -> Option<DateColumn> {
    Some(match name {
        names::INITIAL_DATE | names::ORIGINAL_CREATION_DATE => DateColumn::Initial,
        names::ACTIVATION_DATE => DateColumn::Activation,
        names::DEACTIVATION_DATE => DateColumn::Deactivation,
        names::DESTROY_DATE => DateColumn::Destroy,
        names::COMPROMISE_DATE => DateColumn::Compromise,
        names::COMPROMISE_OCCURRENCE_DATE => DateColumn::CompromiseOccurrence,
        names::LAST_CHANGE_DATE => DateColumn::LastChange,
        _ => return None,
    })
}
