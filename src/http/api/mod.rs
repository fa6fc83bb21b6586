//! The JSON REST API under `/v1/` (described in `schemas/openapi.json`). Callers are
//! authenticated by bearer token (`Authorization: Bearer T` or `X-Vault-Token: T`) or by
//! client certificate; every request is checked against the caller's policies (see
//! `crate::policy`) and audited with the identity and the decision. Response bodies follow
//! Vault's shapes (`data`, `auth`, `lease_id`, `errors`) so its users and tools feel at home.

mod acme;
mod database;
mod leases;
mod pki;
mod sys;
mod tde;
mod tokens;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::Peer;
use crate::app::AppState;
use crate::authz::{DEFAULT_POLICY, ROOT_POLICY};
use crate::creds::CredsError;
pub(crate) use crate::creds::StringList;
use crate::policy::{Capability, Policy};
use crate::store::{AuditEvent, StoreError};

/// Routes where GET lists names (needs `list`, not `read`).
const LIST_ROUTES: &[&str] = &[
    "/v1/sys/policies/acl",
    "/v1/database/config",
    "/v1/database/roles",
    "/v1/database/static-roles",
    "/v1/sys/leases/lookup/{*prefix}",
    "/v1/pki/roles",
    "/v1/{mount}/metadata",
    "/v1/{mount}/metadata/",
    "/v1/{mount}/keys",
    "/v1/{mount}/keys/",
    "/v1/acme/eab",
    "/v1/sys/keys",
    "/v1/pki/certs",
    "/v1/pki/issuers",
];

/// Routes that also need `sudo`, as in Vault: revoking or listing every lease under a
/// prefix, reading the audit trail, replacing the CA's root and revoking an issuer.
const SUDO_ROUTES: &[&str] = &[
    "/v1/sys/leases/revoke-prefix/{*prefix}",
    "/v1/sys/leases/lookup/{*prefix}",
    "/v1/sys/audit",
    "/v1/pki/root/rotate",
    "/v1/pki/issuer/{id}/revoke",
];

/// Routes that create a named thing, where a write needs `create` or `update`; every other
/// write needs `update` (as Vault treats writes to paths without an existence check: a
/// token meant to provision keys must not also rotate, destroy or revoke).
const CREATE_ROUTES: &[&str] = &[
    "/v1/auth/token/create",
    "/v1/sys/policies/acl/{name}",
    "/v1/database/config/{name}",
    "/v1/database/roles/{name}",
    "/v1/database/static-roles/{name}",
    "/v1/pki/roles/{name}",
    "/v1/acme/eab",
    "/v1/{mount}/keys/{name}",
];

/// Whether the named thing a write to `path` (a [`CREATE_ROUTES`] route) would make
/// exists already. TDE keys refuse an existing name themselves; tokens and EAB keys are
/// always new.
async fn exists(state: &AppState, matched: &str, path: &str) -> Result<bool, CredsError> {
    use crate::creds::Named;
    let name = path.rsplit('/').next().unwrap_or_default();
    let what = match matched {
        "/v1/sys/policies/acl/{name}" => return Ok(state.store.policy(name).await?.is_some()),
        "/v1/database/config/{name}" => Named::Connection,
        "/v1/database/roles/{name}" => Named::Role,
        "/v1/database/static-roles/{name}" => Named::StaticRole,
        "/v1/pki/roles/{name}" => Named::PkiRole,
        _ => return Ok(false),
    };
    state.creds.exists(what, name).await
}

/// Routes anyone may read, as a CA publishes its certificate and CRL.
const PUBLIC_ROUTES: &[&str] = &[
    "/v1/pki/ca/pem",
    "/v1/pki/ca_chain",
    "/v1/pki/crl",
    "/v1/pki/crl/pem",
    "/v1/pki/crl/delta",
    "/v1/pki/crl/delta/pem",
    "/v1/pki/issuers",
    "/v1/pki/issuer/{id}",
    "/v1/pki/issuer/{id}/pem",
    "/v1/pki/issuer/{id}/der",
    "/v1/pki/issuer/{id}/crl",
    "/v1/pki/issuer/{id}/crl/pem",
    "/v1/pki/issuer/{id}/crl/delta",
    "/v1/pki/issuer/{id}/crl/delta/pem",
];

