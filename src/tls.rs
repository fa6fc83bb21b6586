//! What the KMIP and HTTPS listeners share: TLS configuration (TLS 1.2 and 1.3 only, the
//! server key held in the HSM, client certificates checked against the internal CA's root
//! through its intermediates) and the accept loop's next-connection step.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::RootCertStore;
use rustls::{DigitallySignedStruct, DistinguishedName};

use crate::ca::Ca;
use crate::hsm::HsmSigner;

#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client verifier setup failed: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// Whether a listener demands client certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    /// KMIP: no certificate, no connection.
    Required,
    /// HTTPS: ACME clients have none; routes that need one check it themselves.
    Optional,
}

pub(crate) fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: HsmSigner,
    ca: Arc<Ca>,
    auth: ClientAuth,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    for root in ca.root_certs() {
        roots.add(root)?;
    }
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots));
    let inner = match auth {
        ClientAuth::Required => verifier.build()?,
        ClientAuth::Optional => verifier.allow_unauthenticated().build()?,
    };
    let verifier = Arc::new(WithIntermediates { inner, ca });
    let certified = CertifiedKey::new(chain, Arc::new(key));
    let config = ServerConfig::builder_with_protocol_versions(&[
        &rustls::version::TLS13,
        &rustls::version::TLS12,
    ])
    .with_client_cert_verifier(verifier)
    .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    Ok(Arc::new(config))
}

/// Client certificates chain to a root through the CA's intermediates (and cross-
/// certificates). Clients that send only their own certificate (many KMIP clients do) get
/// those supplied here, including ones created by a rotation after the listener started.
struct WithIntermediates {
    inner: Arc<dyn ClientCertVerifier>,
    ca: Arc<Ca>,
}

impl std::fmt::Debug for WithIntermediates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WithIntermediates")
    }
}

impl ClientCertVerifier for WithIntermediates {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let mut all = intermediates.to_vec();
        for c in self.ca.chain_certs() {
            if !all.iter().any(|have| have.as_ref() == c.as_ref()) {
                all.push(c);
            }
        }
        let verified = self.inner.verify_client_cert(end_entity, &all, now)?;
        // A chain through a revoked intermediate is refused even when the client sent the
        // intermediate itself (webpki checks signatures, not revocation).
        let issuer_key_id = x509_parser::parse_x509_certificate(end_entity)
            .ok()
            .and_then(|(_, c)| crate::authz::authority_key_id(&c));
        if issuer_key_id.is_some_and(|k| self.ca.revoked_key_id(&k)) {
            return Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// After the listener stopped accepting, waits (at most `grace`) until every connection
/// task has returned its permit: in-flight requests finish and connections close.
pub(crate) async fn drain(
    permits: &Arc<tokio::sync::Semaphore>,
    max: usize,
    grace: std::time::Duration,
    listener_name: &'static str,
) {
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    match tokio::time::timeout(grace, permits.acquire_many(all)).await {
        Ok(_) => tracing::info!(listener = listener_name, "connections drained"),
        Err(_) => tracing::warn!(
            listener = listener_name,
            open = max.saturating_sub(permits.available_permits()),
            "connections still open after the grace period; closing them"
        ),
    }
}

/// The next TCP connection, or `None` once `shutdown` turns true. Accept errors (such as
/// running out of file descriptors) are logged and retried after a short pause.
pub(crate) async fn next_connection(
    listener: &tokio::net::TcpListener,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
    listener_name: &'static str,
) -> Option<(tokio::net::TcpStream, std::net::SocketAddr)> {
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => return Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, listener = listener_name, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return None,
        }
    }
}

/// How long, and for how many bytes, a closing connection's unread input is read and
/// dropped (see [`close_lingering`]).
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;

