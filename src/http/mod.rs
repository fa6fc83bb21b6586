//! The HTTPS listener: same CA and HSM-held server key as KMIP, client certificates optional
//! (enforced per route). Routes: `/health`, `/ready`, `/metrics` (Prometheus), `POST /kmip` (KMIP over HTTPS), the REST API
//! under `/v1/` (`api`), ACME under `/acme/` (`acme`), and the OCSP responder at `/ocsp`.
//! The optional plain-HTTP listeners serve the OCSP responder and the public PKI routes (CA
//! certificates, CRLs) only (`[ca] http_listen`), and `/health`, `/ready` and `/metrics`
//! only (`[http] ops_listen`).

mod acme;
mod api;
mod kmip;
mod ocsp;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use crate::app::AppState;
use crate::authz::Principal;

/// The identity of the connection's client certificate, if it sent one; added to every
/// request of the connection.
#[derive(Clone, Debug)]
pub(crate) struct Peer(pub(crate) Option<Principal>);

/// Largest request body outside `/kmip` (policies, CSRs, JWS, OCSP requests).
const MAX_BODY: usize = 256 * 1024;

fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        // Its handler reads the body (up to `[kmip] max_message_bytes`) once the client
        // has shown a certificate.
        .route("/kmip", post(kmip::post))
        .route("/ocsp", post(ocsp::post))
        .route("/ocsp/{*request}", get(ocsp::get))
        .merge(api::router(state.clone()))
        .merge(acme::router(state.clone()))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// The plain-HTTP listener's routes: signed revocation data and CA certificates only.
pub(crate) fn revocation_router(state: AppState) -> Router {
    Router::new()
        .route("/ocsp", post(ocsp::post))
        .route("/ocsp/{*request}", get(ocsp::get))
        .merge(api::public_router())
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

/// The operations listener's routes (`[http] ops_listen`): health, readiness and metrics
/// over plain HTTP, so probes and scrapers still get an answer while the HSM, which holds
/// the TLS key, is away (the HTTPS listener cannot complete a handshake then).
pub(crate) fn ops_router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(4 * 1024))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> api::ApiError {
    api::ApiError::new(axum::http::StatusCode::NOT_FOUND, format!("no route for {}", uri.path()))
}

async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    match state.store.ping().await {
        Ok(()) => (
            axum::http::StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})),
        ),
        Err(e) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "unavailable", "reason": e.to_string()})),
        ),
    }
}

/// Ready to serve: the store answers and an HSM session opens (for load balancers).
async fn ready(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    let store = state.store.ping().await.map_err(|e| format!("store: {e}"));
    let hsm = match store {
        Ok(()) => state.hsm.run(|_, _| Ok(())).await.map_err(|e| format!("HSM: {e}")),
        Err(e) => Err(e),
    };
    match hsm {
        Ok(()) => (axum::http::StatusCode::OK, axum::Json(serde_json::json!({"status": "ready"}))),
        Err(reason) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "unavailable", "reason": reason})),
        ),
    }
}

/// Prometheus metrics (text format). Counts only, no secrets: open like `/health`.
async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let now = crate::util::now();
    let mut gauges = vec![
        (
            "strongroom_crl_age_seconds",
            "Seconds since this process last built the CRL (-1: not yet; built on first request).",
            state.creds.crl_age(now).map_or(-1.0, |a| a as f64),
        ),
        (
            "strongroom_leader",
            "1 when this replica runs the background work (always, on SQLite).",
            f64::from(u8::from(state.store.is_leader())),
        ),
        (
            "strongroom_hsm_up",
            "1 when the HSM connection is up (0 between a failure and reconnecting).",
            f64::from(u8::from(state.hsm.is_up())),
        ),
    ];
    // Without the store the process's own metrics still answer, so an outage is seen.
    match state.store.gauges().await {
        Ok(g) => {
            let seal_age = g.last_seal.map_or(-1.0, |at| (now - at) as f64);
            gauges.extend([
                ("strongroom_store_up", "1 when the store answered this scrape.", 1.0),
                (
                    "strongroom_managed_objects",
                    "Managed objects (KMIP), every state.",
                    g.objects as f64,
                ),
                (
                    "strongroom_leases_active",
                    "Active leases on dynamic credentials.",
                    g.leases_active as f64,
                ),
                (
                    "strongroom_certificates_issued",
                    "Certificates issued (API and ACME).",
                    g.certificates as f64,
                ),
                ("strongroom_certificates_revoked", "Certificates revoked.", g.revoked as f64),
                ("strongroom_acme_accounts", "ACME accounts.", g.acme_accounts as f64),
                (
                    "strongroom_audit_records",
                    "Sequence number of the audit chain's head.",
                    g.audit_head as f64,
                ),
                (
                    "strongroom_audit_seal_age_seconds",
                    "Seconds since the audit chain was last sealed (-1: never).",
                    seal_age,
                ),
            ]);
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the store did not answer");
            gauges.push(("strongroom_store_up", "1 when the store answered this scrape.", 0.0));
        }
    }
    let mut r = crate::metrics::render(&gauges).into_response();
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

