//! The Credential structure of a request's Authentication (KMIP 1.4 §2.1.2, KMIP 2.1
//! §2.1.2), as devices such as FortiGate and NetApp send it.

use crate::enums::CredentialType;
use crate::tag::Tag;
use crate::ttlv::{FieldError, Ttlv, Value};

/// A Username and Password credential (the only type read here).
#[derive(Clone, PartialEq, Eq)]
pub struct UsernamePassword {
    /// Username.
    pub username: String,
    /// Password, when sent.
    pub password: Option<String>,
}

// Passwords never appear in logs.
impl std::fmt::Debug for UsernamePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsernamePassword").field("username", &self.username).finish_non_exhaustive()
    }
}

/// Reads the first Credential of an Authentication structure. `Ok(None)` when it is of a
/// type other than Username and Password.
pub fn username_password(authentication: &Ttlv) -> Result<Option<UsernamePassword>, FieldError> {
    let credential = authentication.require(Tag::CREDENTIAL)?;
    let kind = CredentialType(credential.require(Tag::CREDENTIAL_TYPE)?.as_enum()?);
    if kind != CredentialType::USERNAME_AND_PASSWORD {
        return Ok(None);
    }
    let value = credential.require(Tag::CREDENTIAL_VALUE)?;
    Ok(Some(UsernamePassword {
        username: value.require(Tag::USERNAME)?.as_text()?.to_owned(),
        password: value.find(Tag::PASSWORD).map(|p| p.as_text().map(str::to_owned)).transpose()?,
    }))
}

/// Encodes an Authentication structure with a Username and Password credential.
pub fn authentication(username: &str, password: &str) -> Ttlv {
    Ttlv::structure(
        Tag::AUTHENTICATION,
        vec![Ttlv::structure(
            Tag::CREDENTIAL,
            vec![
                Ttlv::new(
                    Tag::CREDENTIAL_TYPE,
                    Value::Enumeration(CredentialType::USERNAME_AND_PASSWORD.0),
                ),
                Ttlv::structure(
                    Tag::CREDENTIAL_VALUE,
                    vec![
                        Ttlv::new(Tag::USERNAME, Value::TextString(username.to_owned())),
                        Ttlv::new(Tag::PASSWORD, Value::TextString(password.to_owned())),
                    ],
                ),
            ],
        )],
    )
}
