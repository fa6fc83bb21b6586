//! Certify: the internal CA, whose key never leaves the HSM, issues an X.509 certificate
//! for a managed public key or for a PKCS#10 request. The certificate becomes a
//! Certificate object (linked both ways with a managed public key) and is recorded with
//! the CA's other certificates.

use kmip::attributes::{find, names, Attribute};
use kmip::enums::{CertificateRequestType, LinkType, ObjectType};
use kmip::ops::certify;

use super::register::{register_public, Public};
use super::rekey::link;
use super::{OpCtx, Outcome};
use crate::ca::LeafSpec;
use crate::kmip_server::error::OpError;
use crate::store::CertificateRow;
use rcgen::PublicKeyData as _;

/// How long a certified key's certificate is valid.
const VALIDITY_DAYS: i64 = 365;

pub(crate) async fn handle(cx: &OpCtx<'_>, req: certify::Request) -> Result<Outcome, OpError> {
    let (spki, subject, public_id) = match req.certificate_request {
        Some((CertificateRequestType::PKCS_10, der)) => {
            // Parsing checks the request's signature: the requester holds the private key.
            let csr = rcgen::CertificateSigningRequestParams::from_der(&der.into())
                .map_err(|_| OpError::Invalid("the PKCS#10 request does not parse or verify"))?;
            let spki = csr.public_key.subject_public_key_info();
            let cn =
                csr.params.distinguished_name.get(&rcgen::DnType::CommonName).and_then(dn_text);
            (spki, cn, None)
        }
        Some(_) => return Err(OpError::Unsupported("Certify takes PKCS#10 certificate requests")),
        None => {
            let id = cx.target(req.unique_identifier)?;
            let row = cx.load(&id).await?;
            if row.object_type != i64::from(ObjectType::PUBLIC_KEY.0) {
                return Err(OpError::Invalid("Certify takes a public key"));
            }
            let spki = row.public_material.clone().ok_or_else(|| OpError::Destroyed(id.clone()))?;
            let stored = cx.state.store.attributes(&id).await?;
            let name =
                find(&stored, names::NAME).map(|a| crate::store::match_key(&a.name, &a.value));
            (spki, name, Some(id))
        }
    };
    let common_name = subject.unwrap_or_else(|| "KMIP certified key".to_owned());
    let not_after = time::OffsetDateTime::now_utc() + time::Duration::days(VALIDITY_DAYS);
    let spec = LeafSpec {
        common_name: common_name.clone(),
        dns_names: Vec::new(),
        ip_addresses: Vec::new(),
        uris: Vec::new(),
        server_auth: true,
        client_auth: true,
        revocation_pointers: true,
        not_after,
    };
    let key = rcgen::SubjectPublicKeyInfo::from_der(&spki)
        .map_err(|_| OpError::Invalid("the public key is not a valid SubjectPublicKeyInfo"))?;
    let ca = cx.state.ca.clone();
    let (issued, serial) =
        tokio::task::spawn_blocking(move || ca.current().issue_leaf(&spec, &key))
            .await
            .map_err(crate::hsm::HsmError::Join)??;
    let der = issued.cert_der.to_vec();
    let links: Vec<Attribute> =
        public_id.iter().map(|p| link(LinkType::PUBLIC_KEY_LINK, p)).collect();
    let cert_id = register_public(
        cx,
        ObjectType::CERTIFICATE,
        req.attributes,
        spki,
        Public::Certificate(der),
        links,
    )
    .await?;
    if let Some(public_id) = &public_id {
        let back = link(LinkType::CERTIFICATE_LINK, &cert_id);
        cx.state.store.add_attribute(public_id, &back, cx.now).await?;
    }
    cx.state
        .store
        .insert_certificate(&CertificateRow {
            serial,
            role: "kmip-certify".to_owned(),
            subject: format!("CN={common_name}"),
            not_before: cx.now,
            not_after: not_after.unix_timestamp(),
            lease_id: None,
            revoked_at: None,
            revocation_reason: None,
            pem: issued.cert_pem,
            issuer: issued.issuer,
        })
        .await?;
    Ok(Outcome::new(certify::response(&cert_id), Some(cert_id)))
}

/// The text of a distinguished-name value, for the common name.
fn dn_text(v: &rcgen::DnValue) -> Option<String> {
    match v {
        rcgen::DnValue::Utf8String(s) => Some(s.clone()),
        rcgen::DnValue::PrintableString(s) => Some(s.as_str().to_owned()),
        rcgen::DnValue::Ia5String(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}
