//! The KMIP listener: TLS with client certificates required, TTLV framing with a size limit
//! checked before the body is read, idle and per-request timeouts, and a cap on concurrent
//! connections. Each message is answered by `dispatch`.

pub(crate) mod dispatch;
pub(crate) mod error;
pub(crate) mod ops;
pub(crate) mod rotation;
mod undo;

use std::sync::Arc;

use kmip::enums::ResultReason;
use kmip::ttlv::binary::{frame_len, HEADER_LEN};
use kmip::ProtocolVersion;
use kmip::Tag;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use crate::app::AppState;
use crate::authz::Principal;
use crate::config::KmipLimits;

const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a refusal, or the close at shutdown, may take to reach the client.
const REFUSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts KMIP connections until `shutdown` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    state: AppState,
    limits: KmipLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let handshakes = crate::tls::PeerSlots::handshakes();
    let handshaking = crate::tls::handshake_pool(limits.max_connections);
    let refusals = crate::tls::Refusals::new("KMIP");
    let limits = Arc::new(limits);
    loop {
        let Some((tcp, peer)) = crate::tls::next_connection(&listener, &mut shutdown, "KMIP").await
        else {
            break;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            let _ = refusals.refused(peer, "too many connections");
            continue;
        };
        let Some(handshake) = handshakes.enter(peer.ip()) else {
            let _ = refusals.refused(peer, "too many handshakes from its address");
            continue;
        };
        let Ok(handshaking) = handshaking.clone().try_acquire_owned() else {
            let _ = refusals.refused(peer, "too many handshakes under way");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state = state.clone();
        let limits = limits.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let handshaken = timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
            drop((handshake, handshaking));
            let tls = match handshaken {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::info!(%peer, error = %e, "KMIP TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::info!(%peer, "KMIP TLS handshake timed out");
                    return;
                }
            };
            // The handshake required a certificate.
            let Some(leaf) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).cloned()
            else {
                return;
            };
            let Some(principal) =
                crate::authz::connecting_principal(&state.store, &state.ca, &leaf, "kmip").await
            else {
                return;
            };
            if let Err(e) = connection(tls, &state, &principal, &limits, &mut shutdown).await {
                tracing::debug!(%peer, error = %e, "KMIP connection closed");
            }
        });
    }
    // Graceful shutdown: a request being served is answered, idle connections close.
    crate::tls::drain(&permits, limits.max_connections, limits.request_timeout, "KMIP").await;
}

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("idle timeout")]
    Idle,
    #[error("request not received in time")]
    Slow,
    #[error("message refused: {0}")]
    Refused(&'static str),
}

/// Serves one client: reads whole messages, answers each in order. At shutdown it stops
/// between messages; a message already arriving is read, answered, and then it stops.
async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    state: &AppState,
    principal: &Principal,
    limits: &KmipLimits,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), ConnError> {
    let decode_limits = state.kmip_limits;
    loop {
        let mut header = [0u8; HEADER_LEN];
        // The first byte of the next message, or shutdown while waiting for it.
        let first = tokio::select! {
            r = timeout(limits.idle_timeout, stream.read_exact(&mut header[..1])) => r,
            _ = shutdown.changed() => {
                let _ = timeout(REFUSE_TIMEOUT, stream.shutdown()).await;
                return Ok(());
            }
        };
        match first {
            Err(_) => return Err(ConnError::Idle),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(r) => r?,
        };
        match timeout(limits.request_timeout, stream.read_exact(&mut header[1..])).await {
            Err(_) => return Err(ConnError::Slow),
            Ok(r) => r?,
        };
        // Only a Request Message structure can start a message; anything else means the
        // stream cannot be framed, so answer once and close.
        let tag = u32::from_be_bytes([0, header[0], header[1], header[2]]);
        if tag != Tag::REQUEST_MESSAGE.0 || header[3] != 0x01 {
            refuse(&mut stream, "not a KMIP Request Message").await?;
            return Err(ConnError::Refused("not a request message"));
        }
        let len = frame_len(&header).unwrap_or(HEADER_LEN);
        if len > limits.max_message_bytes {
            refuse(&mut stream, "message exceeds the server's size limit").await?;
            return Err(ConnError::Refused("message too large"));
        }
        let mut buf = vec![0u8; len];
        buf[..HEADER_LEN].copy_from_slice(&header);
        match timeout(limits.request_timeout, stream.read_exact(&mut buf[HEADER_LEN..])).await {
            Err(_) => return Err(ConnError::Slow),
            Ok(r) => r?,
        };
        let response = dispatch::handle_bytes(state, principal, &buf, &decode_limits).await;
        send(&mut stream, &response, limits.request_timeout).await?;
    }
}

/// Answers a message that cannot be served with an Invalid Message failure; the caller
/// then closes the connection.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    why: &str,
) -> Result<(), ConnError> {
    let response = dispatch::message_failure(
        ProtocolVersion::V1_0,
        ResultReason::INVALID_MESSAGE,
        why.to_owned(),
    );
    let answer = kmip::ttlv::binary::encode(&response);
    send(stream, &answer, REFUSE_TIMEOUT).await?;
    // The rest of the refused message is usually still arriving.
    crate::tls::close_lingering(stream).await;
    Ok(())
}

/// Writes and flushes `bytes` within `limit`: a client that stops reading fills the TLS
/// buffer, and the flush would otherwise hold the connection there.
async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    limit: std::time::Duration,
) -> Result<(), ConnError> {
    timeout(limit, async {
        stream.write_all(bytes).await?;
        stream.flush().await
    })
    .await
    .map_err(|_| ConnError::Slow)??;
    Ok(())
}
