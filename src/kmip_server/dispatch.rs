//! From request bytes to response bytes: decode, check the protocol version, run each batch
//! item through its handler, audit it, and encode the response. Every failure becomes a
//! KMIP result here, once.

use kmip::enums::{BatchErrorContinuationOption, Operation, ResultReason, ResultStatus};
use kmip::message::{
    RequestBatchItem, RequestMessage, ResponseBatchItem, ResponseHeader, ResponseMessage,
};
use kmip::ops as p;
use kmip::ttlv::binary::{decode, encode, Limits};
use kmip::{ProtocolVersion, Tag, Ttlv, Value};

use super::error::OpError;
use super::ops::{self, OpCtx, Outcome};
use crate::app::AppState;
use crate::authz::Principal;
use crate::store::AuditEvent;

/// The operations this server answers (reported by Query).
pub(crate) const SUPPORTED_OPERATIONS: &[Operation] = &[
    Operation::CREATE,
    Operation::CREATE_KEY_PAIR,
    Operation::REGISTER,
    Operation::CERTIFY,
    Operation::RE_CERTIFY,
    Operation::CHECK,
    Operation::DERIVE_KEY,
    Operation::RE_KEY,
    Operation::RE_KEY_KEY_PAIR,
    Operation::LOCATE,
    Operation::GET,
    Operation::GET_ATTRIBUTES,
    Operation::GET_ATTRIBUTE_LIST,
    Operation::GET_USAGE_ALLOCATION,
    Operation::IMPORT,
    Operation::EXPORT,
    Operation::ADD_ATTRIBUTE,
    Operation::MODIFY_ATTRIBUTE,
    Operation::DELETE_ATTRIBUTE,
    Operation::SET_ATTRIBUTE,
    Operation::ACTIVATE,
    Operation::OBTAIN_LEASE,
    Operation::REVOKE,
    Operation::DESTROY,
    Operation::ENCRYPT,
    Operation::DECRYPT,
    Operation::SIGN,
    Operation::SIGNATURE_VERIFY,
    Operation::MAC,
    Operation::MAC_VERIFY,
    Operation::HASH,
    Operation::RNG_RETRIEVE,
    Operation::RNG_SEED,
    Operation::QUERY,
    Operation::DISCOVER_VERSIONS,
    Operation::LOG,
    Operation::INTEROP,
    Operation::PKCS_11,
    Operation::POLL,
    Operation::CANCEL,
    Operation::ARCHIVE,
    Operation::RECOVER,
];

/// Most random bytes one RNG Retrieve returns.
const MAX_RANDOM: u32 = 65_536;
/// The bytes of a response batch item around its payload and message: its structure,
/// Operation, Unique Batch Item ID, Result Status and Reason, with their padding.
const ITEM_ENVELOPE: usize = 96;
/// Most items one request may batch.
const MAX_BATCH_ITEMS: usize = 1024;
/// Most bytes of answers one response may carry, whatever the client would take: the
/// items after that are not run.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Answers one request message in binary TTLV.
pub(crate) async fn handle_bytes(
    state: &AppState,
    principal: &Principal,
    bytes: &[u8],
    limits: &Limits,
) -> Vec<u8> {
    let response = match decode(bytes, limits) {
        Ok(item) => handle_tree(state, principal, &item).await,
        Err(e) => {
            audit_failure(state, principal, "decode", &e.to_string()).await;
            message_failure(ProtocolVersion::V1_0, ResultReason::INVALID_MESSAGE, e.to_string())
        }
    };
    encode(&response)
}