/// Every API route, for the router and the OpenAPI check.
pub(super) fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/auth/token/create", post(tokens::create))
        .route("/v1/auth/token/lookup-self", get(tokens::lookup_self))
        .route("/v1/auth/token/revoke-self", post(tokens::revoke_self))
        .route("/v1/auth/token/revoke-accessor", post(tokens::revoke_accessor))
        .route("/v1/sys/policies/acl", get(tokens::list_policies))
        .route("/v1/sys/audit", get(tokens::audit))
        .route("/v1/sys/status", get(sys::status))
        .route("/v1/sys/keys", get(sys::list_keys))
        .route("/v1/sys/keys/{id}", get(sys::read_key))
        .route(
            "/v1/sys/policies/acl/{name}",
            get(tokens::read_policy)
                .post(tokens::write_policy)
                .put(tokens::write_policy)
                .delete(tokens::delete_policy),
        )
        .route("/v1/database/config", get(database::list_connections))
        .route(
            "/v1/database/config/{name}",
            get(database::read_connection)
                .post(database::write_connection)
                .put(database::write_connection)
                .delete(database::delete_connection),
        )
        .route("/v1/database/roles", get(database::list_roles))
        .route(
            "/v1/database/roles/{name}",
            get(database::read_role)
                .post(database::write_role)
                .put(database::write_role)
                .delete(database::delete_role),
        )
        .route("/v1/database/creds/{role}", get(database::creds))
        .route("/v1/database/rotate-root/{name}", post(database::rotate_root))
        .route("/v1/database/static-roles", get(database::list_static_roles))
        .route(
            "/v1/database/static-roles/{name}",
            get(database::read_static_role)
                .post(database::write_static_role)
                .put(database::write_static_role)
                .delete(database::delete_static_role),
        )
        .route("/v1/database/static-creds/{name}", get(database::static_creds))
        .route("/v1/database/rotate-role/{name}", post(database::rotate_role))
        .route("/v1/sys/leases/renew", post(leases::renew).put(leases::renew))
        .route("/v1/sys/leases/revoke", post(leases::revoke).put(leases::revoke))
        .route(
            "/v1/sys/leases/revoke-prefix/{*prefix}",
            post(leases::revoke_prefix).put(leases::revoke_prefix),
        )
        .route("/v1/sys/leases/lookup", post(leases::lookup).put(leases::lookup))
        .route("/v1/sys/leases/lookup/{*prefix}", get(leases::list))
        .route("/v1/pki/roles", get(pki::list_roles))
        .route(
            "/v1/pki/roles/{name}",
            get(pki::read_role).post(pki::write_role).put(pki::write_role).delete(pki::delete_role),
        )
        .route("/v1/pki/issue/{role}", post(pki::issue))
        .route("/v1/pki/sign/{role}", post(pki::sign))
        .route("/v1/pki/revoke", post(pki::revoke))
        .route("/v1/pki/cert/{serial}", get(pki::read_cert))
        .route("/v1/pki/certs", get(sys::list_certs))
        .route("/v1/pki/intermediate/rotate", post(pki::rotate))
        .route("/v1/pki/root/rotate", post(pki::rotate_root))
        .route("/v1/pki/issuer/{id}/revoke", post(pki::revoke_issuer))
        .route("/v1/acme/eab", get(acme::list).post(acme::create))
        .route("/v1/acme/eab/{id}", delete(acme::delete))
        .route("/v1/sys/mounts/{mount}/tune", get(tde::tune))
        .route("/v1/{mount}/data/{name}", get(tde::read))
        .route("/v1/{mount}/metadata", get(tde::list))
        // With a trailing slash, as Vault clients may list.
        .route("/v1/{mount}/metadata/", get(tde::list))
        .route("/v1/{mount}/keys/", get(tde::list))
        .route("/v1/{mount}/metadata/{name}", get(tde::metadata))
        .route("/v1/{mount}/keys", get(tde::list))
        .route(
            "/v1/{mount}/keys/{name}",
            get(tde::read_key).post(tde::create).put(tde::create).delete(tde::delete_key),
        )
        .route("/v1/{mount}/keys/{name}/rotate", post(tde::rotate).put(tde::rotate))
        .route("/v1/{mount}/destroy/{name}", post(tde::destroy_versions).put(tde::destroy_versions))
        .merge(public_router())
        .route_layer(axum::middleware::from_fn_with_state(state, authorize))
}

