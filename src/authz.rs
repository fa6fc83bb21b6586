//! Principals: the identity a request acts as, the subject of the client's TLS
//! certificate. Objects belong to the principal that created them; others reach them only
//! as configured administrators or through grants (see `OpCtx::load`).

use std::fmt;

/// An authenticated identity (the client certificate's subject, such as `CN=payments`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Principal(String);

impl Principal {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The principal named by a DER client certificate: its subject.
    pub(crate) fn from_certificate(der: &[u8]) -> Option<Principal> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        Some(Principal(cert.subject().to_string()))
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
