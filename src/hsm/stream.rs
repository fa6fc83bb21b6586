//! Multi-part operations (KMIP's Init Indicator, Correlation Value and Final Indicator):
//! AES encryption and decryption, digests, and MACs and their verification. Each
//! operation holds a PKCS#11 session of its own between requests, in which the Init call
//! ran, so every part is one Update call and the last one the Final call. Operations
//! belong to the connection (a lost HSM ends them) and to the caller (and key) that started
//! them (`owner`), are capped in number, and are dropped after [`IDLE`] without a part.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use cryptoki::types::AuthPin;

use super::key_cache::OpenKey;
use super::symmetric::{AesMode, MacKind};
use super::{Hash, Hsm, HsmError, HsmSession, Message, Scheme};

/// Most multi-part operations open at once per HSM connection.
const MAX_STREAMS: usize = 256;
/// Most of them one caller (the first line of a stream's owner) may hold.
const MAX_STREAMS_PER_CALLER: usize = 64;
/// An operation without a part for this long is dropped.
const IDLE: Duration = Duration::from_secs(300);
/// Length of the Correlation Values handed out.
const CORRELATION_LEN: usize = 16;

/// What an operation computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// With the GCM tag length in bytes, split off the final output.
    Encrypt(Option<usize>),
    Decrypt,
    Digest,
    Mac,
    MacVerify,
}

/// What a multi-part digest is for: a signature, or its verification, with the key-pair
/// half `id` under `scheme` once the data is all in (a registered public key, which has no
/// HSM object, verifies with its SubjectPublicKeyInfo `spki`).
#[derive(Clone, Debug)]
pub(crate) enum AfterDigest {
    Sign { id: Vec<u8>, scheme: Scheme },
    Verify { id: Vec<u8>, scheme: Scheme, spki: Option<Vec<u8>> },
}

/// One open multi-part operation.
pub(super) struct Stream {
    /// Its key, for MACs, is a session object here and goes with it.
    session: Session,
    /// Keeps an AES key's open copy from being destroyed while the operation uses it.
    _key: Option<Arc<OpenKey<ObjectHandle>>>,
    kind: Kind,
    after: Option<AfterDigest>,
    owner: String,
    last_used: Instant,
}

impl Stream {
    fn new(
        session: Session,
        key: Option<Arc<OpenKey<ObjectHandle>>>,
        kind: Kind,
        after: Option<AfterDigest>,
        owner: String,
    ) -> Stream {
        Stream { session, _key: key, kind, after, owner, last_used: Instant::now() }
    }
}

/// What one part produced.
pub(crate) struct Part {
    /// Output of the part (encryption, decryption), or of the last part (digest, MAC).
    pub(crate) data: Vec<u8>,
    /// GCM encryption's tag, with the last part.
    pub(crate) tag: Option<Vec<u8>>,
    /// The first part's Correlation Value, for the parts that follow.
    pub(crate) correlation: Option<Vec<u8>>,
    /// MAC verification's answer, with the last part.
    pub(crate) verified: Option<bool>,
}