/// Answers one request message, already decoded from whichever encoding it came in.
pub(crate) async fn handle_tree(state: &AppState, principal: &Principal, item: &Ttlv) -> Ttlv {
    let msg = match RequestMessage::from_ttlv(item) {
        Ok(m) => m,
        Err(e) => {
            audit_failure(state, principal, "decode", &e.to_string()).await;
            let version =
                e.protocol_version.filter(|v| v.is_supported()).unwrap_or(ProtocolVersion::V1_0);
            return message_failure(version, ResultReason::INVALID_MESSAGE, e.to_string());
        }
    };
    let version = msg.header.protocol_version;
    if !version.is_supported() {
        let why = format!("protocol version {version} is not supported; use Discover Versions");
        audit_failure(state, principal, "version", &why).await;
        return message_failure(ProtocolVersion::V1_0, ResultReason::INVALID_MESSAGE, why);
    }
    // A Username and Password credential in the header acts as its configured identity.
    let mapped;
    let principal = match &msg.header.authentication {
        None => principal,
        Some(auth) => match kmip::credential::username_password(auth) {
            Ok(Some(up)) => {
                match state.credentials.check(principal, &up.username, up.password.as_deref()) {
                    Ok(identity) => {
                        mapped = identity.clone();
                        &mapped
                    }
                    Err(refused) => {
                        // The name as given, cut short: it is the client's text.
                        let name: String = up.username.chars().take(64).collect();
                        let why = match refused {
                            crate::authz::Refused::Wrong => {
                                format!("credential for user {name:?} not accepted")
                            }
                            crate::authz::Refused::HeldOff => format!(
                            "credential for user {name:?} not checked: too many wrong passwords; \
                             try again later"
                        ),
                        };
                        audit_failure(state, principal, "authenticate", &why).await;
                        return message_failure(
                            version,
                            ResultReason::AUTHENTICATION_NOT_SUCCESSFUL,
                            why,
                        );
                    }
                }
            }
            Ok(None) => {
                let why = "only Username and Password credentials are accepted".to_owned();
                audit_failure(state, principal, "authenticate", &why).await;
                return message_failure(version, ResultReason::AUTHENTICATION_NOT_SUCCESSFUL, why);
            }
            Err(e) => {
                audit_failure(state, principal, "authenticate", &e.to_string()).await;
                return message_failure(version, ResultReason::INVALID_MESSAGE, e.to_string());
            }
        },
    };
    if msg.batch_items.len() > MAX_BATCH_ITEMS {
        let why = format!("a request batches at most {MAX_BATCH_ITEMS} items");
        audit_failure(state, principal, "batch", &why).await;
        return message_failure(version, ResultReason::INVALID_MESSAGE, why);
    }
    let (max, mut response) = handle_message(state, principal, msg).await;
    // Maximum Response Size counts the TTLV encoding, whatever encoding carries it.
    let len = kmip::ttlv::binary::encoded_len(&response.to_ttlv());
    if let Some(max) = max.filter(|max| len > *max) {
        let why = format!("the response of {len} bytes exceeds Maximum Response Size {max}");
        for item in &mut response.batch_items {
            let mut failed = ResponseBatchItem::failure(
                item.operation,
                ResultReason::RESPONSE_TOO_LARGE,
                why.clone(),
            );
            failed.unique_batch_item_id = item.unique_batch_item_id.take();
            *item = failed;
        }
    }
    response.to_ttlv()
}