/// What a CA publishes for anyone (its certificates and CRLs), also served over plain HTTP
/// on `[ca] http_listen`.
pub(super) fn public_router() -> Router<AppState> {
    Router::new()
        .route("/v1/pki/ca/pem", get(pki::ca_pem))
        .route("/v1/pki/crl", get(pki::crl_der))
        .route("/v1/pki/crl/pem", get(pki::crl_pem))
        .route("/v1/pki/crl/delta", get(pki::delta_crl_der))
        .route("/v1/pki/crl/delta/pem", get(pki::delta_crl_pem))
        .route("/v1/pki/ca_chain", get(pki::ca_chain))
        .route("/v1/pki/issuers", get(pki::list_issuers))
        .route("/v1/pki/issuer/{id}", get(pki::read_issuer))
        .route("/v1/pki/issuer/{id}/pem", get(pki::issuer_pem))
        .route("/v1/pki/issuer/{id}/der", get(pki::issuer_der))
        .route("/v1/pki/issuer/{id}/crl", get(pki::issuer_crl_der))
        .route("/v1/pki/issuer/{id}/crl/pem", get(pki::issuer_crl_pem))
        .route("/v1/pki/issuer/{id}/crl/delta", get(pki::issuer_delta_crl_der))
        .route("/v1/pki/issuer/{id}/crl/delta/pem", get(pki::issuer_delta_crl_pem))
}

/// The managed object a response concerned, for the audit record (handlers add it to
/// their response's extensions).
#[derive(Clone, Debug)]
pub(crate) struct AuditObject {
    pub(crate) object_id: String,
    pub(crate) detail: String,
}

/// Who is calling, once authenticated; added to the request for the handlers.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    /// For audit records and lease ownership: `token:ACCESSOR` or the certificate subject.
    pub(crate) identity: String,
    pub(crate) display_name: String,
    pub(crate) policies: Vec<String>,
    /// The token's accessor, when a token was used.
    pub(crate) accessor: Option<String>,
    pub(crate) token_expires_at: Option<i64>,
    pub(crate) token_created_at: Option<i64>,
}

impl Caller {
    pub(crate) fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == ROOT_POLICY)
    }

    /// Who leases issued to this caller belong to, and when they must end.
    pub(crate) fn holder(&self) -> crate::creds::Holder<'_> {
        crate::creds::Holder { identity: &self.identity, until: self.token_expires_at }
    }
}

/// An API error: a status and a message, sent as `{"errors": [message]}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn not_found(what: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, format!("{what} does not exist"))
    }

    pub(crate) fn internal(e: &dyn std::error::Error) -> ApiError {
        tracing::error!(error = %e, "API request failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the server log")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "errors": [self.message] }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        if e.is_input() {
            return ApiError::bad_request(e.to_string());
        }
        ApiError::internal(&e)
    }
}

impl From<CredsError> for ApiError {
    fn from(e: CredsError) -> ApiError {
        match &e {
            CredsError::Invalid(_) | CredsError::Template(_) | CredsError::BadUrl(_) => {
                ApiError::bad_request(e.to_string())
            }
            CredsError::NotFound { .. } => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            CredsError::NoLease(_) => ApiError::bad_request(e.to_string()),
            CredsError::Database(_) | CredsError::Unreachable(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, e.to_string())
            }
            CredsError::Ca(crate::ca::CaError::NameConstraints(why)) => {
                ApiError::bad_request(format!("name constraints: {why}"))
            }
            CredsError::Hsm(h) if h.is_transient() => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "HSM temporarily unavailable; retry")
            }
            CredsError::Store(s) if s.is_input() => ApiError::bad_request(e.to_string()),
            CredsError::Store(_)
            | CredsError::Hsm(_)
            | CredsError::Ca(_)
            | CredsError::Corrupt { .. } => ApiError::internal(&e),
        }
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;

/// `{"data": value}` with 200.
pub(crate) fn data(value: Value) -> ApiResult {
    Ok(Json(json!({ "data": value })).into_response())
}