/// Ends our side of `stream` (TLS close_notify, then the TCP write side), then reads and
/// drops what the client still sends, within bounds, until it closes too. Closing a socket
/// with input unread makes the kernel reset the connection, and a reset discards the
/// answer still on its way: a refusal sent before the request was read whole (KMIP's
/// Invalid Message, HTTP's 413) would never reach the client.
pub(crate) async fn close_lingering<S>(stream: &mut S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A peer that reads nothing would hold the close_notify, and the connection, forever.
    let _ = tokio::time::timeout(LINGER, stream.shutdown()).await;
    let _ = tokio::time::timeout(LINGER, async {
        let mut sink = [0u8; 4096];
        let mut total = 0;
        while total < LINGER_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}

/// A stream whose writes fail with `TimedOut` once one has waited `limit` without
/// progress: a peer that stops reading the answer cannot hold a connection and its slot
/// for ever. (Reads are bounded elsewhere: hyper's header timeout and the request body's
/// deadline; a read also waits, legitimately, while a request is being worked on.)
pub(crate) struct Stalled<I> {
    io: I,
    limit: std::time::Duration,
    writing: Timer,
}

/// When a pending read or write gives up.
struct Timer {
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    armed: bool,
}

impl Timer {
    fn new() -> Timer {
        Timer { sleep: Box::pin(tokio::time::sleep(std::time::Duration::ZERO)), armed: false }
    }

    /// After a poll of the stream: progress disarms; waiting arms the timer once, and
    /// turns into an error when it fires.
    fn after<T>(
        &mut self,
        limit: std::time::Duration,
        polled: std::task::Poll<std::io::Result<T>>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::future::Future;
        use std::task::Poll;
        if polled.is_ready() {
            self.armed = false;
            return polled;
        }
        if !self.armed {
            self.sleep.as_mut().reset(tokio::time::Instant::now() + limit);
            self.armed = true;
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::ErrorKind::TimedOut.into())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I> Stalled<I> {
    pub(crate) fn new(io: I, limit: std::time::Duration) -> Stalled<I> {
        Stalled { io, limit, writing: Timer::new() }
    }
}

impl<I: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Stalled<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Stalled<I> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let polled = std::pin::Pin::new(&mut this.io).poll_write(cx, buf);
        this.writing.after(this.limit, polled, cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let polled = std::pin::Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.writing.after(this.limit, polled, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = &mut *self;
        let polled = std::pin::Pin::new(&mut this.io).poll_flush(cx);
        this.writing.after(this.limit, polled, cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = &mut *self;
        let polled = std::pin::Pin::new(&mut this.io).poll_shutdown(cx);
        this.writing.after(this.limit, polled, cx)
    }
}

/// Most TLS handshakes one peer address may have under way at once.
pub(crate) const HANDSHAKES_PER_ADDRESS: usize = 64;
/// Most from one IPv6 /64 together: one host may hold a whole /64 and pick any address in
/// it, while a subnet's many hosts each still have their own allowance.
pub(crate) const HANDSHAKES_PER_NETWORK: usize = 512;

/// Warnings about refused connections, at most one a second per listener (with how many
/// were left out): a peer refused over and over must not flood the log.
pub(crate) struct Refusals {
    listener: &'static str,
    /// When the last warning went out, and the refusals since.
    state: std::sync::Mutex<(Option<std::time::Instant>, u64)>,
}

impl Refusals {
    pub(crate) fn new(listener: &'static str) -> Refusals {
        Refusals { listener, state: std::sync::Mutex::new((None, 0)) }
    }

    /// Notes a connection from `peer` refused for `why`; whether a warning went out.
    pub(crate) fn refused(&self, peer: std::net::SocketAddr, why: &'static str) -> bool {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (last, left_out) = &mut *state;
        if last.is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(1)) {
            *left_out += 1;
            return false;
        }
        let listener = self.listener;
        tracing::warn!(%peer, listener, reason = why, left_out = *left_out, "connection refused");
        *last = Some(std::time::Instant::now());
        *left_out = 0;
        true
    }
}

/// Places for TLS handshakes under way on a listener of `max_connections`, from all peers
/// together: a quarter of its connections, so that clients which never finish theirs
/// (from however many addresses) cannot hold the slots of clients that did.
pub(crate) fn handshake_pool(max_connections: usize) -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new((max_connections / 4).max(1)))
}

/// What a peer's slots count against.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    Address(std::net::IpAddr),
    /// An IPv6 /64, by its first 64 bits.
    Network(u64),
}

/// Slots held by peer address (and IPv6 /64), so that one peer cannot take every
/// connection slot: handshakes under way (which it may never finish), or, where clients
/// need no certificate, open connections.
pub(crate) struct PeerSlots {
    held: std::sync::Mutex<std::collections::HashMap<Source, usize>>,
    per_address: usize,
    per_network: usize,
}

/// One slot held; freed when dropped.
pub(crate) struct PeerSlot {
    all: Arc<PeerSlots>,
    sources: Vec<Source>,
}

impl PeerSlots {
    /// At most `per_address` slots for one address, and `per_network` for one IPv6 /64.
    pub(crate) fn new(per_address: usize, per_network: usize) -> Arc<PeerSlots> {
        Arc::new(PeerSlots { held: Default::default(), per_address, per_network })
    }

    /// For TLS handshakes under way.
    pub(crate) fn handshakes() -> Arc<PeerSlots> {
        PeerSlots::new(HANDSHAKES_PER_ADDRESS, HANDSHAKES_PER_NETWORK)
    }

    /// A slot for `peer`, unless it holds too many.
    pub(crate) fn enter(self: &Arc<Self>, peer: std::net::IpAddr) -> Option<PeerSlot> {
        // An IPv4-mapped address is the IPv4 address.
        let peer = peer.to_canonical();
        let mut sources = vec![(Source::Address(peer), self.per_address)];
        if let std::net::IpAddr::V6(v6) = peer {
            let network = (v6.to_bits() >> 64) as u64;
            sources.push((Source::Network(network), self.per_network));
        }
        let mut map = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if sources.iter().any(|(s, max)| map.get(s).is_some_and(|n| n >= max)) {
            return None;
        }
        for (s, _) in &sources {
            *map.entry(*s).or_default() += 1;
        }
        Some(PeerSlot { all: self.clone(), sources: sources.into_iter().map(|(s, _)| s).collect() })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut map = self.all.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for s in &self.sources {
            if let Some(n) = map.get_mut(s) {
                *n -= 1;
                if *n == 0 {
                    map.remove(s);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::{PeerSlots, HANDSHAKES_PER_ADDRESS, HANDSHAKES_PER_NETWORK};

    /// Refusals are logged at most once a second, the others counted.
    #[test]
    fn refusals_are_logged_once_a_second() {
        let log = super::Refusals::new("test");
        let peer = "192.0.2.1:4000".parse().unwrap();
        assert!(log.refused(peer, "why"));
        assert!(!log.refused(peer, "why"));
        assert!(!log.refused(peer, "why"));
        assert_eq!(log.state.lock().unwrap().1, 2);
    }

    /// Each address has its own allowance, and one IPv6 /64 a larger one for all its
    /// addresses together; an IPv4 address and its IPv4-mapped form are one address.
    #[test]
    fn handshakes_are_capped_per_address_and_ipv6_network() {
        let all = PeerSlots::handshakes();
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let held: Vec<_> = (0..HANDSHAKES_PER_ADDRESS).map(|_| all.enter(one).unwrap()).collect();
        assert!(all.enter(one).is_none(), "the address's own cap");
        let network: Vec<_> = (HANDSHAKES_PER_ADDRESS..HANDSHAKES_PER_NETWORK)
            .map(|i| {
                let peer: IpAddr = format!("2001:db8:1:2::{:x}", i + 2).parse().unwrap();
                all.enter(peer).expect("another address of the /64")
            })
            .collect();
        assert!(all.enter("2001:db8:1:2:ffff::9".parse().unwrap()).is_none(), "the /64's cap");
        assert!(all.enter("2001:db8:1:3::1".parse().unwrap()).is_some(), "another /64");
        drop(network);
        drop(held);
        assert!(all.enter(one).is_some(), "released");

        let v4: Vec<_> = (0..HANDSHAKES_PER_ADDRESS)
            .map(|_| all.enter("192.0.2.7".parse().unwrap()).unwrap())
            .collect();
        assert!(all.enter("::ffff:192.0.2.7".parse().unwrap()).is_none(), "mapped form");
        assert!(all.enter("192.0.2.8".parse().unwrap()).is_some());
        drop(v4);
    }
}