/// Runs the batch; returns the client's Maximum Response Size and the response.
async fn handle_message(
    state: &AppState,
    principal: &Principal,
    msg: RequestMessage,
) -> (Option<usize>, ResponseMessage) {
    let version = msg.header.protocol_version;
    let continue_on_error =
        msg.header.batch_error_continuation_option == Some(BatchErrorContinuationOption::CONTINUE);
    let undo =
        msg.header.batch_error_continuation_option == Some(BatchErrorContinuationOption::UNDO);
    let mut placeholder = None;
    let mut journal = undo.then(super::undo::Journal::default);
    let mut items = Vec::with_capacity(msg.batch_items.len());
    let max =
        msg.header.maximum_response_size.and_then(|m| usize::try_from(m).ok()).filter(|m| *m > 0);
    let budget = max.unwrap_or(MAX_RESPONSE_BYTES).min(MAX_RESPONSE_BYTES);
    // The header's bytes, then each item's as it is answered.
    let mut used = 128usize;
    // What the 2.x Unique Identifier enumerations name: the last object each operation of
    // this batch made or found (KMIP 2.1 §11.58).
    let mut by_operation: std::collections::HashMap<u32, String> = Default::default();
    for mut bi in msg.batch_items {
        let id = bi.unique_batch_item_id.clone();
        let operation = bi.operation;
        let mut cx = OpCtx {
            state,
            principal,
            version,
            now: crate::util::now(),
            placeholder: placeholder.clone(),
            operation,
            policy_authorised: false,
            import: None,
        };
        let result = match resolve_enumerated_uid(&mut bi, &by_operation) {
            Err(e) => Err(e),
            Ok(()) => match &journal {
                None => run(&mut cx, bi).await,
                Some(j) => match j.before(&cx, &bi).await {
                    Ok(before) => {
                        let result = run(&mut cx, bi).await;
                        if let (Ok(outcome), Some(j)) = (&result, journal.as_mut()) {
                            j.after(&cx, items.len(), operation, before, &outcome.payload).await;
                        }
                        result
                    }
                    Err(e) => Err(e),
                },
            },
        };
        let failed = result.is_err();
        let mut item = match result {
            Ok(outcome) => {
                audit(state, principal, operation, outcome.object_id.clone(), "ok", None).await;
                remember_uids(&mut by_operation, operation, &outcome.payload);
                if sets_placeholder(operation) {
                    // A Locate that found no one object empties it, so that the next
                    // item's omitted identifier fails rather than meaning an older one.
                    placeholder = outcome.object_id;
                }
                ResponseBatchItem::success(operation, outcome.payload)
            }
            Err(e) => {
                if e.is_internal() {
                    tracing::error!(error = %e, op = ?operation, "KMIP operation failed");
                }
                let denied = matches!(
                    e,
                    OpError::Denied(_)
                        | OpError::ReservedName(_)
                        | OpError::CheckDenied { .. }
                        | OpError::UsageLimitsExhausted(_)
                );
                let outcome = if denied { "denied" } else { "failed" };
                let object = match &e {
                    OpError::Denied(id)
                    | OpError::NotFound(id)
                    | OpError::UsageLimitsExhausted(id) => Some(id.clone()),
                    _ => None,
                };
                audit(state, principal, operation, object, outcome, Some(e.to_string())).await;
                let mut failed = ResponseBatchItem::failure(
                    Some(operation),
                    e.reason(version),
                    e.client_message(),
                );
                // A denied Check empties the ID Placeholder and, in 1.x, names what caused
                // the denial (KMIP 1.4 §4.10).
                if let OpError::CheckDenied { fields, .. } = e {
                    if !version.is_v2() {
                        failed.payload = Some(Ttlv::structure(Tag::RESPONSE_PAYLOAD, fields));
                    }
                    placeholder = None;
                }
                failed
            }
        };
        item.unique_batch_item_id = id;
        // The answers so far, counted as they go, so that a batch cannot build a response
        // of any size: past the budget, this item's answer is dropped and the rest not run.
        used += item.payload.as_ref().map_or(0, kmip::ttlv::binary::encoded_len)
            + item.result_message.as_ref().map_or(0, String::len)
            + ITEM_ENVELOPE;
        let over = used > budget;
        if over {
            let why =
                format!("the answers exceed {budget} bytes; the items after this were not run");
            let mut too_large =
                ResponseBatchItem::failure(Some(operation), ResultReason::RESPONSE_TOO_LARGE, why);
            too_large.unique_batch_item_id = item.unique_batch_item_id.take();
            item = too_large;
        }
        items.push(item);
        if over || (failed && !continue_on_error) {
            if let Some(journal) = journal.take() {
                for i in journal.rollback(&cx).await {
                    items[i].result_status = ResultStatus::OPERATION_UNDONE;
                    // Taken back: what it produced (a ciphertext, a key, random bytes) is
                    // not handed out either; the identifiers and object type it named stay
                    // (as the OASIS test cases expect, and clients' decoders need).
                    if let Some(Value::Structure(fields)) =
                        items[i].payload.as_mut().map(|p| &mut p.value)
                    {
                        fields.retain(|f| {
                            matches!(
                                f.tag,
                                Tag::UNIQUE_IDENTIFIER
                                    | Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER
                                    | Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER
                                    | Tag::OBJECT_TYPE
                            )
                        });
                    }
                }
            }
            break;
        }
    }
    let header = ResponseHeader {
        protocol_version: version,
        time_stamp: crate::util::now(),
        client_correlation_value: msg.header.client_correlation_value,
        server_correlation_value: msg.header.server_correlation_value,
        batch_count: items.len() as i32,
    };
    (max, ResponseMessage { header, batch_items: items })
}

