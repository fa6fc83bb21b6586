//! Principals and access decisions. A principal is the identity a request acts as: the
//! subject of the client's TLS certificate. Objects belong to the principal that created
//! them; nobody else may see or use them.

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

    /// Whether this principal may act on an object owned by `owner`.
    pub(crate) fn may_access(&self, owner: &str) -> bool {
        self.0 == owner
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
