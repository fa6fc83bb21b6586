//! Certify: the internal CA, whose key never leaves the HSM, issues an X.509 certificate
//! for a managed public key or for a PKCS#10 request. The certificate becomes a
//! Certificate object (linked both ways with a managed public key) and is recorded with
//! the CA's other certificates.

use kmip::attributes::{find, names, Attribute};
use kmip::enums::{CertificateRequestType, LinkType, ObjectType, State};
use kmip::ops::{certify, recertify};

use super::register::{public_object, register_public, Public};
use super::rekey::{self, link};
use super::{effective_state, OpCtx, Outcome};
use crate::ca::LeafSpec;
use crate::kmip_server::error::OpError;
use crate::store::CertificateRow;

/// How long a certified key's certificate is valid.
const VALIDITY_DAYS: i64 = 365;

pub(crate) async fn handle(cx: &OpCtx<'_>, req: certify::Request) -> Result<Outcome, OpError> {
    let (spki, subject, public_id) = match from_request(req.certificate_request)? {
        Some((spki, cn)) => (spki, cn, None),
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
    let issued = issue(cx, &spki, subject).await?;
    // On record as soon as it exists: whatever fails after, the CA can revoke it (by serial).
    cx.state.store.insert_certificate(&issued.record).await?;
    let serial = issued.record.serial.clone();
    let stored = async {
        let links: Vec<Attribute> =
            public_id.iter().map(|p| link(LinkType::PUBLIC_KEY_LINK, p)).collect();
        let cert_id = register_public(
            cx,
            ObjectType::CERTIFICATE,
            req.attributes,
            spki,
            Public::Certificate(issued.der),
            links,
        )
        .await?;
        if let Some(public_id) = &public_id {
            let back = link(LinkType::CERTIFICATE_LINK, &cert_id);
            cx.state.store.add_attribute(public_id, &back, cx.now).await?;
        }
        cx.state.store.set_certified_object(&serial, &cert_id).await?;
        Ok(cert_id)
    }
    .await;
    let cert_id = match stored {
        Ok(id) => id,
        Err(e) => return Err(superseded(cx, &serial, e).await),
    };
    Ok(Outcome::new(certify::response(&cert_id), Some(cert_id)))
}

/// A certificate issued for a Certify that then failed: nobody received it, so the CA
/// revokes it (superseded) rather than leave a valid certificate unaccounted for. Returns
/// the failure.
async fn superseded(cx: &OpCtx<'_>, serial: &str, e: OpError) -> OpError {
    if let Err(e) = cx.state.store.revoke_certificate(serial, 4, cx.now).await {
        tracing::error!(error = %e, serial, "revoking a certificate nobody received failed");
    }
    e
}

/// A certificate the internal CA issued, and its record among the CA's certificates.
struct Issued {
    der: Vec<u8>,
    record: CertificateRow,
}

/// Issues a certificate for the SubjectPublicKeyInfo `spki` from the default issuer (its
/// key in the HSM), for a year, with `common_name` as the subject's.
///
/// The same CA authenticates clients, whose identity is their certificate's subject, so
/// the certificate is good for client authentication only when that identity is the
/// caller's own (or the caller is an admin): Certify must not mint a login for another.
/// Nor a server's: TLS clients that read a host name from the common name would take one
/// for any host its caller names, so server authentication is for admins only.
async fn issue(
    cx: &OpCtx<'_>,
    spki: &[u8],
    common_name: Option<String>,
) -> Result<Issued, OpError> {
    let common_name = common_name.unwrap_or_else(|| "KMIP certified key".to_owned());
    let subject = format!("CN={common_name}");
    let not_after = time::OffsetDateTime::now_utc() + time::Duration::days(VALIDITY_DAYS);
    let spec = LeafSpec {
        common_name: common_name.clone(),
        dns_names: Vec::new(),
        ip_addresses: Vec::new(),
        uris: Vec::new(),
        server_auth: cx.is_admin(),
        client_auth: cx.is_admin() || subject == cx.principal.as_str(),
        revocation_pointers: true,
        not_after,
    };
    let key = rcgen::SubjectPublicKeyInfo::from_der(spki)
        .map_err(|_| OpError::Invalid("the public key is not a valid SubjectPublicKeyInfo"))?;
    let ca = cx.state.ca.current();
    let (issued, serial) = crate::ca::run_signing(ca, move |ca| ca.issue_leaf(&spec, &key))
        .await
        .map_err(crate::hsm::HsmError::Join)??;
    let record = CertificateRow {
        serial,
        role: "kmip-certify".to_owned(),
        subject,
        not_before: cx.now,
        not_after: issued.not_after.unix_timestamp(),
        lease_id: None,
        revoked_at: None,
        revocation_reason: None,
        pem: issued.cert_pem,
        issuer: issued.issuer,
        kmip_object: None,
    };
    Ok(Issued { der: issued.cert_der.to_vec(), record })
}

/// A key to certify: its SubjectPublicKeyInfo and the subject's common name.
type KeyAndName = (Vec<u8>, Option<String>);

/// The public key and subject common name of a PKCS#10 request, once its signature checks
/// out (the requester holds the private key).
fn from_request(
    request: Option<(CertificateRequestType, Vec<u8>)>,
) -> Result<Option<KeyAndName>, OpError> {
    match request {
        Some((CertificateRequestType::PKCS_10, der)) => {
            let csr = rcgen::CertificateSigningRequestParams::from_der(&der.clone().into())
                .map_err(|_| OpError::Invalid("the PKCS#10 request does not parse or verify"))?;
            // As the request carries it (rcgen's rebuilt key may name another curve).
            let spki = crate::ca::csr_spki(&der).map_err(OpError::Invalid)?;
            let cn =
                csr.params.distinguished_name.get(&rcgen::DnType::CommonName).and_then(dn_text);
            Ok(Some((spki, cn)))
        }
        Some(_) => Err(OpError::Unsupported("Certify takes PKCS#10 certificate requests")),
        None => Ok(None),
    }
}

/// Re-certify (KMIP 1.4 §4.8): a new certificate from the internal CA for the key of an
/// existing certificate (or of a PKCS#10 request), which takes over its attributes and
/// names with dates shifted by the Offset; the two certificates link to each other, and
/// the public key's Certificate Link moves to the new one.
pub(crate) async fn recertify(cx: &OpCtx<'_>, req: recertify::Request) -> Result<Outcome, OpError> {
    let old_id = cx.target(req.certify.unique_identifier)?;
    let old = cx.load(&old_id).await?;
    if old.object_type != i64::from(ObjectType::CERTIFICATE.0) {
        return Err(OpError::Invalid("Re-certify names an existing certificate"));
    }
    if matches!(effective_state(&old, cx.now), State::DESTROYED | State::DESTROYED_COMPROMISED) {
        return Err(OpError::Destroyed(old_id));
    }
    let der = old.public_material.clone().ok_or_else(|| OpError::Destroyed(old_id.clone()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|_| OpError::Invalid("the existing certificate does not parse"))?;
    let cn = cert.subject().iter_common_name().next().and_then(|c| c.as_str().ok());
    let (spki, subject) = match from_request(req.certify.certificate_request)? {
        Some(from_csr) => from_csr,
        None => (cert.public_key().raw.to_vec(), cn.map(str::to_owned)),
    };
    let stored = cx.state.store.attributes(&old_id).await?;
    let rotation = rekey::rotation_attributes(&stored, cx.now);
    // The managed public key stays linked only if the new certificate is for it.
    let same_key = spki == cert.public_key().raw;
    let public_key =
        super::key_pair::linked(&stored, LinkType::PUBLIC_KEY_LINK).filter(|_| same_key);
    // What a new certificate gets anew (its type, length, digest, ...) is not copied.
    let stored = stored.into_iter().filter(|a| !super::is_server_managed(&a.name)).collect();
    let attrs =
        rekey::replacement_attributes(cx, &old, stored, req.certify.attributes, req.offset)?;
    let mut issued = issue(cx, &spki, subject).await?;
    let mut server_attrs: Vec<Attribute> =
        public_key.iter().map(|p| link(LinkType::PUBLIC_KEY_LINK, p)).collect();
    server_attrs.push(link(LinkType::REPLACED_OBJECT_LINK, &old_id));
    let (new_rotation, old_replaced) = rotation;
    server_attrs.extend(new_rotation);
    let (row, attributes) = public_object(
        cx,
        ObjectType::CERTIFICATE,
        attrs,
        spki,
        Public::Certificate(issued.der),
        server_attrs,
    )?;
    // The old certificate's owner's, as a Re-key's new key (see rekey::handle).
    let row = crate::store::ObjectRow { owner: old.owner.clone(), ..row };
    let new_id = row.id.clone();
    // On record before the object is stored (see `handle`), naming it.
    issued.record.kmip_object = Some(new_id.clone());
    cx.state.store.insert_certificate(&issued.record).await?;
    let serial = issued.record.serial.clone();
    if let Err(e) = rekey::store_replacement(cx, &old, &row, &attributes, &old_replaced).await {
        return Err(superseded(cx, &serial, e).await);
    }
    // The public key's Certificate Link names the new certificate (KMIP 1.4 §4.8).
    if let Some(public_id) = public_key {
        let to_old = link(LinkType::CERTIFICATE_LINK, &old_id).value;
        let to_new = link(LinkType::CERTIFICATE_LINK, &new_id).value;
        for a in cx.state.store.attributes(&public_id).await? {
            if a.name == "Link" && a.value == to_old {
                let idx = i64::from(a.index.unwrap_or(0));
                cx.state.store.modify_attribute(&public_id, "Link", idx, &to_new, cx.now).await?;
            }
        }
    }
    Ok(Outcome::new(recertify::response(&new_id), Some(new_id)))
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