async fn run(cx: &mut OpCtx<'_>, bi: RequestBatchItem) -> Result<Outcome, OpError> {
    let pl = &bi.payload;
    if bi.operation != Operation::LOCATE {
        cx.check_reserved_names(pl)?;
    }
    match bi.operation {
        Operation::DISCOVER_VERSIONS => {
            let offered = p::discover_versions::request(pl)?;
            let versions = p::discover_versions::negotiate(&offered);
            Ok(Outcome::new(p::discover_versions::response(&versions), None))
        }
        Operation::QUERY => {
            ops::query::handle(&p::query::request(pl)?, cx.version, cx.state.kmip_interop)
        }
        Operation::LOG if cx.version.is_v2() => {
            ops::query::log(cx, p::log::Request::from_ttlv(pl)?)
        }
        Operation::PKCS_11 if cx.version.is_v2() => {
            ops::pkcs11::handle(cx, p::pkcs11::Request::from_ttlv(pl)?)
        }
        Operation::INTEROP if cx.version.is_v2() && cx.state.kmip_interop => {
            ops::query::interop(cx, p::interop::Request::from_ttlv(pl)?)
        }
        Operation::CREATE => ops::create::handle(cx, p::create::Request::from_ttlv(pl)?).await,
        Operation::REGISTER => {
            ops::register::handle(cx, p::register::Request::from_ttlv(pl)?).await
        }
        Operation::GET => ops::get::handle(cx, p::get::Request::from_ttlv(pl)?).await,
        Operation::GET_ATTRIBUTES => {
            ops::get_attributes::handle(cx, p::get_attributes::Request::from_ttlv(pl)?).await
        }
        Operation::GET_ATTRIBUTE_LIST => {
            ops::get_attributes::handle_list(cx, p::get_attribute_list::Request::from_ttlv(pl)?)
                .await
        }
        Operation::ADD_ATTRIBUTE => {
            ops::attributes::add(cx, p::add_attribute::Request::from_ttlv(pl)?).await
        }
        Operation::MODIFY_ATTRIBUTE => {
            ops::attributes::modify(cx, p::modify_attribute::Request::from_ttlv(pl)?).await
        }
        Operation::DELETE_ATTRIBUTE => {
            ops::attributes::delete(cx, p::delete_attribute::Request::from_ttlv(pl)?).await
        }
        Operation::SET_ATTRIBUTE if cx.version.is_v2() => {
            ops::attributes::set(cx, p::set_attribute::Request::from_ttlv(pl)?).await
        }
        Operation::ENCRYPT => {
            ops::crypt::handle(cx, p::encrypt::Request::from_ttlv(pl)?, true).await
        }
        Operation::DECRYPT => {
            ops::crypt::handle(cx, p::encrypt::Request::from_ttlv(pl)?, false).await
        }
        Operation::CREATE_KEY_PAIR => {
            ops::key_pair::handle(cx, p::create_key_pair::Request::from_ttlv(pl)?).await
        }
        Operation::SIGN => ops::signature::handle(cx, p::sign::Request::from_ttlv(pl)?, true).await,
        Operation::SIGNATURE_VERIFY => {
            ops::signature::handle(cx, p::sign::Request::from_ttlv(pl)?, false).await
        }
        Operation::MAC => ops::mac::handle(cx, p::mac::Request::from_ttlv(pl)?, true).await,
        Operation::MAC_VERIFY => ops::mac::handle(cx, p::mac::Request::from_ttlv(pl)?, false).await,
        Operation::HASH => ops::mac::hash(cx, p::hash::Request::from_ttlv(pl)?).await,
        // Every operation here completes synchronously: there is never anything to poll or
        // cancel, which the answers say.
        Operation::POLL => {
            p::poll::request(pl)?;
            Err(OpError::NoSuchAsyncOperation)
        }
        Operation::CANCEL => {
            let correlation = p::poll::request(pl)?;
            let result = kmip::enums::CancellationResult::UNAVAILABLE;
            Ok(Outcome::new(p::poll::cancel_response(correlation, result), None))
        }
        Operation::RNG_RETRIEVE => {
            let n = p::rng::retrieve_request(pl)?;
            // Bounded so one request cannot ask the HSM for an unbounded amount.
            let n = u32::try_from(n)
                .ok()
                .filter(|n| (1..=MAX_RANDOM).contains(n))
                .ok_or(OpError::Invalid("Data Length must be between 1 and 65536"))?;
            let data = cx.state.hsm.run(move |hsm, s| hsm.random(s, n)).await?;
            Ok(Outcome::new(p::rng::retrieve_response(data), None))
        }
        Operation::RNG_SEED => {
            let seed = p::rng::seed_request(pl)?;
            let used = i32::try_from(seed.len()).unwrap_or(i32::MAX);
            cx.state.hsm.run(move |hsm, s| hsm.seed_random(s, &seed)).await?;
            Ok(Outcome::new(p::rng::seed_response(used), None))
        }
        Operation::RE_KEY => ops::rekey::handle(cx, p::rekey::Request::from_ttlv(pl)?).await,
        Operation::RE_KEY_KEY_PAIR => {
            ops::key_pair::rekey(cx, p::rekey_key_pair::Request::from_ttlv(pl)?).await
        }
        Operation::CERTIFY => ops::certify::handle(cx, p::certify::Request::from_ttlv(pl)?).await,
        Operation::RE_CERTIFY => {
            ops::certify::recertify(cx, p::recertify::Request::from_ttlv(pl)?).await
        }
        Operation::CHECK => ops::usage::check(cx, p::check::Request::from_ttlv(pl)?).await,
        Operation::EXPORT => ops::import::export(cx, p::get::Request::from_ttlv(pl)?).await,
        Operation::IMPORT => ops::import::import(cx, p::import::Request::from_ttlv(pl)?).await,
        Operation::GET_USAGE_ALLOCATION => {
            ops::usage::allocate(cx, p::get_usage_allocation::Request::from_ttlv(pl)?).await
        }
        Operation::DERIVE_KEY => {
            ops::derive::handle(cx, p::derive_key::Request::from_ttlv(pl)?).await
        }
        Operation::LOCATE => ops::locate::handle(cx, p::locate::Request::from_ttlv(pl)?).await,
        Operation::ACTIVATE => {
            ops::activate::handle(cx, p::activate::Request::from_ttlv(pl)?).await
        }
        Operation::OBTAIN_LEASE => {
            ops::get_attributes::obtain_lease(cx, p::unique_identifier(pl)?).await
        }
        Operation::REVOKE => ops::revoke::handle(cx, p::revoke::Request::from_ttlv(pl)?).await,
        Operation::DESTROY => ops::destroy::handle(cx, p::destroy::Request::from_ttlv(pl)?).await,
        Operation::ARCHIVE => ops::archive::handle(cx, p::UidRequest::from_ttlv(pl)?, true).await,
        Operation::RECOVER => ops::archive::handle(cx, p::UidRequest::from_ttlv(pl)?, false).await,
        _ => Err(OpError::UnsupportedOperation),
    }
}