/// `{"data": {"keys": names}}`: a list response.
pub(crate) fn keys(names: Vec<String>) -> ApiResult {
    data(json!({ "keys": names }))
}

/// 204 No Content.
pub(crate) fn done() -> ApiResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A JSON object as request body, whatever its Content-Type says (Vault's clients often
/// send none); an empty body is `{}`. Bad JSON, or JSON that is not an object (serde would
/// read a struct from an array), is a 400 that says so.
pub(crate) struct Body<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), e.body_text()))?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        let bad = |e: serde_json::Error| ApiError::bad_request(format!("request body: {e}"));
        match serde_json::from_slice::<Value>(bytes).map_err(bad)? {
            object @ Value::Object(_) => serde_json::from_value(object).map(Body).map_err(bad),
            _ => Err(ApiError::bad_request("request body: must be a JSON object")),
        }
    }
}

/// Reads an optional nested struct only from a JSON object (or null), as [`Body`] does the
/// whole body: serde alone would also read it from an array.
pub(crate) fn object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::Deserialize;
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => {
            serde_json::from_value(v).map(Some).map_err(serde::de::Error::custom)
        }
        Some(_) => Err(serde::de::Error::custom("must be a JSON object")),
    }
}

/// Query parameters; a malformed query is a 400 in the API's JSON error form (axum's own
/// rejection is plain text).
pub(crate) struct Params<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Params(q.0))
            .map_err(|e| ApiError::bad_request(format!("query: {}", e.body_text())))
    }
}

