//! A hand-made ACME client for black-box tests: ES256 JWS with `jwk` or `kid`, nonces
//! taken from each answer, raw access to every request and response.

use std::net::SocketAddr;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::{json, Value};

use super::{https_full, tls_config, Server};

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The problem type's last part, for error responses.
    pub fn problem(&self) -> String {
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{self:?}");
        let t = self.json()["type"].as_str().unwrap().to_owned();
        t.strip_prefix("urn:ietf:params:acme:error:").unwrap().to_owned()
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, String::from_utf8_lossy(&self.body))
    }
}

/// An ACME client holding an ECDSA P-256 account key.
pub struct AcmeClient {
    pub addr: SocketAddr,
    pub config: Arc<rustls::ClientConfig>,
    pub key: EcdsaKeyPair,
    pub kid: Option<String>,
    pub nonce: Option<String>,
}

pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

pub fn new_key() -> EcdsaKeyPair {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap()
}

pub fn jwk(key: &EcdsaKeyPair) -> Value {
    let p = key.public_key().as_ref();
    json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..])})
}

pub const URL: &str = "https://localhost";

impl AcmeClient {
    pub fn new(server: &Server, dir: &std::path::Path) -> AcmeClient {
        AcmeClient {
            addr: server.https,
            config: tls_config(dir, None),
            key: new_key(),
            kid: None,
            nonce: None,
        }
    }

    pub fn raw(&mut self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Response {
        let (status, headers, body) = https_full(
            self.addr,
            self.config.clone(),
            method,
            path,
            &[("Content-Type", content_type)],
            body,
        );
        let r = Response { status, headers, body };
        if let Some(n) = r.header("replay-nonce") {
            self.nonce = Some(n.to_owned());
        }
        r
    }

    pub fn fresh_nonce(&mut self) -> String {
        match self.nonce.take() {
            Some(n) => n,
            None => {
                let r = self.raw("HEAD", "/acme/new-nonce", "text/plain", b"");
                assert_eq!(r.status, 200);
                self.nonce.take().expect("Replay-Nonce")
            }
        }
    }

    /// A JWS over `payload` (`None`: POST-as-GET) with this header.
    pub fn jws(&self, key: &EcdsaKeyPair, header: Value, payload: Option<&Value>) -> Vec<u8> {
        let protected = b64(header.to_string().as_bytes());
        let payload = payload.map(|p| b64(p.to_string().as_bytes())).unwrap_or_default();
        let sig =
            key.sign(&SystemRandom::new(), format!("{protected}.{payload}").as_bytes()).unwrap();
        json!({"protected": protected, "payload": payload, "signature": b64(sig.as_ref())})
            .to_string()
            .into_bytes()
    }

    pub fn header(&mut self, path: &str) -> Value {
        let mut h =
            json!({"alg": "ES256", "nonce": self.fresh_nonce(), "url": format!("{URL}{path}")});
        match &self.kid {
            Some(kid) => h["kid"] = kid.clone().into(),
            None => h["jwk"] = jwk(&self.key),
        }
        h
    }

    pub fn post(&mut self, path: &str, payload: Option<Value>) -> Response {
        let header = self.header(path);
        let body = self.jws(&self.key, header, payload.as_ref());
        self.raw("POST", path, "application/jose+json", &body)
    }

    pub fn register(&mut self) -> Response {
        let r = self.post("/acme/new-account", Some(json!({"termsOfServiceAgreed": true})));
        assert!(r.status == 201 || r.status == 200, "{r:?}");
        self.kid = r.header("location").map(str::to_owned);
        r
    }
}
