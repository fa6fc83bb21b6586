//! Multi-part AES encryption and decryption (KMIP's Init Indicator, Correlation Value and
//! Final Indicator): each operation holds a PKCS#11 session of its own between requests,
//! in which C_EncryptInit/C_DecryptInit ran, so every part is one C_EncryptUpdate (or
//! Decrypt) and the last one C_EncryptFinal. Operations belong to the connection (a lost
//! HSM ends them), to the caller and the key that started them (`owner`), are capped in
//! number, and are dropped after [`IDLE`] without a part.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use cryptoki::types::AuthPin;

use super::key_cache::OpenKey;
use super::symmetric::AesMode;
use super::{Hsm, HsmError, HsmSession};

/// Most multi-part operations open at once per HSM connection.
const MAX_STREAMS: usize = 256;
/// An operation without a part for this long is dropped.
const IDLE: Duration = Duration::from_secs(300);
/// Length of the Correlation Values handed out.
const CORRELATION_LEN: usize = 16;

/// One open multi-part operation.
pub(super) struct Stream {
    session: Session,
    /// Keeps the key's open copy from being destroyed while the operation uses it.
    _key: Arc<OpenKey<ObjectHandle>>,
    encrypt: bool,
    /// GCM tag length in bytes (encryption: split off the final output).
    tag_len: Option<usize>,
    owner: String,
    last_used: Instant,
}

/// What one part produced.
pub(crate) struct Part {
    pub(crate) data: Vec<u8>,
    /// GCM encryption's tag, with the last part.
    pub(crate) tag: Option<Vec<u8>>,
    /// The first part's Correlation Value, for the parts that follow.
    pub(crate) correlation: Option<Vec<u8>>,
}

/// The open operations of one HSM connection, by Correlation Value.
#[derive(Default)]
pub(super) struct Streams(HashMap<Vec<u8>, Stream>);

impl Streams {
    pub(super) fn clear(&mut self) {
        self.0.clear();
    }
}

impl Hsm {
    /// Starts a multi-part operation with managed key `id` (given sealed) in `mode`,
    /// processing the first part. `owner` names the caller and key; only the same owner
    /// may continue it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn aes_stream_start(
        &self,
        s: &HsmSession<'_>,
        sealed: &[u8],
        id: &[u8],
        mode: &AesMode,
        encrypt: bool,
        data: &[u8],
        owner: String,
    ) -> Result<Part, HsmError> {
        let key = self.open_key(s, sealed, id)?;
        let session = self.inner.ctx.open_rw_session(s.conn.slot)?;
        super::login(&session, &AuthPin::from(self.inner.settings.user_pin.clone()))?;
        super::symmetric::with_mechanism(mode, |m| {
            let init = if encrypt {
                session.encrypt_init(m, key.handle)
            } else {
                session.decrypt_init(m, key.handle)
            };
            Ok(init?)
        })?;
        let tag_len = match mode {
            AesMode::Gcm { tag_bits, .. } => Some((*tag_bits / 8) as usize),
            _ => None,
        };
        let first = update(&session, encrypt, data)?;
        let correlation = crate::util::random_bytes(CORRELATION_LEN);
        let mut streams = s.conn.streams.lock().map_err(|_| HsmError::Poisoned)?;
        streams.0.retain(|_, st| st.last_used.elapsed() < IDLE);
        if streams.0.len() >= MAX_STREAMS {
            return Err(HsmError::TooManyStreams);
        }
        let stream =
            Stream { session, _key: key, encrypt, tag_len, owner, last_used: Instant::now() };
        streams.0.insert(correlation.clone(), stream);
        Ok(Part { data: first, tag: None, correlation: Some(correlation) })
    }

    /// Processes the next part of the operation `correlation` (for `owner`), ending it
    /// when `last`. An unknown, expired or someone else's operation is
    /// [`HsmError::NoSuchStream`]; an operation whose part failed is over.
    pub(crate) fn aes_stream_next(
        &self,
        s: &HsmSession<'_>,
        correlation: &[u8],
        owner: &str,
        data: &[u8],
        last: bool,
    ) -> Result<Part, HsmError> {
        // Taken out while it works, so a concurrent part for the same operation finds none.
        let mut stream = {
            let mut streams = s.conn.streams.lock().map_err(|_| HsmError::Poisoned)?;
            match streams.0.remove(correlation) {
                Some(st) if st.owner == owner && st.last_used.elapsed() < IDLE => st,
                Some(st) if st.owner != owner => {
                    streams.0.insert(correlation.to_vec(), st);
                    return Err(HsmError::NoSuchStream);
                }
                _ => return Err(HsmError::NoSuchStream),
            }
        };
        let mut out = update(&stream.session, stream.encrypt, data)?;
        if !last {
            stream.last_used = Instant::now();
            s.conn
                .streams
                .lock()
                .map_err(|_| HsmError::Poisoned)?
                .0
                .insert(correlation.to_vec(), stream);
            return Ok(Part { data: out, tag: None, correlation: None });
        }
        let rest = if stream.encrypt {
            stream.session.encrypt_final()?
        } else {
            stream.session.decrypt_final()?
        };
        out.extend(rest);
        let tag = match (stream.encrypt, stream.tag_len) {
            (true, Some(n)) => Some(out.split_off(out.len().saturating_sub(n))),
            _ => None,
        };
        Ok(Part { data: out, tag, correlation: None })
    }
}

fn update(session: &Session, encrypt: bool, data: &[u8]) -> Result<Vec<u8>, HsmError> {
    Ok(if encrypt { session.encrypt_update(data)? } else { session.decrypt_update(data)? })
}
