//! JSON Web Signatures as ACME uses them (RFC 8555 §6.2): the flattened JSON serialization
//! (RFC 7515 §7.2.2), account keys as JWKs (RFC 7517, RFC 8037 for Ed25519) and their
//! thumbprints (RFC 7638). Signatures are checked with aws-lc.

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::AcmeError;

/// A JWS request body, parsed but not yet verified.
#[derive(Debug)]
pub(crate) struct Jws {
    pub(crate) header: Protected,
    protected_b64: String,
    payload_b64: String,
    signature: Vec<u8>,
}

/// The protected header fields ACME uses.
#[derive(Debug, Deserialize)]
pub(crate) struct Protected {
    pub(crate) alg: String,
    #[serde(default)]
    pub(crate) nonce: Option<String>,
    pub(crate) url: String,
    #[serde(default)]
    pub(crate) jwk: Option<Jwk>,
    #[serde(default)]
    pub(crate) kid: Option<String>,
    /// Extensions the signer says must be understood (RFC 7515 §4.1.11): none is.
    #[serde(default)]
    crit: Option<serde_json::Value>,
    /// An unencoded payload (RFC 7797), which ACME does not use.
    #[serde(default)]
    b64: Option<serde_json::Value>,
}

/// A public key as a JWK: EC (P-256, P-384), RSA or OKP (Ed25519).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub(crate) struct Jwk {
    pub(crate) kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) e: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    protected: String,
    payload: String,
    signature: String,
    #[serde(default)]
    #[allow(dead_code)]
    header: Option<serde_json::Value>,
}

fn b64(field: &str, text: &str) -> Result<Vec<u8>, AcmeError> {
    B64.decode(text)
        .map_err(|_| AcmeError::Malformed(format!("{field} is not base64url without padding")))
}

/// base64url without padding.
pub(crate) fn encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

impl Jws {
    /// Parses a flattened JWS; the unprotected `header` must not carry anything.
    pub(crate) fn parse(body: &[u8]) -> Result<Jws, AcmeError> {
        let f: Flattened = serde_json::from_slice(body)
            .map_err(|e| AcmeError::Malformed(format!("request is not a flattened JWS: {e}")))?;
        Self::from_flattened(f)
    }

    /// Parses a JWS nested in a request's payload (keyChange's inner JWS, EAB's MAC).
    pub(crate) fn parse_value(value: &serde_json::Value) -> Result<Jws, AcmeError> {
        let f: Flattened = serde_json::from_value(value.clone())
            .map_err(|e| AcmeError::Malformed(format!("nested JWS: {e}")))?;
        Self::from_flattened(f)
    }

    fn from_flattened(f: Flattened) -> Result<Jws, AcmeError> {
        if f.header.as_ref().is_some_and(|h| h.as_object().is_none_or(|o| !o.is_empty())) {
            return Err(AcmeError::Malformed("the unprotected header must be empty".into()));
        }
        let header: Protected = serde_json::from_slice(&b64("protected", &f.protected)?)
            .map_err(|e| AcmeError::Malformed(format!("protected header: {e}")))?;
        match (&header.jwk, &header.kid) {
            (Some(_), Some(_)) => {
                return Err(AcmeError::Malformed("the header has both jwk and kid".into()))
            }
            (None, None) => {
                return Err(AcmeError::Malformed("the header has neither jwk nor kid".into()))
            }
            _ => {}
        }
        if header.alg == "none" {
            return Err(AcmeError::BadSignatureAlgorithm(header.alg.clone()));
        }
        if header.crit.is_some() || header.b64.is_some() {
            return Err(AcmeError::Malformed(
                "the header's crit and b64 extensions are not supported".into(),
            ));
        }
        Ok(Jws {
            signature: b64("signature", &f.signature)?,
            header,
            protected_b64: f.protected,
            payload_b64: f.payload,
        })
    }

