//! ACME (RFC 8555) endpoints under `/acme/` on the HTTPS listener. Every POST is a JWS
//! (`application/jose+json`) whose nonce, URL and signature are checked before anything
//! else; errors are problem documents (`application/problem+json`); every response carries
//! a fresh `Replay-Nonce` and a `Link` to the directory.

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::acme::jws::{Jwk, Jws};
use crate::acme::{AcmeError, Identifier};
use crate::app::AppState;
use crate::store::{
    AccountRow, AuditEvent, AuthzRow, ChallengeRow, NonceGuard, OrderRow, Prefetch, Prefetched,
};

pub(super) fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/acme/directory", get(directory))
        .route("/acme/new-nonce", get(new_nonce).head(new_nonce))
        .route("/acme/new-account", post(new_account))
        .route("/acme/account/{id}", post(account))
        .route("/acme/account/{id}/orders", post(account_orders))
        .route("/acme/new-order", post(new_order))
        .route("/acme/order/{id}", post(order))
        .route("/acme/order/{id}/finalize", post(finalize))
        .route("/acme/authz/{id}", post(authorization))
        .route("/acme/chall/{id}", post(challenge))
        .route("/acme/cert/{id}", post(certificate))
        .route("/acme/cert/{id}/{alternate}", post(alternate_certificate))
        .route("/acme/revoke-cert", post(revoke_cert))
        .route("/acme/key-change", post(key_change))
        .route("/acme/renewal-info/{id}", get(renewal_info))
        .layer(axum::middleware::from_fn_with_state(state, acme_headers))
}

/// A refused request's problem, kept on the response for the audit record.
#[derive(Clone)]
struct Refusal(String);

impl IntoResponse for AcmeError {
    fn into_response(self) -> Response {
        let (kind, status) = self.kind();
        if status >= 500 {
            tracing::error!(error = %self, "ACME request failed");
        }
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let problem = self.problem();
        let detail = format!("{kind}: {}", problem["detail"].as_str().unwrap_or_default());
        let mut r = (status, Json(problem)).into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        r.extensions_mut().insert(Refusal(detail));
        if kind == "rateLimited" {
            // Open orders close as they are finalized or expire (RFC 8555 §6.6).
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("3600"));
        }
        r
    }
}

type AcmeResult = Result<Response, AcmeError>;

/// `https://HOST` as the client addressed this server; ACME URLs are built on it.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("https://{host}")
}