impl Part {
    fn output(data: Vec<u8>) -> Part {
        Part { data, tag: None, correlation: None, verified: None }
    }
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
    /// Starts a multi-part encryption or decryption with managed AES key `id` (given
    /// sealed) in `mode`, processing the first part. `owner` names the caller and key; only
    /// the same owner may continue it.
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
        let session = self.stream_session(s)?;
        super::symmetric::with_mechanism(mode, |m| {
            let init = if encrypt {
                session.encrypt_init(m, key.handle)
            } else {
                session.decrypt_init(m, key.handle)
            };
            Ok(init?)
        })?;
        let kind = match mode {
            AesMode::Gcm { tag_bits, .. } if encrypt => {
                Kind::Encrypt(Some((*tag_bits / 8) as usize))
            }
            _ if encrypt => Kind::Encrypt(None),
            _ => Kind::Decrypt,
        };
        self.keep(s, Stream::new(session, Some(key), kind, None, owner), data)
    }

    /// Starts a multi-part digest with `hash`, taking the first part; with `after`, the
    /// last part signs or verifies the digest instead of returning it.
    pub(crate) fn digest_stream_start(
        &self,
        s: &HsmSession<'_>,
        hash: Hash,
        after: Option<AfterDigest>,
        data: &[u8],
        owner: String,
    ) -> Result<Part, HsmError> {
        let session = self.stream_session(s)?;
        session.digest_init(&super::symmetric::digest_mechanism(hash))?;
        self.keep(s, Stream::new(session, None, Kind::Digest, after, owner), data)
    }

    /// Starts a multi-part MAC (or its verification) with client key material `key`,
    /// taking the first part.
    pub(crate) fn mac_stream_start(
        &self,
        s: &HsmSession<'_>,
        key: &[u8],
        mac: MacKind,
        verify: bool,
        data: &[u8],
        owner: String,
    ) -> Result<Part, HsmError> {
        let session = self.stream_session(s)?;
        let handle = session.create_object(&super::symmetric::mac_key_template(key, mac))?;
        let mechanism = super::symmetric::mac_mechanism(mac);
        if verify {
            session.verify_init(&mechanism, handle)?;
        } else {
            session.sign_init(&mechanism, handle)?;
        }
        let kind = if verify { Kind::MacVerify } else { Kind::Mac };
        self.keep(s, Stream::new(session, None, kind, None, owner), data)
    }

    /// Processes the next part of the operation `correlation` (for `owner`), ending it
    /// when `last` (`expected`: the MAC or signature a verification checks). An unknown,
    /// expired or someone else's operation is [`HsmError::NoSuchStream`]; an operation
    /// whose part failed is over.
    pub(crate) fn stream_next(
        &self,
        s: &HsmSession<'_>,
        correlation: &[u8],
        owner: &str,
        data: &[u8],
        last: bool,
        expected: Option<&[u8]>,
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
        let mut out = update(&stream.session, stream.kind, data)?;
        if !last {
            stream.last_used = Instant::now();
            let mut streams = s.conn.streams.lock().map_err(|_| HsmError::Poisoned)?;
            streams.0.insert(correlation.to_vec(), stream);
            return Ok(Part::output(out));
        }
        let session = &stream.session;
        let mut verified = None;
        match stream.kind {
            Kind::Encrypt(_) => out.extend(session.encrypt_final()?),
            Kind::Decrypt => out.extend(session.decrypt_final()?),
            Kind::Digest => out = session.digest_final()?,
            Kind::Mac => out = session.sign_final()?,
            Kind::MacVerify => {
                let mac = expected.ok_or(HsmError::MissingAttribute("the MAC to verify"))?;
                verified = Some(match session.verify_final(mac) {
                    Ok(()) => true,
                    Err(cryptoki::error::Error::Pkcs11(
                        cryptoki::error::RvError::SignatureInvalid
                        | cryptoki::error::RvError::SignatureLenRange,
                        _,
                    )) => false,
                    Err(e) => return Err(e.into()),
                });
            }
        }
        let tag = match stream.kind {
            Kind::Encrypt(Some(n)) => Some(out.split_off(out.len().saturating_sub(n))),
            _ => None,
        };
        match stream.after {
            None => {}
            Some(AfterDigest::Sign { id, scheme }) => {
                out = self.sign(s, &id, scheme, Message::Digest(&out))?;
            }
            Some(AfterDigest::Verify { id, scheme, spki }) => {
                let signature = expected.ok_or(HsmError::MissingAttribute("the signature"))?;
                let m = Message::Digest(&out);
                let valid = match (self.verify(s, &id, scheme, m, signature), spki) {
                    (Err(HsmError::KeyNotFound), Some(spki)) => {
                        self.verify_spki(s, &spki, scheme, Message::Digest(&out), signature)
                    }
                    (result, _) => result,
                };
                verified = Some(valid?);
            }
        }
        Ok(Part { data: out, tag, correlation: None, verified })
    }

    /// A session of its own for a multi-part operation, logged in.
    fn stream_session(&self, s: &HsmSession<'_>) -> Result<Session, HsmError> {
        let session = self.inner.ctx.open_rw_session(s.conn.slot)?;
        super::login(&session, &AuthPin::from(self.inner.settings.user_pin.clone()))?;
        Ok(session)
    }

    /// Takes the first part and keeps the operation for the next ones under a fresh
    /// Correlation Value.
    fn keep(&self, s: &HsmSession<'_>, stream: Stream, data: &[u8]) -> Result<Part, HsmError> {
        let first = update(&stream.session, stream.kind, data)?;
        let correlation = crate::util::random_bytes(CORRELATION_LEN);
        let mut streams = s.conn.streams.lock().map_err(|_| HsmError::Poisoned)?;
        streams.0.retain(|_, st| st.last_used.elapsed() < IDLE);
        // Owners are "CALLER\n...": one caller may not take every place.
        fn caller(owner: &str) -> &str {
            owner.split('\n').next().unwrap_or_default()
        }
        let mine = caller(&stream.owner);
        let held = streams.0.values().filter(|st| caller(&st.owner) == mine).count();
        if streams.0.len() >= MAX_STREAMS || held >= MAX_STREAMS_PER_CALLER {
            return Err(HsmError::TooManyStreams);
        }
        streams.0.insert(correlation.clone(), stream);
        Ok(Part { correlation: Some(correlation), ..Part::output(first) })
    }
}

/// One Update call: the output of encryption and decryption; nothing for digests and MACs,
/// whose output comes at the end.
fn update(session: &Session, kind: Kind, data: &[u8]) -> Result<Vec<u8>, HsmError> {
    Ok(match kind {
        Kind::Encrypt(_) => session.encrypt_update(data)?,
        Kind::Decrypt => session.decrypt_update(data)?,
        Kind::Digest => {
            session.digest_update(data)?;
            Vec::new()
        }
        Kind::Mac => {
            session.sign_update(data)?;
            Vec::new()
        }
        Kind::MacVerify => {
            session.verify_update(data)?;
            Vec::new()
        }
    })
}