    /// Checks the signature with `key`; the algorithm must suit the key.
    pub(crate) fn verify(&self, key: &Jwk) -> Result<(), AcmeError> {
        let input = format!("{}.{}", self.protected_b64, self.payload_b64);
        let part = |name: &str, v: &Option<String>| -> Result<Vec<u8>, AcmeError> {
            let v = v
                .as_deref()
                .ok_or_else(|| AcmeError::Malformed(format!("the JWK has no {name:?} member")))?;
            b64(name, v)
        };
        let alg = self.header.alg.as_str();
        let ok = match (alg, key.kty.as_str(), key.crv.as_deref()) {
            ("ES256", "EC", Some("P-256")) | ("ES384", "EC", Some("P-384")) => {
                let (x, y) = (part("x", &key.x)?, part("y", &key.y)?);
                let (algorithm, len) = if alg == "ES256" {
                    (&signature::ECDSA_P256_SHA256_FIXED, 32)
                } else {
                    (&signature::ECDSA_P384_SHA384_FIXED, 48)
                };
                if x.len() != len || y.len() != len {
                    return Err(AcmeError::BadPublicKey("EC coordinates of the wrong size".into()));
                }
                let point = [&[4u8][..], &x, &y].concat();
                UnparsedPublicKey::new(algorithm, point)
                    .verify(input.as_bytes(), &self.signature)
                    .is_ok()
            }
            ("RS256", "RSA", _) => {
                let (n, e) = (part("n", &key.n)?, part("e", &key.e)?);
                if n.len() < 256 {
                    return Err(AcmeError::BadPublicKey("RSA keys need 2048 bits or more".into()));
                }
                signature::RsaPublicKeyComponents { n: &n, e: &e }
                    .verify(
                        &signature::RSA_PKCS1_2048_8192_SHA256,
                        input.as_bytes(),
                        &self.signature,
                    )
                    .is_ok()
            }
            ("EdDSA", "OKP", Some("Ed25519")) => {
                UnparsedPublicKey::new(&signature::ED25519, part("x", &key.x)?)
                    .verify(input.as_bytes(), &self.signature)
                    .is_ok()
            }
            ("ES256" | "ES384" | "RS256" | "EdDSA", ..) => {
                return Err(AcmeError::BadSignatureAlgorithm(format!(
                    "{alg} does not suit a {} key",
                    key.kty
                )));
            }
            _ => return Err(AcmeError::BadSignatureAlgorithm(alg.to_owned())),
        };
        if ok {
            Ok(())
        } else {
            Err(AcmeError::Malformed("JWS signature verification failed".into()))
        }
    }

    /// Checks an HMAC signature (External Account Binding, RFC 8555 §7.3.4).
    pub(crate) fn verify_hmac(&self, key: &[u8]) -> Result<(), AcmeError> {
        use aws_lc_rs::hmac;
        let algorithm = match self.header.alg.as_str() {
            "HS256" => hmac::HMAC_SHA256,
            "HS384" => hmac::HMAC_SHA384,
            "HS512" => hmac::HMAC_SHA512,
            other => return Err(AcmeError::BadSignatureAlgorithm(format!("{other} for EAB"))),
        };
        let input = format!("{}.{}", self.protected_b64, self.payload_b64);
        hmac::verify(&hmac::Key::new(algorithm, key), input.as_bytes(), &self.signature).map_err(
            |_| AcmeError::Unauthorized("the external account binding MAC is wrong".into()),
        )
    }

    /// Whether the payload is non-empty (a POST-as-GET's is empty, RFC 8555 §6.3).
    pub(crate) fn has_payload(&self) -> bool {
        !self.payload_b64.is_empty()
    }

    /// The payload as JSON; `None` for the empty payload of a POST-as-GET.
    pub(crate) fn payload(&self) -> Result<Option<serde_json::Value>, AcmeError> {
        if self.payload_b64.is_empty() {
            return Ok(None);
        }
        let bytes = b64("payload", &self.payload_b64)?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| AcmeError::Malformed(format!("payload is not JSON: {e}")))
    }

    /// The payload as `T` (a POST with a body).
    pub(crate) fn payload_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, AcmeError> {
        let value = self.payload()?.unwrap_or_else(|| serde_json::json!({}));
        serde_json::from_value(value).map_err(|e| AcmeError::Malformed(format!("payload: {e}")))
    }
}

impl Jwk {
    /// The RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order,
    /// base64url.
    pub(crate) fn thumbprint(&self) -> Result<String, AcmeError> {
        let need = |name: &str, v: &Option<String>| {
            v.clone().ok_or_else(|| AcmeError::BadPublicKey(format!("the JWK has no {name}")))
        };
        let canonical = match self.kty.as_str() {
            "EC" => serde_json::json!({
                "crv": need("crv", &self.crv)?, "kty": "EC",
                "x": need("x", &self.x)?, "y": need("y", &self.y)?,
            }),
            "RSA" => serde_json::json!({
                "e": need("e", &self.e)?, "kty": "RSA", "n": need("n", &self.n)?,
            }),
            "OKP" => serde_json::json!({
                "crv": need("crv", &self.crv)?, "kty": "OKP", "x": need("x", &self.x)?,
            }),
            other => return Err(AcmeError::BadPublicKey(format!("unsupported key type {other}"))),
        };
        // serde_json's maps are ordered by key, which is RFC 7638's order.
        Ok(encode(&Sha256::digest(canonical.to_string().as_bytes())))
    }