/// A response with one failed batch item, for messages that could not be read.
pub(crate) fn message_failure(
    version: ProtocolVersion,
    reason: ResultReason,
    message: String,
) -> Ttlv {
    let response = ResponseMessage {
        header: ResponseHeader {
            protocol_version: version,
            time_stamp: crate::util::now(),
            client_correlation_value: None,
            server_correlation_value: None,
            batch_count: 1,
        },
        batch_items: vec![ResponseBatchItem::failure(None, reason, message)],
    };
    response.to_ttlv()
}

pub(super) async fn audit(
    state: &AppState,
    principal: &Principal,
    operation: Operation,
    object_id: Option<String>,
    outcome: &str,
    detail: Option<String>,
) {
    let operation = operation.name().map(str::to_owned).unwrap_or_else(|| format!("{operation:?}"));
    record(state, principal, operation, object_id, outcome, detail).await;
}

/// Audits a batch item taken back because a later item of its Undo batch failed.
pub(super) async fn audit_undone(cx: &OpCtx<'_>, operation: Operation, object_id: Option<String>) {
    audit(cx.state, cx.principal, operation, object_id, "undone", None).await;
}

/// Audits a message refused before any operation ran.
async fn audit_failure(state: &AppState, principal: &Principal, what: &str, detail: &str) {
    record(state, principal, what.to_owned(), None, "rejected", Some(detail.to_owned())).await;
}

async fn record(
    state: &AppState,
    principal: &Principal,
    operation: String,
    object_id: Option<String>,
    outcome: &str,
    detail: Option<String>,
) {
    crate::metrics::count_request("kmip", &operation, outcome);
    let event = AuditEvent {
        at: crate::util::now(),
        principal: principal.to_string(),
        protocol: "kmip",
        operation,
        object_id,
        outcome: outcome.to_owned(),
        detail,
    };
    state.store.audit(event).await;
}