/// Adds `Replay-Nonce`, the directory `Link` and `Cache-Control: no-store` to every answer,
/// counts every request for the metrics, and audits every refused request with its problem.
async fn acme_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let index = format!("<{}/acme/directory>;rel=\"index\"", base_url(req.headers()));
    let operation = format!("{} {}", req.method(), req.uri().path());
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| format!("{} {}", req.method(), m.as_str()))
        .unwrap_or_else(|| operation.clone());
    let mut response = next.run(req).await;
    let status = response.status();
    let result = if status.is_success() {
        "ok".to_owned()
    } else if matches!(status.as_u16(), 401 | 403) {
        "denied".to_owned()
    } else {
        format!("error {}", status.as_u16())
    };
    crate::metrics::count_request("acme", &route, &result);
    if let Some(Refusal(detail)) = response.extensions().get::<Refusal>().cloned() {
        state
            .store
            .audit(AuditEvent {
                at: crate::util::now(),
                principal: "acme client".to_owned(),
                protocol: "acme",
                operation,
                object_id: None,
                outcome: result,
                detail: Some(detail),
            })
            .await;
    }
    let h = response.headers_mut();
    match state.acme.nonce().await {
        Ok(nonce) => {
            if let Ok(v) = HeaderValue::from_str(&nonce) {
                h.insert("replay-nonce", v);
            }
        }
        // The client gets no nonce with this answer and asks newNonce for one.
        Err(e) => tracing::warn!(error = %e, "cannot store an ACME nonce"),
    }
    if let Ok(v) = HeaderValue::from_str(&index) {
        h.append(header::LINK, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn directory(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    let b = base_url(&headers);
    Json(json!({
        "newNonce": format!("{b}/acme/new-nonce"),
        "newAccount": format!("{b}/acme/new-account"),
        "newOrder": format!("{b}/acme/new-order"),
        "revokeCert": format!("{b}/acme/revoke-cert"),
        "keyChange": format!("{b}/acme/key-change"),
        "renewalInfo": format!("{b}/acme/renewal-info"),
        "meta": {
            "externalAccountRequired": state.acme.settings.eab_required,
            "profiles": state
                .acme
                .settings
                .profiles
                .iter()
                .map(|p| (p.name.clone(), Value::String(p.description.clone())))
                .collect::<serde_json::Map<_, _>>(),
        },
    }))
}

/// `HEAD` answers 200, `GET` 204 (RFC 8555 §7.2); the nonce is added by `acme_headers`.
async fn new_nonce(method: axum::http::Method) -> StatusCode {
    if method == axum::http::Method::HEAD {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    }
}

/// A verified JWS request: the key that signed it and, for `kid` requests, the account.
struct Signed {
    jws: Jws,
    jwk: Jwk,
    account: Option<AccountRow>,
    base: String,
    /// The order or authorization the request's URL names, read with its nonce on a
    /// replica (see [`prefetch`]); its handler checks it like one it reads itself.
    prefetched: Option<Prefetched>,
    /// The request's nonce when it is still to be used up: by the handler's write, with
    /// the account checked in the same statement (see [`defers_nonce`]), or by [`settle`].
    deferred: std::sync::Mutex<Option<String>>,
}

impl Signed {
    /// The account of a `kid`-signed request (every endpoint but newAccount and revokeCert
    /// requires one).
    fn account(&self) -> Result<&AccountRow, AcmeError> {
        self.account.as_ref().ok_or_else(|| {
            AcmeError::Malformed("this request must be signed with the account's kid".into())
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/acme/{path}", self.base)
    }

    /// The deferred nonce, for the one write or [`settle`] that uses it up (see
    /// [`NonceGuard`]); none when it was not deferred or is taken already.
    fn take_nonce(&self) -> Option<String> {
        self.deferred.lock().ok()?.take()
    }

    /// Checks that this is a POST-as-GET: its payload is empty (RFC 8555 §6.3).
    fn post_as_get(&self) -> Result<(), AcmeError> {
        if self.jws.has_payload() {
            Err(AcmeError::Malformed("POST-as-GET requests must have an empty payload".into()))
        } else {
            Ok(())
        }
    }
}

impl FromRequest<AppState> for Signed {
    type Rejection = AcmeError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AcmeError> {
        let base = base_url(req.headers());
        let req_path = req.uri().path().to_owned();
        let url = format!("{base}{req_path}");
        let jose =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(
                |v| v.split(';').next().unwrap_or("").trim() == "application/jose+json",
            );
        if !jose {
            return Err(AcmeError::UnsupportedMediaType);
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| AcmeError::Malformed(format!("request body: {}", e.body_text())))?;
        let jws = Jws::parse(&body)?;
        let nonce = jws.header.nonce.as_deref().ok_or(AcmeError::BadNonce)?;
        let prefix = format!("{base}/acme/account/");
        let kid_account = match (&jws.header.jwk, &jws.header.kid) {
            (None, Some(kid)) => kid.strip_prefix(&prefix),
            _ => None,
        };
        // A replica's write request signed with a key it read before: the write uses the
        // nonce up and checks the account in its own statement.
        let hinted = kid_account
            .filter(|_| defers_nonce(&req_path) && jws.header.url == url)
            .and_then(|id| state.acme.account_hint(id))
            .filter(|a| a.status == "valid")
            .and_then(|account| {
                let jwk: Jwk = serde_json::from_str(&account.jwk).ok()?;
                jws.verify(&jwk).ok()?;
                Some((account, jwk))
            });
        if let Some((account, jwk)) = hinted {
            let deferred = std::sync::Mutex::new(Some(nonce.to_owned()));
            let account = Some(account);
            return Ok(Signed { jws, jwk, account, base, prefetched: None, deferred });
        }
        let (fresh, account, prefetched) = match kid_account {
            Some(id) => {
                let also = prefetch(req_path.as_str());
                state.acme.consume_reading_account(&state.store, nonce, id, also).await?
            }
            None => (state.acme.consume(nonce).await?, None, None),
        };
        if !fresh {
            return Err(AcmeError::BadNonce);
        }
        if jws.header.url != url {
            return Err(AcmeError::Unauthorized(format!(
                "the JWS url {:?} is not this request's URL {url:?}",
                jws.header.url
            )));
        }
        let (jwk, account) = match (&jws.header.jwk, &jws.header.kid) {
            (Some(jwk), _) => (jwk.clone(), None),
            // Read with the nonce; none when the kid is not an account URL of this server.
            (None, Some(_)) => {
                let account = account.ok_or(AcmeError::AccountDoesNotExist)?;
                if account.status != "valid" {
                    return Err(AcmeError::AccountNotValid(account.status.clone()));
                }
                let jwk: Jwk = serde_json::from_str(&account.jwk)
                    .map_err(|e| AcmeError::Malformed(format!("stored account key: {e}")))?;
                (jwk, Some(account))
            }
            (None, None) => return Err(AcmeError::Malformed("no jwk or kid".into())),
        };
        jws.verify(&jwk)?;
        let deferred = std::sync::Mutex::default();
        Ok(Signed { jws, jwk, account, base, prefetched, deferred })
    }
}

/// Whether a request to `path` may have its nonce used up by its handler's write (a
/// replica's new order and finalize), one statement in place of two. Their handlers
/// end with [`settle`].
fn defers_nonce(path: &str) -> bool {
    path == "/acme/new-order"
        || path.strip_prefix("/acme/order/").is_some_and(|rest| rest.ends_with("/finalize"))
}

/// Ends a handler of a request that may have its nonce deferred (see [`defers_nonce`]).
/// If the handler's write did not use the nonce up (it answered before), this does, and
/// reads the account again: badNonce in place of `result` unless the nonce was good and
/// the account is still valid with the key that signed, so that nothing the handler read
/// reaches a key the account no longer has.
async fn settle(state: &AppState, s: &Signed, result: AcmeResult) -> AcmeResult {
    let (Some(nonce), Some(signer)) = (s.take_nonce(), s.account.as_ref()) else {
        return result;
    };
    let (fresh, account, _) = state
        .acme
        .consume_reading_account(&state.store, &nonce, &signer.id, Prefetch::Nothing)
        .await?;
    let unchanged = account.is_some_and(|a| a.status == "valid" && a.jwk == signer.jwk);
    if !(fresh && unchanged) {
        return Err(guard_refused(state, signer));
    }
    result
}

/// The answer to a write whose guard let nothing be written: the nonce was used or
/// expired, or the account changed since this replica read it. badNonce makes the
/// client retry with a fresh nonce, and the retry reads the account again.
fn guard_refused(state: &AppState, account: &AccountRow) -> AcmeError {
    state.acme.forget_account(&account.id);
    AcmeError::BadNonce
}

/// What a request to `path` reads first, so that a replica reads it with the request's
/// nonce: the order of a POST-as-GET to an order (clients poll it), the authorization of
/// a request to one.
fn prefetch(path: &str) -> Prefetch<'_> {
    let id =
        |prefix| path.strip_prefix(prefix).filter(|id: &&str| !id.is_empty() && !id.contains('/'));
    if let Some(id) = id("/acme/order/") {
        Prefetch::Order(id)
    } else if let Some(id) = id("/acme/authz/") {
        Prefetch::Authorization(id)
    } else {
        Prefetch::Nothing
    }
}

async fn audit(state: &AppState, who: &str, operation: &str, object: Option<&str>, detail: String) {
    state
        .store
        .audit(AuditEvent {
            at: crate::util::now(),
            principal: who.to_owned(),
            protocol: "acme",
            operation: operation.to_owned(),
            object_id: object.map(str::to_owned),
            outcome: "ok".to_owned(),
            detail: Some(detail),
        })
        .await;
}

fn with_location(status: StatusCode, location: &str, body: Value) -> AcmeResult {
    let mut r = (status, Json(body)).into_response();
    let v = HeaderValue::from_str(location)
        .map_err(|_| AcmeError::Malformed("bad host header".into()))?;
    r.headers_mut().insert(header::LOCATION, v);
    Ok(r)
}

fn account_json(s: &Signed, a: &AccountRow) -> Value {
    let contact: Value = serde_json::from_str(&a.contact).unwrap_or_else(|_| json!([]));
    json!({
        "status": a.status,
        "contact": contact,
        "orders": s.url(&format!("account/{}/orders", a.id)),
        "key": s.jwk,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewAccount {
    #[serde(default)]
    contact: Vec<String>,
    #[serde(default)]
    terms_of_service_agreed: Option<bool>,
    #[serde(default)]
    only_return_existing: bool,
    #[serde(default)]
    external_account_binding: Option<Value>,
}

fn check_contacts(contact: &[String]) -> Result<String, AcmeError> {
    if contact.len() > 10 {
        return Err(AcmeError::Malformed("at most 10 contacts".into()));
    }
    for c in contact {
        let Some(m) = c.strip_prefix("mailto:") else {
            return Err(AcmeError::UnsupportedContact(format!(
                "contact {c:?}: only mailto: URLs are taken"
            )));
        };
        if m.len() > 254 || !m.contains('@') || m.contains(',') || m.contains('?') {
            return Err(AcmeError::InvalidContact(format!(
                "contact {c:?} is not a mailto: URL with one address"
            )));
        }
    }
    Ok(serde_json::to_string(contact).unwrap_or_else(|_| "[]".into()))
}

/// `POST /acme/new-account` (RFC 8555 §7.3): signed with the new account's key (`jwk`).
async fn new_account(State(state): State<AppState>, s: Signed) -> AcmeResult {
    if s.jws.header.jwk.is_none() {
        return Err(AcmeError::Malformed("newAccount must be signed with a jwk".into()));
    }
    let req: NewAccount = s.jws.payload_as()?;
    let _ = req.terms_of_service_agreed;
    let thumbprint = s.jwk.thumbprint()?;
    if let Some(existing) = state.store.acme_account_by_thumbprint(&thumbprint).await? {
        // §7.3.6: a deactivated account's key is answered 401 wherever it signs.
        if existing.status != "valid" {
            return Err(AcmeError::AccountNotValid(format!("the account is {}", existing.status)));
        }
        let location = s.url(&format!("account/{}", existing.id));
        return with_location(StatusCode::OK, &location, account_json(&s, &existing));
    }
    if req.only_return_existing {
        return Err(AcmeError::AccountDoesNotExist);
    }
    let eab = match &req.external_account_binding {
        Some(binding) => Some(check_eab(&state, &s, binding).await?),
        None if state.acme.settings.eab_required => return Err(AcmeError::ExternalAccountRequired),
        None => None,
    };
    let account = AccountRow {
        id: crate::util::random_hex(12),
        thumbprint,
        jwk: serde_json::to_string(&s.jwk).unwrap_or_default(),
        status: "valid".into(),
        contact: check_contacts(&req.contact)?,
        created_at: crate::util::now(),
    };
    let inserted = match &eab {
        Some(id) => state.store.insert_acme_account_with_eab(&account, id).await?,
        None => state.store.insert_acme_account(&account).await?,
    };
    if !inserted {
        // A concurrent request made the account with this key first: its answer is this
        // one's too. Otherwise the EAB key was bound meanwhile.
        if let Some(existing) = state.store.acme_account_by_thumbprint(&account.thumbprint).await? {
            let location = s.url(&format!("account/{}", existing.id));
            return with_location(StatusCode::OK, &location, account_json(&s, &existing));
        }
        let id = eab.unwrap_or_default();
        return Err(AcmeError::Unauthorized(format!("EAB key {id} is already bound")));
    }
    let location = s.url(&format!("account/{}", account.id));
    let bound = eab.map(|id| format!(", bound to EAB key {id}")).unwrap_or_default();
    let detail = format!("key {}{bound}", account.thumbprint);
    audit(&state, &location, "new-account", None, detail).await;
    with_location(StatusCode::CREATED, &location, account_json(&s, &account))
}

/// Checks an External Account Binding (RFC 8555 §7.3.4): a JWS over the new account's key,
/// MACed with an unused key made by an administrator; returns that key's id.
async fn check_eab(state: &AppState, s: &Signed, binding: &Value) -> Result<String, AcmeError> {
    let inner = Jws::parse_value(binding)?;
    let id =
        inner.header.kid.clone().ok_or_else(|| {
            AcmeError::Malformed("the external account binding has no kid".into())
        })?;
    if inner.header.nonce.is_some() || inner.header.url != s.url("new-account") {
        return Err(AcmeError::Malformed(
            "the external account binding must name newAccount's URL and carry no nonce".into(),
        ));
    }
    if !matches!(inner.header.alg.as_str(), "HS256" | "HS384" | "HS512") {
        return Err(AcmeError::BadSignatureAlgorithm(format!("{} for EAB", inner.header.alg)));
    }
    // One answer for an unknown key id and a wrong MAC, so that the answer does not say
    // which ids exist; only the key's holder learns that it is bound already.
    let refused = || AcmeError::Unauthorized(format!("EAB key {id} or its MAC is not valid"));
    let row = state.store.acme_eab_key(&id).await?.ok_or_else(refused)?;
    let (sealed, aad) = (row.sealed_key, crate::acme::eab_aad(&id));
    let key = state.hsm.open_sealed_async(sealed, aad).await?;
    inner.verify_hmac(&key).map_err(|e| match e {
        AcmeError::Unauthorized(_) => refused(),
        other => other,
    })?;
    if row.account_id.is_some() {
        return Err(AcmeError::Unauthorized(format!("EAB key {id} is already bound")));
    }
    let bound: Jwk = inner.payload_as()?;
    if bound.thumbprint()? != s.jwk.thumbprint()? {
        return Err(AcmeError::Unauthorized(
            "the external account binding is for another account key".into(),
        ));
    }
    Ok(id)
}

/// `POST /acme/key-change` (§7.3.5): the payload is a JWS by the new key over the account
/// URL and the old key; the account then answers only to the new key.
async fn key_change(State(state): State<AppState>, s: Signed) -> AcmeResult {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Inner {
        account: String,
        old_key: Jwk,
    }
    let account = s.account()?.clone();
    let inner_value = s.jws.payload()?.ok_or_else(|| {
        AcmeError::Malformed("keyChange needs the new key's JWS as payload".into())
    })?;
    let inner = Jws::parse_value(&inner_value)?;
    let new_key =
        inner.header.jwk.clone().ok_or_else(|| {
            AcmeError::Malformed("the inner JWS must carry the new key (jwk)".into())
        })?;
    if inner.header.url != s.jws.header.url {
        return Err(AcmeError::Malformed("the inner JWS must name the same URL".into()));
    }
    if inner.header.nonce.is_some() {
        return Err(AcmeError::Malformed("the inner JWS must not carry a nonce".into()));
    }
    inner.verify(&new_key)?;
    let body: Inner = inner.payload_as()?;
    let location = s.url(&format!("account/{}", account.id));
    if body.account != location {
        return Err(AcmeError::Malformed("the inner payload names another account".into()));
    }
    if body.old_key.thumbprint()? != account.thumbprint {
        return Err(AcmeError::Malformed("oldKey is not the account's key".into()));
    }
    let thumbprint = new_key.thumbprint()?;
    if let Some(other) = state.store.acme_account_by_thumbprint(&thumbprint).await? {
        let mut r = AcmeError::Conflict("another account uses the new key".into()).into_response();
        if let Ok(v) = HeaderValue::from_str(&s.url(&format!("account/{}", other.id))) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return Ok(r);
    }
    let jwk = serde_json::to_string(&new_key).unwrap_or_default();
    let changed = state.store.change_acme_account_key(&account.id, &thumbprint, &jwk).await?;
    state.acme.forget_account(&account.id);
    if !changed {
        return Err(AcmeError::Conflict("another account uses the new key".into()));
    }
    audit(&state, &location, "key-change", None, format!("new key {thumbprint}")).await;
    let updated = AccountRow { thumbprint, jwk, ..account };
    let signed_by_new = Signed { jwk: new_key, ..s };
    Ok(Json(account_json(&signed_by_new, &updated)).into_response())
}

#[derive(Deserialize)]
struct AccountUpdate {
    #[serde(default)]
    contact: Option<Vec<String>>,
    #[serde(default)]
    status: Option<String>,
}

/// The account named in the path, which must be the signer's.
fn own_account<'a>(s: &'a Signed, id: &str) -> Result<&'a AccountRow, AcmeError> {
    let account = s.account()?;
    if account.id != id {
        return Err(AcmeError::Unauthorized("this is not the signer's account".into()));
    }
    Ok(account)
}

/// `POST /acme/account/ID`: read (POST-as-GET), update contacts, or deactivate (§7.3.2,
/// §7.3.6).
async fn account(State(state): State<AppState>, Path(id): Path<String>, s: Signed) -> AcmeResult {
    let mut account = own_account(&s, &id)?.clone();
    if s.jws.payload()?.is_some() {
        let update: AccountUpdate = s.jws.payload_as()?;
        if let Some(contact) = update.contact {
            account.contact = check_contacts(&contact)?;
        }
        match update.status.as_deref() {
            None => {}
            Some("deactivated") => account.status = "deactivated".into(),
            Some(other) => {
                return Err(AcmeError::Malformed(format!("cannot set account status {other:?}")))
            }
        }
        // Only a valid account changes: a deactivation committed since this request read
        // the account must not be undone by writing its old status back.
        if !state.store.update_acme_account(&account).await? {
            state.acme.forget_account(&account.id);
            return Err(AcmeError::AccountNotValid("no longer valid".into()));
        }
        state.acme.forget_account(&account.id);
        let who = s.url(&format!("account/{id}"));
        audit(&state, &who, "update-account", None, format!("status {}", account.status)).await;
    }
    Ok(Json(account_json(&s, &account)).into_response())
}

/// `POST /acme/account/ID/orders`: the account's order URLs (§7.1.2.1).
async fn account_orders(
    State(state): State<AppState>,
    Path(id): Path<String>,
    s: Signed,
) -> AcmeResult {
    s.post_as_get()?;
    let account = own_account(&s, &id)?;
    let ids = state.store.acme_order_ids(&account.id, crate::util::now()).await?;
    let urls: Vec<String> = ids.iter().map(|o| s.url(&format!("order/{o}"))).collect();
    Ok(Json(json!({ "orders": urls })).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewOrderRequest {
    identifiers: Vec<Identifier>,
    #[serde(default)]
    not_before: Option<String>,
    #[serde(default)]
    not_after: Option<String>,
    /// ARI: the certificate this order renews (RFC 9773 §5).
    #[serde(default)]
    replaces: Option<String>,
    /// The certificate profile (one of the directory's `meta.profiles`).
    #[serde(default)]
    profile: Option<String>,
}

/// `POST /acme/new-order` (§7.4): an order with one authorization per identifier.
async fn new_order(State(state): State<AppState>, s: Signed) -> AcmeResult {
    let result = place_order(&state, &s).await;
    settle(&state, &s, result).await
}

/// A client certificate's subject is its holder's identity on the KMIP and API listeners:
/// no ACME account may obtain an administrator's. Checked at newOrder, and again at
/// finalize in case the administrators changed in between.
fn not_an_administrator(
    state: &AppState,
    profile: &crate::acme::Profile,
    i: &Identifier,
) -> Result<(), AcmeError> {
    if profile.client_auth && state.admins.contains(&format!("CN={}", i.value)) {
        return Err(AcmeError::RejectedIdentifier(format!(
            "{} is an administrator's identity (CN={0}); `strongroom client-cert` issues it",
            i.value
        )));
    }
    Ok(())
}

async fn place_order(state: &AppState, s: &Signed) -> AcmeResult {
    let account = s.account()?;
    let req: NewOrderRequest = s.jws.payload_as()?;
    let profile = state.acme.settings.profile(req.profile.as_deref()).ok_or_else(|| {
        AcmeError::InvalidProfile(format!(
            "no profile {:?}; the directory's meta.profiles lists them",
            req.profile.as_deref().unwrap_or_default()
        ))
    })?;
    if req.not_before.is_some() || req.not_after.is_some() {
        return Err(AcmeError::Malformed(format!(
            "notBefore and notAfter are not supported: certificates of profile {} are valid \
             for {} seconds",
            profile.name, profile.validity
        )));
    }
    if let Some(allowed) =
        state.store.acme_eab_key_of_account(&account.id).await?.and_then(|k| k.profiles)
    {
        let allowed: Vec<String> = serde_json::from_str(&allowed).unwrap_or_default();
        if !allowed.contains(&profile.name) {
            return Err(AcmeError::Unauthorized(format!(
                "this account's external account binding allows profiles {allowed:?}, not {:?}",
                profile.name
            )));
        }
    }
    if req.identifiers.is_empty() || req.identifiers.len() > crate::acme::MAX_IDENTIFIERS {
        return Err(AcmeError::Malformed(format!(
            "an order names 1 to {} identifiers",
            crate::acme::MAX_IDENTIFIERS
        )));
    }
    let mut identifiers = Vec::new();
    for i in req.identifiers {
        let i = i.checked()?;
        if !profile.allows(&i) {
            return Err(AcmeError::RejectedIdentifier(format!(
                "profile {} does not allow {} {}",
                profile.name, i.kind, i.value
            )));
        }
        not_an_administrator(state, profile, &i)?;
        // Refused now rather than at finalize: the issuer's name constraints.
        let (dns, ips) = match i.value.parse::<std::net::IpAddr>() {
            Ok(ip) if i.kind == "ip" => (Vec::new(), vec![ip]),
            _ => (vec![i.value.clone()], Vec::new()),
        };
        if let Err(e) = state.ca.current().check_names(&dns, &ips) {
            return Err(AcmeError::RejectedIdentifier(e.to_string()));
        }
        if !identifiers.contains(&i) {
            identifiers.push(i);
        }
    }
    if crate::acme::issue::common_name(&identifiers).is_none() {
        return Err(AcmeError::RejectedIdentifier(format!(
            "one identifier must have at most {} characters, to be the certificate's common \
             name",
            crate::acme::issue::MAX_COMMON_NAME
        )));
    }
    let replaces = match &req.replaces {
        Some(replaces) => check_replaces(state, account, replaces).await?,
        None => None,
    };
    let now = crate::util::now();
    // A client that orders in a loop (a retrying script) fills the store: it must finish,
    // or deactivate the authorizations of, what it has open first.
    let max = state.acme.settings.max_open_orders;
    if state.store.acme_open_orders(&account.id, now).await? >= max {
        return Err(AcmeError::RateLimited(format!(
            "this account has {max} orders pending or ready ([acme] max_open_orders); \
             finalize them, or deactivate their authorizations, first"
        )));
    }
    let expires_at = now + crate::acme::ORDER_LIFETIME;
    let order_id = crate::util::random_hex(12);
    let authorizations: Vec<(AuthzRow, Vec<ChallengeRow>)> = identifiers
        .iter()
        .map(|i| {
            // Identifiers the policy pre-authorizes start valid, as if proven now.
            let preauthorized = state.acme.preauthorized(i);
            let status = if preauthorized { "valid" } else { "pending" };
            let authz = AuthzRow {
                id: crate::util::random_hex(12),
                order_id: order_id.clone(),
                account_id: account.id.clone(),
                identifier_type: i.kind.clone(),
                identifier_value: i.value.clone(),
                status: status.into(),
                expires_at,
            };
            let challenges = i
                .challenge_types()
                .iter()
                .map(|t| ChallengeRow {
                    id: crate::util::random_hex(12),
                    authz_id: authz.id.clone(),
                    kind: (*t).to_owned(),
                    token: crate::acme::jws::encode(&crate::util::random_bytes(32)),
                    status: status.into(),
                    validated_at: preauthorized.then_some(now),
                    error: None,
                })
                .collect();
            (authz, challenges)
        })
        .collect();
    let order = OrderRow {
        id: order_id,
        account_id: account.id.clone(),
        // Ready at once when the policy pre-authorized every identifier (RFC 8555
        // §7.1.6): no later write to move it there.
        status: if authorizations.iter().all(|(a, _)| a.status == "valid") {
            "ready"
        } else {
            "pending"
        }
        .into(),
        identifiers: serde_json::to_string(&identifiers).unwrap_or_default(),
        expires_at,
        error: None,
        certificate_serial: None,
        created_at: now,
        replaces,
        profile: Some(profile.name.clone()),
        unstored_serial: None,
        certificate_pem: None,
        certificate_issuer: None,
    };
    let new = crate::store::NewOrder { order: &order, authorizations: &authorizations };
    let nonce = s.take_nonce();
    let guard = nonce.as_deref().map(|n| NonceGuard::new(n, account));
    if !state.store.insert_acme_order(new, guard).await? {
        return Err(guard_refused(state, account));
    }
    let location = s.url(&format!("order/{}", order.id));
    let pre: Vec<&str> = identifiers
        .iter()
        .filter(|i| state.acme.preauthorized(i))
        .map(|i| i.value.as_str())
        .collect();
    if !pre.is_empty() {
        let who = s.url(&format!("account/{}", account.id));
        audit(state, &who, "preauthorized", None, format!("by policy: {}", pre.join(", "))).await;
    }
    // Its status is as just computed: nothing to refresh.
    let authzs: Vec<AuthzRow> = authorizations.into_iter().map(|(a, _)| a).collect();
    with_location(StatusCode::CREATED, &location, order_json(s, &order, &authzs))
}

/// An order may replace a certificate of this CA that the same account ordered, unless
/// another order that has not failed replaces it already (RFC 9773 §5). Returns the
/// certificate's CertID in its canonical spelling, as the order records it, or none for
/// a long-expired certificate whose order is gone.
async fn check_replaces(
    state: &AppState,
    account: &AccountRow,
    replaces: &str,
) -> Result<Option<String>, AcmeError> {
    let id = crate::acme::ari::parse(replaces)?;
    let canonical = id.canonical();
    let cert = issued_here(state, &id).await?;
    let ordered_by = match &cert {
        Some(_) => state.store.acme_order_by_certificate(&id.serial).await?,
        None => None,
    };
    match ordered_by {
        // Its order was purged (`[acme] order_retention`) long after it expired: what
        // replaces it is a new certificate, ordered as any other.
        None if cert.is_some_and(|c| c.not_after < crate::util::now()) => Ok(None),
        None => Err(AcmeError::Malformed(format!(
            "replaces names no certificate of this CA: {replaces}"
        ))),
        Some(o) if o.account_id != account.id => {
            Err(AcmeError::Unauthorized("replaces names another account's certificate".into()))
        }
        Some(_) if state.store.acme_replaced(&canonical, crate::util::now()).await? => {
            Err(AcmeError::AlreadyReplaced)
        }
        Some(_) => Ok(Some(canonical)),
    }
}

/// The certificate an ARI certificate identifier names, if one of this CA's authorities
/// issued it: its Authority Key Identifier and serial must both match.
async fn issued_here(
    state: &AppState,
    id: &crate::acme::ari::CertId,
) -> Result<Option<crate::store::CertificateRow>, AcmeError> {
    let Some(authority) = state.ca.by_key_id(&id.key_id) else { return Ok(None) };
    Ok(state.store.certificate(&id.serial).await?.filter(|c| c.issuer == authority.id()))
}

/// `GET /acme/renewal-info/CERTID` (RFC 9773 §4): when to renew; no authentication.
async fn renewal_info(State(state): State<AppState>, Path(id): Path<String>) -> AcmeResult {
    let cert_id = crate::acme::ari::parse(&id)?;
    let cert = issued_here(&state, &cert_id)
        .await?
        .ok_or_else(|| AcmeError::NotFound(format!("certificate {id}")))?;
    let now = crate::util::now();
    let (start, end) =
        crate::acme::ari::window(cert.not_before, cert.not_after, cert.revoked_at, now);
    let body = json!({
        "suggestedWindow": {
            "start": crate::util::rfc3339(start),
            "end": crate::util::rfc3339(end),
        },
    });
    let mut r = Json(body).into_response();
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("21600"));
    Ok(r)
}

/// The order's status now: pending turns ready once every authorization is valid, and
/// invalid if one failed or the order expired (§7.1.6), given its authorizations.
async fn refresh_order(
    state: &AppState,
    order: &mut OrderRow,
    authzs: &[AuthzRow],
) -> Result<(), AcmeError> {
    let now = crate::util::now();
    if !matches!(order.status.as_str(), "pending" | "ready") {
        return Ok(());
    }
    let next = if now > order.expires_at {
        Some(("invalid", Some(crate::acme::problem("malformed", "the order expired"))))
    } else if authzs.iter().any(|a| a.status != "valid" && a.status != "pending") {
        let problem = crate::acme::problem("unauthorized", "an authorization failed");
        Some(("invalid", Some(problem)))
    } else if order.status == "pending" && authzs.iter().all(|a| a.status == "valid") {
        Some(("ready", None))
    } else {
        None
    };
    if let Some((to, error)) = next {
        let error = error.map(|e| e.to_string());
        if state.store.transition_acme_order(&order.id, &order.status, to, error.as_deref()).await?
        {
            order.status = to.to_owned();
            order.error = error;
        }
    }
    Ok(())
}

fn order_json(s: &Signed, order: &OrderRow, authzs: &[AuthzRow]) -> Value {
    let identifiers: Value = serde_json::from_str(&order.identifiers).unwrap_or_default();
    let mut body = json!({
        "status": order.status,
        "expires": crate::util::rfc3339(order.expires_at),
        "identifiers": identifiers,
        "authorizations": authzs.iter().map(|a| s.url(&format!("authz/{}", a.id))).collect::<Vec<_>>(),
        "finalize": s.url(&format!("order/{}/finalize", order.id)),
    });
    if let Some(serial) = order.serial() {
        body["certificate"] = s.url(&format!("cert/{serial}")).into();
    }
    if let Some(e) = &order.error {
        body["error"] = serde_json::from_str(e).unwrap_or(Value::Null);
    }
    if let Some(r) = &order.replaces {
        body["replaces"] = r.clone().into();
    }
    if let Some(p) = &order.profile {
        body["profile"] = p.clone().into();
    }
    body
}

/// The order named in the path, which must belong to the signer, with its
/// authorizations.
async fn own_order(
    state: &AppState,
    s: &Signed,
    id: &str,
) -> Result<(OrderRow, Vec<AuthzRow>), AcmeError> {
    let account = s.account()?;
    let found = match &s.prefetched {
        Some(Prefetched::Order(order, authzs)) if order.id == id => {
            Some((order.clone(), authzs.clone()))
        }
        _ => state.store.acme_order_with_authorizations(id).await?,
    };
    let (mut order, authzs) = found
        .filter(|(o, _)| o.account_id == account.id)
        .ok_or_else(|| AcmeError::NotFound(format!("order {id}")))?;
    refresh_order(state, &mut order, &authzs).await?;
    Ok((order, authzs))
}

/// `POST /acme/order/ID` (POST-as-GET).
async fn order(State(state): State<AppState>, Path(id): Path<String>, s: Signed) -> AcmeResult {
    s.post_as_get()?;
    let (order, authzs) = own_order(&state, &s, &id).await?;
    Ok(Json(order_json(&s, &order, &authzs)).into_response())
}

fn challenge_json(s: &Signed, c: &ChallengeRow) -> Value {
    let mut v = json!({
        "type": c.kind,
        "url": s.url(&format!("chall/{}", c.id)),
        "status": c.status,
        "token": c.token,
    });
    if let Some(at) = c.validated_at {
        v["validated"] = crate::util::rfc3339(at).into();
    }
    if let Some(e) = &c.error {
        v["error"] = serde_json::from_str(e).unwrap_or(Value::Null);
    }
    v
}

/// The identifier an authorization is for.
fn identifier_of(authz: &AuthzRow) -> Identifier {
    Identifier { kind: authz.identifier_type.clone(), value: authz.identifier_value.clone() }
}

async fn own_authorization(state: &AppState, s: &Signed, id: &str) -> Result<AuthzRow, AcmeError> {
    let account = s.account()?;
    state
        .store
        .acme_authorization(id)
        .await?
        .filter(|a| a.account_id == account.id)
        .ok_or_else(|| AcmeError::NotFound(format!("authorization {id}")))
}

/// The authorization named in the path, which must belong to the signer, with its
/// challenges.
async fn own_authorization_with_challenges(
    state: &AppState,
    s: &Signed,
    id: &str,
) -> Result<(AuthzRow, Vec<ChallengeRow>), AcmeError> {
    let account = s.account()?;
    let found = match &s.prefetched {
        Some(Prefetched::Authorization(authz, challenges)) if authz.id == id => {
            Some((authz.clone(), challenges.clone()))
        }
        _ => state.store.acme_authorization_with_challenges(id).await?,
    };
    found
        .filter(|(a, _)| a.account_id == account.id)
        .ok_or_else(|| AcmeError::NotFound(format!("authorization {id}")))
}

/// `POST /acme/authz/ID` (POST-as-GET, §7.5).
async fn authorization(
    State(state): State<AppState>,
    Path(id): Path<String>,
    s: Signed,
) -> AcmeResult {
    let (mut authz, challenges) = own_authorization_with_challenges(&state, &s, &id).await?;
    if s.jws.payload()?.is_some() {
        // The only change a client may make: deactivation (§7.5.2).
        #[derive(Deserialize)]
        struct Update {
            status: String,
        }
        let update: Update = s.jws.payload_as()?;
        if update.status != "deactivated" {
            return Err(AcmeError::Malformed("an authorization can only be deactivated".into()));
        }
        if !state.store.deactivate_acme_authorization(&authz.id).await? {
            return Err(AcmeError::Malformed(format!("the authorization is {}", authz.status)));
        }
        authz.status = "deactivated".into();
    }
    let status = if authz.status == "pending" && crate::util::now() > authz.expires_at {
        "expired"
    } else {
        authz.status.as_str()
    };
    let identifier = identifier_of(&authz);
    let mut body = json!({
        "identifier": {
            "type": identifier.kind,
            "value": identifier.value.trim_start_matches("*."),
        },
        "status": status,
        "expires": crate::util::rfc3339(authz.expires_at),
        "challenges": challenges.iter().map(|c| challenge_json(&s, c)).collect::<Vec<_>>(),
    });
    if identifier.is_wildcard() {
        body["wildcard"] = true.into();
    }
    Ok(Json(body).into_response())
}

/// `POST /acme/chall/ID`: with `{}`, the client says it is ready and validation starts in
/// the background; with an empty payload, the challenge is read (§7.5.1).
async fn challenge(State(state): State<AppState>, Path(id): Path<String>, s: Signed) -> AcmeResult {
    let account = s.account()?.clone();
    let c = state
        .store
        .acme_challenge(&id)
        .await?
        .ok_or_else(|| AcmeError::NotFound(format!("challenge {id}")))?;
    let authz = own_authorization(&state, &s, &c.authz_id).await?;
    let mut c = c;
    let started = crate::util::now();
    // A validation ends within VALIDATION_DEADLINE; one processing for longer was left by
    // a process that stopped, and the client may start it again.
    let stale = started - 2 * crate::acme::VALIDATION_DEADLINE.as_secs() as i64;
    if s.jws.payload()?.is_some()
        && authz.status == "pending"
        && authz.expires_at > started
        && state.store.start_acme_challenge(&c.id, started, stale).await?
    {
        c.status = "processing".into();
        let identifier = identifier_of(&authz);
        let key_authorization = crate::acme::key_authorization(&c.token, &account.thumbprint);
        let (st, row, who) = (state.clone(), c.clone(), s.url(&format!("account/{}", account.id)));
        let expires_at = authz.expires_at;
        tokio::spawn(async move {
            let result =
                st.acme.validate(&row.kind, &identifier, &row.token, &key_authorization).await;
            let now = crate::util::now();
            // A success that comes after the authorization expired validates nothing.
            let result = result.and_then(|()| match now < expires_at {
                true => Ok(()),
                false => Err(crate::acme::problem(
                    "unauthorized",
                    "the authorization expired before its validation ended",
                )),
            });
            let error = result.err().map(|p| p.to_string());
            match st.store.finish_acme_challenge(&row, started, now, error.as_deref()).await {
                Ok(true) => {}
                // A newer validation of the challenge records its own result.
                Ok(false) => return,
                Err(e) => {
                    tracing::error!(error = %e, challenge = %row.id, "cannot record a validation");
                    return;
                }
            }
            let outcome = if error.is_none() {
                "valid".to_owned()
            } else {
                format!("invalid: {}", error.unwrap_or_default())
            };
            audit(
                &st,
                &who,
                "validate",
                None,
                format!("{} {} for {}: {outcome}", row.kind, row.id, identifier.value),
            )
            .await;
        });
    }
    let mut r = Json(challenge_json(&s, &c)).into_response();
    if c.status == "processing" {
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if let Ok(v) =
        HeaderValue::from_str(&format!("<{}>;rel=\"up\"", s.url(&format!("authz/{}", authz.id))))
    {
        r.headers_mut().append(header::LINK, v);
    }
    Ok(r)
}

#[derive(Deserialize)]
struct FinalizeRequest {
    csr: String,
}

/// The profile an order was placed under (orders from before profiles: the default one).
fn order_profile<'a>(
    state: &'a AppState,
    order: &OrderRow,
) -> Result<&'a crate::acme::Profile, AcmeError> {
    state.acme.settings.profile(order.profile.as_deref()).ok_or_else(|| {
        AcmeError::InvalidProfile(format!(
            "the order's profile {:?} is no longer configured",
            order.profile.as_deref().unwrap_or_default()
        ))
    })
}

/// The CSR of a finalize request, and the profile the order is issued under.
fn finalize_request(
    state: &AppState,
    s: &Signed,
    order: &OrderRow,
) -> Result<(Vec<u8>, crate::acme::Profile), AcmeError> {
    let req: FinalizeRequest = s.jws.payload_as()?;
    let der = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        req.csr.trim_end_matches('='),
    )
    .map_err(|_| AcmeError::BadCsr("csr is not base64url".into()))?;
    Ok((der, order_profile(state, order)?.clone()))
}

/// `POST /acme/order/ID/finalize` (§7.4): the CSR must name exactly the order's
/// identifiers; the certificate is issued at once, signed in the HSM.
async fn finalize(State(state): State<AppState>, Path(id): Path<String>, s: Signed) -> AcmeResult {
    let result = finalize_order(&state, &id, &s).await;
    settle(&state, &s, result).await
}

async fn finalize_order(state: &AppState, id: &str, s: &Signed) -> AcmeResult {
    // Replicas mark the order processing in the shared store, reading it in the same
    // statement when it is ready already; a single process holds it in memory instead (no
    // disk flush), and the order stays ready if the process dies.
    let claimed = match state.store.is_shared() {
        true => {
            let account = s.account()?;
            let nonce = s.take_nonce();
            let guard = nonce.as_deref().map(|n| NonceGuard::new(n, account));
            let now = crate::util::now();
            let stale = now - crate::acme::FINALIZE_STALE_SECS;
            match state.store.claim_ready_acme_order(id, &account.id, now, stale, guard).await? {
                (true, claimed) => claimed,
                (false, _) => return Err(guard_refused(state, account)),
            }
        }
        false => None,
    };
    let is_claimed = claimed.is_some();
    let (order, authzs) = match claimed {
        Some(claimed) => claimed,
        None => own_order(state, s, id).await?,
    };
    if !is_claimed && order.status != "ready" {
        return Err(AcmeError::OrderNotReady(format!("the order is {}, not ready", order.status)));
    }
    let (der, profile) = match finalize_request(state, s, &order) {
        Ok(v) => v,
        Err(e) => {
            // Ready again: the client may send a request it has fixed.
            if is_claimed {
                state.store.transition_acme_order(&order.id, "processing", "ready", None).await?;
            }
            return Err(e);
        }
    };
    let identifiers: Vec<Identifier> = serde_json::from_str(&order.identifiers).unwrap_or_default();
    let spec_identifiers = identifiers.clone();
    let stored = profile.store;
    let busy = || AcmeError::OrderNotReady("the order is being finalized already".into());
    let (_claim, from) = if is_claimed {
        (None, "processing")
    } else if state.store.is_shared() {
        if !state.store.transition_acme_order(&order.id, "ready", "processing", None).await? {
            return Err(busy());
        }
        (None, "processing")
    } else {
        let claim = state.acme.claim_finalize(&order.id).ok_or_else(busy)?;
        // A finalize that ended just before the claim has made it valid meanwhile.
        let now = own_order(state, s, id).await?.0.status;
        if now != "ready" {
            return Err(AcmeError::OrderNotReady(format!("the order is {now}, not ready")));
        }
        (Some(claim), "ready")
    };
    let allowed = identifiers.iter().try_for_each(|i| not_an_administrator(state, &profile, i));
    let issued = match allowed {
        Err(e) => Err(e),
        Ok(()) => crate::ca::run_signing(state.ca.current(), move |ca| {
            crate::acme::issue::from_csr(ca, &der, &spec_identifiers, &profile)
        })
        .await
        .map_err(AcmeError::from)
        .and_then(|issued| issued),
    };
    let (issued, serial, subject, not_after) = match issued {
        Ok(v) => v,
        Err(e) => {
            // Back to ready for a CSR the client can fix, or a fault of ours (the HSM or
            // the store, a 500): the order stays usable. Invalid for names it may not have.
            let back = match e.kind().1 == 500 || matches!(e, AcmeError::BadCsr(_)) {
                true => "ready",
                false => "invalid",
            };
            let problem = e.problem().to_string();
            let error = (back == "invalid").then_some(problem.as_str());
            if back != from {
                state.store.transition_acme_order(&order.id, from, back, error).await?;
            }
            return Err(e);
        }
    };
    let now = crate::util::now();
    let completed = if stored {
        let cert = crate::store::CertificateRow {
            serial: serial.clone(),
            role: "acme".into(),
            subject,
            not_before: now,
            not_after,
            lease_id: None,
            revoked_at: None,
            revocation_reason: None,
            pem: issued.cert_pem,
            issuer: issued.issuer,
            kmip_object: None,
        };
        state.store.complete_acme_order(&order, &cert).await
    } else {
        state
            .store
            .complete_acme_order_unstored(
                &order,
                &serial,
                &issued.cert_pem,
                &issued.issuer,
                not_after,
            )
            .await
    };
    if let Err(e) = completed {
        // Ready again for another try; the certificate signed was never given out.
        if from != "ready" {
            let _ = state.store.transition_acme_order(&order.id, from, "ready", None).await;
        }
        return Err(e.into());
    }
    let who = s.url(&format!("account/{}", order.account_id));
    let names: Vec<&str> = identifiers.iter().map(|i| i.value.as_str()).collect();
    audit(state, &who, "issue", None, format!("certificate {serial} for {}", names.join(", ")))
        .await;
    // The order as the store has it now (no need to read it back).
    let mut order = order;
    order.status = "valid".into();
    match stored {
        true => order.certificate_serial = Some(serial),
        false => order.unstored_serial = Some(serial),
    }
    let location = s.url(&format!("order/{id}"));
    with_location(StatusCode::OK, &location, order_json(s, &order, &authzs))
}

/// `POST /acme/cert/SERIAL` (POST-as-GET): the certificate and the CA certificates up to
/// `DATA/ca.crt`'s root (through cross-certificates after a root rotation), as
/// `application/pem-certificate-chain` (§7.4.2); the root is the client's trust anchor.
/// Other chains (ending at a newer root) are offered as `Link: rel="alternate"`.
async fn certificate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    s: Signed,
) -> AcmeResult {
    certificate_chain(&state, &id, 0, &s).await
}

/// `POST /acme/cert/SERIAL/N`: the Nth alternate chain (§7.4.2).
async fn alternate_certificate(
    State(state): State<AppState>,
    Path((id, alternate)): Path<(String, usize)>,
    s: Signed,
) -> AcmeResult {
    certificate_chain(&state, &id, alternate, &s).await
}

async fn certificate_chain(state: &AppState, id: &str, n: usize, s: &Signed) -> AcmeResult {
    s.post_as_get()?;
    let account = s.account()?;
    let not_found = || AcmeError::NotFound(format!("certificate {id}"));
    let cert = state.store.acme_certificate(id).await?;
    let cert = cert.filter(|c| c.account_id == account.id).ok_or_else(not_found)?;
    let (pem, issuer) = (cert.pem, cert.issuer);
    let issuer = state
        .ca
        .authority(&issuer)
        .ok_or_else(|| crate::ca::CaError::BadIssuer(issuer.clone(), "not loaded"))?;
    let chains = state.ca.chains_for(&issuer);
    let chain = chains.get(n).ok_or_else(|| AcmeError::NotFound(format!("chain {n} of {id}")))?;
    let body: String =
        std::iter::once(pem.as_str()).chain(chain.iter().map(String::as_str)).collect();
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pem-certificate-chain"),
    );
    for other in (0..chains.len()).filter(|i| *i != n) {
        let url = match other {
            0 => s.url(&format!("cert/{id}")),
            i => s.url(&format!("cert/{id}/{i}")),
        };
        if let Ok(v) = HeaderValue::from_str(&format!("<{url}>;rel=\"alternate\"")) {
            r.headers_mut().append(header::LINK, v);
        }
    }
    Ok(r)
}

#[derive(Deserialize)]
struct RevokeRequest {
    certificate: String,
    #[serde(default)]
    reason: Option<i64>,
}

/// `POST /acme/revoke-cert` (§7.6): by the account that ordered the certificate (`kid`) or
/// with the certificate's own key (`jwk`); the CRL lists it from then on.
async fn revoke_cert(State(state): State<AppState>, s: Signed) -> AcmeResult {
    let req: RevokeRequest = s.jws.payload_as()?;
    let reason = req.reason.unwrap_or(0);
    // Not the CA's own compromise (2, 10): a subscriber cannot know it; nor a hold (6),
    // which nothing here would release.
    if !crate::ca::revocation_reason_allowed(reason) || matches!(reason, 2 | 6 | 10) {
        return Err(AcmeError::BadRevocationReason(reason));
    }
    let der = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        req.certificate.trim_end_matches('='),
    )
    .map_err(|_| AcmeError::Malformed("certificate is not base64url".into()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|_| AcmeError::Malformed("certificate is not a DER X.509 certificate".into()))?;
    let serial = hex::encode(cert.tbs_certificate.raw_serial());
    let Some(row) = state.store.certificate(&serial).await? else {
        // Certificates of no-store profiles have nothing to revoke them in.
        let unstored =
            state.store.acme_order_by_certificate(&serial).await?.and_then(|o| o.profile);
        return Err(match unstored {
            Some(profile) => AcmeError::Unauthorized(format!(
                "certificates of profile {profile} are not stored and cannot be revoked; \
                 they expire on their own"
            )),
            None => AcmeError::NotFound(format!("certificate {serial}")),
        });
    };
    // The stored certificate must be the one presented (not just the same serial).
    let stored_der = x509_parser::pem::parse_x509_pem(row.pem.as_bytes())
        .map(|(_, p)| p.contents)
        .unwrap_or_default();
    if stored_der != der {
        return Err(AcmeError::NotFound(format!("certificate {serial}")));
    }
    let allowed = match &s.account {
        Some(account) => state
            .store
            .acme_order_by_certificate(&serial)
            .await?
            .is_some_and(|o| o.account_id == account.id),
        None => Jwk::from_spki(cert.public_key())
            .map(|k| k.thumbprint().ok() == s.jwk.thumbprint().ok())
            .unwrap_or(false),
    };
    if !allowed {
        return Err(AcmeError::Unauthorized(
            "only the ordering account or the certificate's key may revoke it".into(),
        ));
    }
    if row.revoked_at.is_some() {
        return Err(AcmeError::AlreadyRevoked);
    }
    state.store.revoke_certificate(&serial, reason, crate::util::now()).await?;
    let who = match &s.account {
        Some(a) => s.url(&format!("account/{}", a.id)),
        None => "certificate key".to_owned(),
    };
    audit(&state, &who, "revoke", None, format!("certificate {serial}, reason {reason}")).await;
    Ok(StatusCode::OK.into_response())
}