    /// The SubjectPublicKeyInfo-independent identity of a certificate's key, as the JWK it
    /// would be, for revocation by the certificate's key (RFC 8555 §7.6).
    pub(crate) fn from_spki(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Option<Jwk> {
        use x509_parser::public_key::PublicKey;
        let empty = Jwk { kty: String::new(), crv: None, x: None, y: None, n: None, e: None };
        match spki.parsed().ok()? {
            PublicKey::EC(point) => {
                let data = point.data();
                let (crv, len) = match data.len() {
                    65 => ("P-256", 32),
                    97 => ("P-384", 48),
                    _ => return None,
                };
                Some(Jwk {
                    kty: "EC".into(),
                    crv: Some(crv.into()),
                    x: Some(encode(&data[1..1 + len])),
                    y: Some(encode(&data[1 + len..])),
                    ..empty
                })
            }
            PublicKey::RSA(rsa) => {
                let strip = |b: &[u8]| {
                    let i = b.iter().position(|&x| x != 0).unwrap_or(b.len());
                    b[i..].to_vec()
                };
                Some(Jwk {
                    kty: "RSA".into(),
                    n: Some(encode(&strip(rsa.modulus))),
                    e: Some(encode(&strip(rsa.exponent))),
                    ..empty
                })
            }
            _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => Some(Jwk {
                kty: "OKP".into(),
                crv: Some("Ed25519".into()),
                x: Some(encode(&spki.subject_public_key.data)),
                ..empty
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    fn es256_jwk(pair: &EcdsaKeyPair) -> Jwk {
        let point = pair.public_key().as_ref();
        Jwk {
            kty: "EC".into(),
            crv: Some("P-256".into()),
            x: Some(encode(&point[1..33])),
            y: Some(encode(&point[33..])),
            n: None,
            e: None,
        }
    }

    fn sign(pair: &EcdsaKeyPair, header: serde_json::Value, payload: &str) -> Vec<u8> {
        let protected = encode(header.to_string().as_bytes());
        let payload = encode(payload.as_bytes());
        let sig =
            pair.sign(&SystemRandom::new(), format!("{protected}.{payload}").as_bytes()).unwrap();
        serde_json::json!({"protected": protected, "payload": payload, "signature": encode(sig.as_ref())})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn es256_signatures_verify_and_tampering_is_caught() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let jwk = es256_jwk(&pair);
        let header = serde_json::json!({"alg": "ES256", "nonce": "n", "url": "https://x/acme/new-account", "jwk": jwk});
        let body = sign(&pair, header.clone(), r#"{"termsOfServiceAgreed":true}"#);
        let jws = Jws::parse(&body).unwrap();
        jws.verify(&jwk).unwrap();
        assert_eq!(jws.payload().unwrap().unwrap()["termsOfServiceAgreed"], true);

        // Another key's signature, and a changed payload, fail.
        let other = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let other =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, other.as_ref()).unwrap();
        assert!(jws.verify(&es256_jwk(&other)).is_err());
        let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        v["payload"] = encode(b"{}").into();
        let tampered = Jws::parse(v.to_string().as_bytes()).unwrap();
        assert!(tampered.verify(&jwk).is_err());
        // The algorithm must suit the key.
        let rs = sign(&pair, serde_json::json!({"alg": "RS256", "url": "u", "jwk": jwk}), "");
        assert!(matches!(
            Jws::parse(&rs).unwrap().verify(&jwk),
            Err(AcmeError::BadSignatureAlgorithm(_))
        ));
        for bad in [
            serde_json::json!({"alg": "none", "url": "u", "jwk": jwk}),
            serde_json::json!({"alg": "ES256", "url": "u"}),
            serde_json::json!({"alg": "ES256", "url": "u", "jwk": jwk, "kid": "k"}),
            serde_json::json!({"alg": "ES256", "url": "u", "jwk": jwk, "crit": ["exp"], "exp": 1}),
            serde_json::json!({"alg": "ES256", "url": "u", "jwk": jwk, "b64": false}),
        ] {
            assert!(Jws::parse(&sign(&pair, bad, "")).is_err());
        }
        assert!(Jws::parse(b"{}").is_err());
        assert!(Jws::parse(b"not json").is_err());
    }

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 §3.1.
        let jwk = Jwk {
            kty: "RSA".into(),
            n: Some("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into()),
            e: Some("AQAB".into()),
            crv: None,
            x: None,
            y: None,
        };
        assert_eq!(jwk.thumbprint().unwrap(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }
}
