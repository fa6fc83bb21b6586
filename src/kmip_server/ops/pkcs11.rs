//! The PKCS#11 operation (KMIP 2.1 §6.1.37): a client's PKCS#11 calls carried over KMIP.
//!
//! C_Initialize opens a context for the caller (its Correlation Value names it), C_GetInfo
//! answers what the service's PKCS#11 module says of itself, and C_Finalize closes the
//! context. Every other function answers CKR_FUNCTION_NOT_SUPPORTED: passing a client's
//! sessions, logins and object handles through to the service's token would go around the
//! KMIP access control and the wrapping of everything the token holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kmip::enums::{Pkcs11Function as F, Pkcs11ReturnCode as Rv};
use kmip::ops::pkcs11::{CkInfo, Function, Request, Response};

use super::{OpCtx, Outcome};
use crate::kmip_server::error::OpError;

/// Most contexts open at once, over all clients.
const MAX_CONTEXTS: usize = 1024;
/// A context unused for this long is closed.
const IDLE: Duration = Duration::from_secs(300);
/// The name of the default interface (PKCS#11 3.0 §5.2, C_GetInterface).
const DEFAULT_INTERFACE: &str = "PKCS 11";

/// The open PKCS#11 contexts, by Correlation Value: whose each is, and when it was last
/// used. Shared by the TTLV and HTTPS transports, so a client may switch connections.
#[derive(Clone, Default)]
pub(crate) struct Contexts(Arc<Mutex<HashMap<Vec<u8>, Context>>>);

struct Context {
    owner: String,
    last_used: Instant,
}

impl Contexts {
    /// Opens a context for `owner`; `None` when too many are open.
    fn open(&self, owner: &str) -> Option<Vec<u8>> {
        let mut map = self.0.lock().ok()?;
        map.retain(|_, c| c.last_used.elapsed() < IDLE);
        if map.len() >= MAX_CONTEXTS {
            return None;
        }
        let id = crate::util::random_bytes(16);
        map.insert(id.clone(), Context { owner: owner.to_owned(), last_used: Instant::now() });
        Some(id)
    }

    /// Whether `id` names an open context of `owner` (marking it used), closing it when
    /// `close` is set.
    fn touch(&self, id: Option<&[u8]>, owner: &str, close: bool) -> bool {
        let (Some(id), Ok(mut map)) = (id, self.0.lock()) else { return false };
        let live = match map.get_mut(id) {
            Some(c) if c.owner == owner && c.last_used.elapsed() < IDLE => {
                c.last_used = Instant::now();
                true
            }
            _ => false,
        };
        if live && close {
            map.remove(id);
        }
        live
    }
}

pub(crate) fn handle(cx: &OpCtx<'_>, req: Request) -> Result<Outcome, OpError> {
    if let Some(name) = req.interface.as_deref().filter(|n| *n != DEFAULT_INTERFACE) {
        return Err(OpError::Pkcs11Interface(name.to_owned()));
    }
    let contexts = &cx.state.kmip_pkcs11;
    let owner = cx.principal.as_str();
    let current = req.correlation_value.as_deref();
    let mut answer = Response {
        interface: req.interface.clone(),
        function: req.function,
        correlation_value: None,
        output: None,
        return_code: Rv::OK,
    };
    match req.function {
        // The arguments (threading callbacks) mean nothing across the wire: not read.
        Function::Standard(F::C_INITIALIZE) => {
            if contexts.touch(current, owner, false) {
                answer.return_code = Rv::CRYPTOKI_ALREADY_INITIALIZED;
            } else {
                match contexts.open(owner) {
                    Some(id) => answer.correlation_value = Some(id),
                    None => answer.return_code = Rv::HOST_MEMORY,
                }
            }
        }
        Function::Standard(F::C_GETINFO) => {
            if contexts.touch(current, owner, false) {
                let m = cx.state.hsm.module_info()?;
                let info = CkInfo {
                    cryptoki_version: m.cryptoki_version,
                    manufacturer_id: m.manufacturer,
                    library_description: m.description,
                    library_version: m.library_version,
                };
                answer.output = Some(info.encode());
            } else {
                answer.return_code = Rv::CRYPTOKI_NOT_INITIALIZED;
            }
        }
        Function::Standard(F::C_FINALIZE) => {
            if !contexts.touch(current, owner, true) {
                answer.return_code = Rv::CRYPTOKI_NOT_INITIALIZED;
            }
        }
        _ => answer.return_code = Rv::FUNCTION_NOT_SUPPORTED,
    }
    Ok(Outcome::new(answer.to_ttlv(), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_belong_to_their_owner_and_close_once() {
        let c = Contexts::default();
        let id = c.open("alice").unwrap();
        assert!(!c.touch(Some(&id), "bob", false), "another client's context");
        assert!(c.touch(Some(&id), "alice", false));
        assert!(c.touch(Some(&id), "alice", true));
        assert!(!c.touch(Some(&id), "alice", true), "closed");
        assert!(!c.touch(None, "alice", false));
    }

    #[test]
    fn contexts_are_capped() {
        let c = Contexts::default();
        for _ in 0..MAX_CONTEXTS {
            assert!(c.open("alice").is_some());
        }
        assert!(c.open("alice").is_none());
    }
}