/// Accepts HTTPS connections until `shutdown` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    state: AppState,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let Limits { max_connections, request_deadline } = limits;
    let acceptor = TlsAcceptor::from(tls);
    let (store, ca) = (state.store.clone(), state.ca.clone());
    let app = router(state);
    let permits = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let handshakes = crate::tls::PeerSlots::handshakes();
    let handshaking = crate::tls::handshake_pool(max_connections);
    let refusals = crate::tls::Refusals::new("HTTPS");
    // Clients need no certificate here (ACME's have none): one address may hold an eighth
    // of the connections without one, one IPv6 /64 a quarter, so that no one peer takes
    // them all.
    let open =
        crate::tls::PeerSlots::new((max_connections / 8).max(1), (max_connections / 4).max(1));
    loop {
        let Some((tcp, peer)) =
            crate::tls::next_connection(&listener, &mut shutdown, "HTTPS").await
        else {
            break;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            let _ = refusals.refused(peer, "too many connections");
            continue;
        };
        let Some(slot) = open.enter(peer.ip()) else {
            let _ = refusals.refused(peer, "too many connections from its address");
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
        let acceptor = acceptor.clone();
        let app = app.clone();
        let (store, ca) = (store.clone(), ca.clone());
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let handshaken =
                timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp)).await;
            drop((handshake, handshaking));
            let Ok(Ok(tls)) = handshaken else {
                tracing::info!(%peer, "HTTPS handshake failed");
                return;
            };
            // A client certificate is optional here; one that may not connect ends it.
            let client = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                Some(der) => {
                    let der = der.clone();
                    match crate::authz::connecting_principal(&store, &ca, &der, "api").await {
                        Some(p) => Some(p),
                        None => return,
                    }
                }
                None => None,
            };
            // Only connections without a certificate of this CA count against their
            // address: clients it knows may share one (a proxy, a NAT).
            let _slot = client.is_none().then_some(slot);
            let app = app.layer(axum::Extension(Peer(client)));
            serve_connection(tls, app, peer, request_deadline, shutdown).await;
        });
    }
    // Graceful shutdown: requests being served are answered, then connections close.
    crate::tls::drain(&permits, max_connections, DRAIN_GRACE, "HTTPS").await;
}

/// How long shutdown waits for requests in flight.
const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// A request body that records when it has all arrived.
struct Received {
    body: hyper::body::Incoming,
    received: Arc<AtomicBool>,
}

impl http_body::Body for Received {
    type Data = axum::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None)) || self.body.is_end_stream() {
            self.received.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A listener's bounds.
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_connections: usize,
    /// Longest a request may take from its headers to its answer, body included.
    pub(crate) request_deadline: std::time::Duration,
}
/// Longest a write may wait without progress (a peer that stopped reading).
const STALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Serves HTTP/1.1 requests on one connection until it closes, or at shutdown, until the
/// request in flight (if any) is answered. Then closes it lingering (see
/// [`crate::tls::close_lingering`]): a request refused before its body was read (413)
/// leaves that body arriving, and a plain close would reset the connection over the
/// answer.
async fn serve_connection<I>(
    io: I,
    app: Router,
    peer: std::net::SocketAddr,
    request_deadline: std::time::Duration,
    mut shutdown: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // Vault's clients list with the LIST method; here GET on a collection lists.
    let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
        if req.method().as_str() == "LIST" {
            *req.method_mut() = axum::http::Method::GET;
        }
        let mut app = app.clone();
        let received = Arc::new(AtomicBool::new(http_body::Body::is_end_stream(req.body())));
        let req = req.map(|body| Received { body, received: received.clone() });
        // Boxed, so that the connection can be polled without closing its stream. The
        // deadline is for the body to arrive, which a client could trickle in for ever;
        // once it has, the request takes as long as its work does.
        Box::pin(async move {
            let call = tower::Service::call(&mut app, req);
            tokio::pin!(call);
            tokio::select! {
                answered = &mut call => answered,
                _ = tokio::time::sleep(request_deadline) => {
                    if received.load(Ordering::Acquire) {
                        call.await
                    } else {
                        Ok(axum::response::IntoResponse::into_response((
                            axum::http::StatusCode::REQUEST_TIMEOUT,
                            "the request body did not arrive in time",
                        )))
                    }
                }
            }
        })
    });
    let io = TokioIo::new(crate::tls::Stalled::new(io, STALL_LIMIT));
    let mut conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_secs(30))
        .serve_connection(io, service);
    let mut stopping = false;
    let ended = loop {
        tokio::select! {
            r = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => break r,
            _ = shutdown.changed(), if !stopping => {
                std::pin::Pin::new(&mut conn).graceful_shutdown();
                stopping = true;
            }
        }
    };
    if let Err(e) = ended {
        tracing::debug!(%peer, error = %e, "HTTP connection ended");
    }
    let mut stream = conn.into_parts().io.into_inner();
    crate::tls::close_lingering(&mut stream).await;
}

/// Accepts plain-HTTP connections for `app` until `shutdown` turns true: CRLs, CA
/// certificates and OCSP on `[ca] http_listen` (everything served is signed, so relying
/// parties, which fetch these without TLS (RFC 5280 §4.2.1.13), need no channel security),
/// and health, readiness and metrics on `[http] ops_listen` (nothing secret).
pub(crate) async fn serve_plain(
    listener: TcpListener,
    app: Router,
    label: &'static str,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let Limits { max_connections, request_deadline } = limits;
    let permits = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let refusals = crate::tls::Refusals::new(label);
    loop {
        let Some((tcp, peer)) = crate::tls::next_connection(&listener, &mut shutdown, label).await
        else {
            break;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            let _ = refusals.refused(peer, "too many connections");
            continue;
        };
        let app = app.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            serve_connection(tcp, app, peer, request_deadline, shutdown).await;
        });
    }
    crate::tls::drain(&permits, max_connections, DRAIN_GRACE, label).await;
}