/// The operations whose Unique Identifier becomes the ID Placeholder (KMIP 1.4 §4, 2.1 §6.1:
/// "Create, Create Pair, Register, Derive Key, Re-key, Re-key Key Pair, Certify,
/// Re-Certify, Locate, and Recover", and 2.x's Create Split Key and Join Split Key); the
/// others leave it as it was.
/// Replaces a 2.x Unique Identifier enumeration other than ID Placeholder (KMIP 2.1 §11.58:
/// Create, Create Key Pair Public Key, Locate, ...) with the identifier it names in this
/// batch. ID Placeholder itself is left for the placeholder.
fn resolve_enumerated_uid(
    bi: &mut RequestBatchItem,
    by_operation: &std::collections::HashMap<u32, String>,
) -> Result<(), OpError> {
    let Value::Structure(fields) = &mut bi.payload.value else { return Ok(()) };
    let Some(field) = fields.iter_mut().find(|f| f.tag == Tag::UNIQUE_IDENTIFIER) else {
        return Ok(());
    };
    let Value::Enumeration(which) = field.value else { return Ok(()) };
    use kmip::enums::UniqueIdentifier as U;
    if which == U::ID_PLACEHOLDER.0 {
        return Ok(());
    }
    // §11.58 repeats the operation for each key of the pair: not done here.
    if which == U::CREATE_KEY_PAIR.0 || which == U::RE_KEY_KEY_PAIR.0 {
        return Err(OpError::Unsupported(
            "a Unique Identifier naming both keys of a pair: name its Private Key or Public Key",
        ));
    }
    let id = by_operation.get(&which).ok_or(OpError::NoPlaceholder)?;
    field.value = Value::TextString(id.clone());
    Ok(())
}

/// Records what a successful item's response names, for [`resolve_enumerated_uid`].
fn remember_uids(
    by_operation: &mut std::collections::HashMap<u32, String>,
    operation: Operation,
    payload: &[Ttlv],
) {
    use kmip::enums::UniqueIdentifier as U;
    let text = |tag: Tag| {
        payload.iter().find(|t| t.tag == tag).and_then(|t| t.as_text().ok()).map(str::to_owned)
    };
    let single = match operation {
        Operation::CERTIFY => Some(U::CERTIFY),
        Operation::CREATE => Some(U::CREATE),
        Operation::DERIVE_KEY => Some(U::DERIVE_KEY),
        Operation::IMPORT => Some(U::IMPORT),
        Operation::REGISTER => Some(U::REGISTER),
        Operation::RE_KEY => Some(U::RE_KEY),
        Operation::RE_CERTIFY => Some(U::RE_CERTIFY),
        Operation::JOIN_SPLIT_KEY => Some(U::JOIN_SPLIT_KEY),
        // A Locate names an object only when it found exactly one (else none, as the ID
        // Placeholder is emptied).
        Operation::LOCATE => {
            let found: Vec<&Ttlv> =
                payload.iter().filter(|t| t.tag == Tag::UNIQUE_IDENTIFIER).collect();
            match found.as_slice() {
                [one] if one.as_text().is_ok() => {
                    by_operation.insert(U::LOCATE.0, one.as_text().unwrap_or_default().to_owned());
                }
                _ => {
                    by_operation.remove(&U::LOCATE.0);
                }
            }
            None
        }
        _ => None,
    };
    if let Some(which) = single {
        if let Some(id) = text(Tag::UNIQUE_IDENTIFIER) {
            by_operation.insert(which.0, id);
        }
    }
    let pair = match operation {
        Operation::CREATE_KEY_PAIR => {
            Some((U::CREATE_KEY_PAIR_PRIVATE_KEY, U::CREATE_KEY_PAIR_PUBLIC_KEY))
        }
        Operation::RE_KEY_KEY_PAIR => {
            Some((U::RE_KEY_KEY_PAIR_PRIVATE_KEY, U::RE_KEY_KEY_PAIR_PUBLIC_KEY))
        }
        _ => None,
    };
    if let Some((private, public)) = pair {
        if let Some(id) = text(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER) {
            by_operation.insert(private.0, id);
        }
        if let Some(id) = text(Tag::PUBLIC_KEY_UNIQUE_IDENTIFIER) {
            by_operation.insert(public.0, id);
        }
    }
}

fn sets_placeholder(op: Operation) -> bool {
    matches!(
        op,
        Operation::CREATE
            | Operation::IMPORT
            | Operation::EXPORT
            | Operation::CREATE_KEY_PAIR
            | Operation::REGISTER
            | Operation::DERIVE_KEY
            | Operation::RE_KEY
            | Operation::RE_KEY_KEY_PAIR
            | Operation::CERTIFY
            | Operation::RE_CERTIFY
            | Operation::LOCATE
            | Operation::RECOVER
            | Operation::CREATE_SPLIT_KEY
            | Operation::JOIN_SPLIT_KEY
    )
}
