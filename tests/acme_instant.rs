//! instant-acme (a real ACME client library, unmodified) against Strongroom: an account
//! bound with External Account Binding, the profiles the directory offers, an order under a
//! profile, renewal information (RFC 9773) and an order that `replaces` the certificate,
//! account key rollover, and revocation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Bytes;
use common::*;
use instant_acme::{
    Account, BodyWrapper, BytesResponse, CertificateIdentifier, ExternalAccountKey, HttpClient,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy, RevocationRequest,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::json;

/// instant-acme's HTTP client: each request over the tests' own HTTPS helper, trusting
/// `DATA/ca.crt` (instant-acme's default client would verify with the platform's roots).
struct TestHttp {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
}

impl HttpClient for TestHttp {
    fn request(
        &self,
        req: axum::http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let (addr, tls) = (self.addr, self.tls.clone());
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(axum::body::Body::new(body), usize::MAX)
                .await
                .map_err(|e| instant_acme::Error::Other(e.into()))?;
            let path = parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
            let headers: Vec<(String, String)> = parts
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
                .collect();
            let method = parts.method.to_string();
            let (status, headers, body) = tokio::task::spawn_blocking(move || {
                let headers: Vec<(&str, &str)> =
                    headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                https_full(addr, tls, &method, &path, &headers, &body)
            })
            .await
            .unwrap();
            let mut response = axum::http::Response::builder().status(status);
            for (k, v) in headers {
                response = response.header(k, v);
            }
            let (parts, ()) = response.body(()).unwrap().into_parts();
            Ok(BytesResponse { parts, body: Box::new(Bytes::from(body)) })
        })
    }
}

fn csr(name: &str) -> (Vec<u8>, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    (params.serialize_request(&key).unwrap().der().to_vec(), key)
}

/// Orders `name` under `profile` (possibly replacing a certificate) and returns the chain.
async fn obtain(
    account: &Account,
    name: &str,
    profile: &str,
    replaces: Option<CertificateIdentifier<'static>>,
) -> String {
    let identifiers = [Identifier::Dns(name.to_owned())];
    let mut new = NewOrder::new(&identifiers).profile(profile);
    if let Some(r) = replaces {
        new = new.replaces(r);
    }
    let mut order = account.new_order(&new).await.unwrap();
    // The names are pre-authorized by policy: the order is ready at once.
    assert_eq!(order.state().status, OrderStatus::Ready);
    let (csr, _key) = csr(name);
    order.finalize_csr(&csr).await.unwrap();
    order.poll_certificate(&RetryPolicy::default()).await.unwrap()
}

fn leaf(chain: &str) -> CertificateDer<'static> {
    CertificateDer::pem_slice_iter(chain.as_bytes()).next().unwrap().unwrap()
}

#[test]
fn instant_acme_eab_profiles_renewal_info_key_change_and_revocation() {
    let dir = temp_dir("strongroom-instant-acme");
    let config = dir.join("acme.toml");
    std::fs::write(
        &config,
        r#"[acme]
external_account_required = true
preauthorized = ["*.svc.internal"]

[acme.profiles.mtls]
description = "24-hour mTLS certificates"
validity = "24h"

[acme.profiles.server]
description = "TLS server certificates"
validity = "48h"
client_auth = false
"#,
    )
    .unwrap();
    let server = Server::start_with(&dir, &["--config", config.to_str().unwrap()]);
    let admin = Api::admin(&server);
    let eab = admin.ok("POST", "/v1/acme/eab", json!({"profiles": ["mtls", "server"]}));
    let eab_id = eab["data"]["id"].as_str().unwrap().to_owned();
    let hmac = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        eab["data"]["key"].as_str().unwrap(),
    )
    .unwrap();
    let directory = format!("https://127.0.0.1:{}/acme/directory", server.https.port());
    let http = || Box::new(TestHttp { addr: server.https, tls: tls_config(&dir, None) });

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let new_account = NewAccount {
            contact: &["mailto:ops@svc.internal"],
            terms_of_service_agreed: true,
            only_return_existing: false,
        };
        // Without the binding the server refuses; with it the account is created.
        let refused =
            Account::builder_with_http(http()).create(&new_account, directory.clone(), None).await;
        assert!(refused.is_err(), "an account without EAB");
        let (mut account, _) = Account::builder_with_http(http())
            .create(
                &new_account,
                directory.clone(),
                Some(&ExternalAccountKey::new(eab_id.clone(), &hmac)),
            )
            .await
            .unwrap();
        let listed = admin.ok("GET", "/v1/acme/eab", json!(null));
        assert!(listed["data"]["keys"][0]["bound_time"].is_string(), "{listed}");

        let mut profiles: Vec<(String, String)> =
            account.profiles().map(|p| (p.name.to_owned(), p.description.to_owned())).collect();
        profiles.sort();
        assert_eq!(
            profiles,
            [
                ("mtls".to_owned(), "24-hour mTLS certificates".to_owned()),
                ("server".to_owned(), "TLS server certificates".to_owned())
            ]
        );

        // An order under the `server` profile: 48 hours, server authentication only.
        let chain = obtain(&account, "web.svc.internal", "server", None).await;
        let first = leaf(&chain);
        let (_, cert) = x509_parser::parse_x509_certificate(&first).unwrap();
        let v = cert.validity();
        assert_eq!(v.not_after.timestamp() - v.not_before.timestamp(), 48 * 3600 + 300);
        let eku = cert.extended_key_usage().unwrap().unwrap().value.clone();
        assert!(eku.server_auth && !eku.client_auth);
        assert_eq!(CertificateDer::pem_slice_iter(chain.as_bytes()).count(), 2, "leaf + issuer");

        // Renewal information for it, and an order that replaces it.
        let id = CertificateIdentifier::try_from(&first).unwrap().into_owned();
        let (info, _retry_after) = account.renewal_info(&id).await.unwrap();
        let window = info.suggested_window;
        assert!(window.start < window.end);
        assert!(window.start.unix_timestamp() > v.not_before.timestamp());
        assert!(window.end.unix_timestamp() <= v.not_after.timestamp());
        let renewed = obtain(&account, "web.svc.internal", "server", Some(id.clone())).await;
        assert_ne!(leaf(&renewed), first);
        let twice = account
            .new_order(
                &NewOrder::new(&[Identifier::Dns("web.svc.internal".into())]).replaces(id.clone()),
            )
            .await;
        assert!(twice.is_err(), "a certificate is replaced once");

        // Key rollover: the account goes on with its new key, also when loaded afresh from
        // the credentials instant-acme returns.
        let credentials = account.update_key().await.unwrap();
        let account =
            Account::builder_with_http(http()).from_credentials(credentials).await.unwrap();
        let chain = obtain(&account, "api.svc.internal", "mtls", None).await;

        // Revocation by the account: the CRL then lists the serial.
        let cert = leaf(&chain);
        account.revoke(&RevocationRequest { certificate: &cert, reason: None }).await.unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&cert).unwrap();
        let serial = hex::encode(parsed.raw_serial());
        let looked = admin.ok("GET", &format!("/v1/pki/cert/{serial}"), json!(null));
        assert!(looked["data"]["revocation_time"].as_i64().unwrap() > 0, "{looked}");
    });
    server.stop();
}