/// A TTL in a request body: seconds, or text like `90m`, absent meaning 0.
pub(crate) fn ttl(v: &Option<Value>) -> Result<i64, ApiError> {
    match v {
        None => Ok(0),
        Some(v) => Ok(crate::creds::pki::parse_ttl(v)?),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    // An empty header is no token (a client certificate may still identify the caller).
    let vault = headers.get("x-vault-token").and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(v) = vault.filter(|v| !v.is_empty()) {
        return Some(v);
    }
    let v = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Loads the named policies (built-ins by name); one that cannot be read is skipped.
async fn load_policies(state: &AppState, names: &[String]) -> Result<Vec<Policy>, StoreError> {
    let mut out = vec![Policy::default_policy()];
    for name in names {
        match name.as_str() {
            ROOT_POLICY => out.push(Policy::root()),
            DEFAULT_POLICY => {}
            _ => {
                if let Some(text) = state.store.policy(name).await? {
                    match Policy::parse(&text) {
                        Ok(p) => out.push(p),
                        Err(e) => {
                            tracing::warn!(policy = %name, error = %e, "stored policy does not parse")
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The capability a request needs.
fn needed(method: &Method, matched: &str) -> Capability {
    match *method {
        Method::GET | Method::HEAD if LIST_ROUTES.contains(&matched) => Capability::List,
        Method::GET | Method::HEAD => Capability::Read,
        Method::DELETE => Capability::Delete,
        // POST and PUT: update (or create, on CREATE_ROUTES).
        _ => Capability::Update,
    }
}

/// Authenticates, authorises and audits every API request.
async fn authorize(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let matched =
        req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_default();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    // Policies match the path as sent, while handlers get its segments decoded: an
    // encoded character would let `tde/data/%342` pass a rule denying `tde/data/42`. No
    // name the API takes needs one.
    if path.contains('%') {
        return ApiError::bad_request("percent-encoded characters are not accepted in API paths")
            .into_response();
    }
    let operation = format!("{method} {path}");
    // Metrics count by route template, not by path, to keep their labels bounded.
    let route = format!("{method} {matched}");
    // Taken out of the request first: a borrowed request is not Send across awaits.
    let peer = req.extensions().get::<Peer>().and_then(|p| p.0.clone());
    let token = bearer(req.headers()).map(str::to_owned);
    let caller = match authenticate(&state, token.as_deref(), peer).await {
        Ok(c) => c,
        Err(e)
            if PUBLIC_ROUTES.contains(&matched.as_str())
                && e.status == StatusCode::UNAUTHORIZED =>
        {
            Caller {
                identity: "anonymous".into(),
                display_name: "anonymous".into(),
                policies: Vec::new(),
                accessor: None,
                token_expires_at: None,
                token_created_at: None,
            }
        }
        Err(e) => {
            crate::metrics::count_request("api", &route, "denied");
            audit(&state, "unauthenticated", &operation, "denied", None, Some(e.message.clone()))
                .await;
            return e.into_response();
        }
    };
    let need = needed(&method, &matched);
    let mut why = None;
    let allowed = PUBLIC_ROUTES.contains(&matched.as_str()) || {
        match load_policies(&state, &caller.policies).await {
            Ok(policies) => {
                let rel = path.strip_prefix("/v1/").unwrap_or(&path);
                let caps = crate::policy::capabilities(&policies, rel);
                let create_only = !caps.contains(&need)
                    && need == Capability::Update
                    && caps.contains(&Capability::Create)
                    && CREATE_ROUTES.contains(&matched.as_str());
                // `create` makes what does not exist yet; replacing it takes `update`.
                let replaces = match create_only {
                    true => match exists(&state, &matched, &path).await {
                        Ok(found) => found,
                        Err(e) => return ApiError::from(e).into_response(),
                    },
                    false => false,
                };
                if replaces {
                    why = Some(format!("{path} exists: replacing it takes the update capability"));
                }
                (caps.contains(&need) || (create_only && !replaces))
                    && (!SUDO_ROUTES.contains(&matched.as_str())
                        || caps.contains(&Capability::Sudo))
            }
            Err(e) => return ApiError::from(e).into_response(),
        }
    };
    if !allowed {
        let why = why.unwrap_or_else(|| match SUDO_ROUTES.contains(&matched.as_str()) {
            true => format!("no {need} and sudo capabilities on {path}"),
            false => format!("no {need} capability on {path}"),
        });
        crate::metrics::count_request("api", &route, "denied");
        audit(&state, &caller.identity, &operation, "denied", None, Some(why)).await;
        return ApiError::new(StatusCode::FORBIDDEN, "permission denied").into_response();
    }
    let identity = caller.identity.clone();
    req.extensions_mut().insert(caller);
    let response = next.run(req).await;
    let status = response.status();
    let outcome =
        if status.is_success() { "ok".to_owned() } else { format!("error {}", status.as_u16()) };
    crate::metrics::count_request("api", &route, &outcome);
    let (object_id, detail) = match response.extensions().get::<AuditObject>() {
        Some(o) => (Some(o.object_id.clone()), Some(o.detail.clone())),
        None => (None, None),
    };
    audit(&state, &identity, &operation, &outcome, object_id, detail).await;
    response
}

async fn authenticate(
    state: &AppState,
    token: Option<&str>,
    peer: Option<crate::authz::Principal>,
) -> Result<Caller, ApiError> {
    if let Some(token) = token {
        let denied =
            || ApiError::new(StatusCode::FORBIDDEN, "permission denied: invalid or expired token");
        let row = state
            .store
            .token_by_hash(&crate::authz::token_hash(token))
            .await?
            .ok_or_else(denied)?;
        if !row.is_live(crate::util::now()) {
            return Err(denied());
        }
        return Ok(Caller {
            identity: format!("token:{}", row.accessor),
            display_name: row.display_name.clone(),
            policies: row.policy_names(),
            accessor: Some(row.accessor.clone()),
            token_expires_at: row.expires_at,
            token_created_at: Some(row.created_at),
        });
    }
    if let Some(principal) = peer {
        let admin = state.admins.contains(principal.as_str());
        return Ok(Caller {
            identity: principal.to_string(),
            display_name: principal.to_string(),
            policies: vec![if admin { ROOT_POLICY } else { DEFAULT_POLICY }.to_owned()],
            accessor: None,
            token_expires_at: None,
            token_created_at: None,
        });
    }
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        "missing client token: send Authorization: Bearer TOKEN or a client certificate",
    ))
}

async fn audit(
    state: &AppState,
    principal: &str,
    operation: &str,
    outcome: &str,
    object_id: Option<String>,
    detail: Option<String>,
) {
    state
        .store
        .audit(AuditEvent {
            at: crate::util::now(),
            principal: principal.to_owned(),
            protocol: "api",
            operation: operation.to_owned(),
            object_id,
            outcome: outcome.to_owned(),
            detail,
        })
        .await;
}
