//! Principals: the identity a request acts as, the subject of the client's TLS
//! certificate. Objects belong to the principal that created them; others reach them only
//! as configured administrators or through grants (see `OpCtx::load`).

use std::fmt;

/// An authenticated identity (the client certificate's subject, such as `CN=payments`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Principal(String);

impl Principal {
    /// A principal by name (for identities mapped from request credentials).
    pub(crate) fn named(name: &str) -> Principal {
        Principal(name.to_owned())
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The principal a client certificate (DER) names, if it may connect: not when this CA
/// revoked it (through the API, ACME or KMIP Revoke), nor when the store cannot say (fail
/// closed); a refusal is audited. Certificates the store does not know (those of ACME
/// profiles with `store = false`, or from before `strongroom client-cert` recorded its
/// own) pass: the TLS layer already checked their chain.
pub(crate) async fn connecting_principal(
    store: &crate::store::Store,
    ca: &crate::ca::Ca,
    der: &[u8],
    listener: &'static str,
) -> Option<Principal> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        tracing::info!(listener, "client certificate does not parse");
        return None;
    };
    let principal = Principal(cert.subject().to_string());
    let serial = hex::encode(cert.raw_serial());
    // A resumed TLS session skips the verifier: its expiry and issuer are checked here too.
    let refused = if !cert.validity().is_valid() {
        "the certificate has expired or is not valid yet"
    } else if authority_key_id(&cert).is_some_and(|k| ca.revoked_key_id(&k)) {
        "its issuing intermediate is revoked"
    } else {
        match store.certificate(&serial).await {
            Ok(Some(c)) if c.revoked_at.is_some() => "the certificate is revoked",
            Ok(_) => return Some(principal),
            Err(e) => {
                tracing::warn!(error = %e, "client certificate revocation check failed");
                "its revocation could not be checked"
            }
        }
    };
    tracing::info!(serial = %serial, listener, "client certificate refused: {refused}");
    store
        .audit(crate::store::AuditEvent {
            at: crate::util::now(),
            principal: principal.0,
            protocol: listener,
            operation: "connect".to_owned(),
            object_id: None,
            outcome: "denied".to_owned(),
            detail: Some(format!("client certificate {serial}: {refused}")),
        })
        .await;
    None
}

/// A certificate's Authority Key Identifier: which of the CA's keys signed it.
pub(crate) fn authority_key_id(
    cert: &x509_parser::certificate::X509Certificate<'_>,
) -> Option<Vec<u8>> {
    cert.extensions().iter().find_map(|e| match e.parsed_extension() {
        x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
            a.key_identifier.as_ref().map(|k| k.0.to_vec())
        }
        _ => None,
    })
}

/// Username/password credentials from the configuration: the SHA-256 of each password and
/// the identity it maps to. Passwords themselves are not kept. After a few wrong passwords
/// for a username, it is refused outright for a while (doubling, up to a minute), so the
/// password cannot be guessed at line speed.
#[derive(Default)]
pub(crate) struct Credentials {
    known: std::collections::HashMap<String, ([u8; 32], Principal)>,
    failures: std::sync::Mutex<Failures>,
}

/// Streaks of wrong passwords. Per connecting identity (the client certificate's subject)
/// and username, so that one certificate's holder cannot lock another out of a username
/// by guessing; and per username across all identities, with more tries, so that many
/// certificates do not make many guessers.
#[derive(Default)]
struct Failures {
    by_peer: std::collections::HashMap<(String, String), Streak>,
    by_username: std::collections::HashMap<String, Streak>,
}

/// Wrong passwords in a row, when the last was, and when the next try is heard.
#[derive(Clone, Copy)]
struct Streak {
    wrong: u32,
    last: std::time::Instant,
    next: std::time::Instant,
}

impl Streak {
    fn new(now: std::time::Instant) -> Streak {
        Streak { wrong: 0, last: now, next: now }
    }

    /// Whether it has ended: no hold now, and no wrong password for a while.
    fn is_over(&self, now: std::time::Instant) -> bool {
        self.next <= now && self.last + MAX_HOLD <= now
    }

    /// Counts one more wrong password; past `free` of them, holds off (doubling).
    fn wrong(&mut self, now: std::time::Instant, free: u32) {
        if self.is_over(now) {
            *self = Streak::new(now);
        }
        self.wrong += 1;
        self.last = now;
        if self.wrong >= free {
            let hold = std::time::Duration::from_secs(1 << (self.wrong - free).min(6));
            self.next = now + hold.min(MAX_HOLD);
        }
    }
}

/// Wrong passwords one identity may send for a username in a row before it is held off.
const FREE_TRIES: u32 = 5;
/// Wrong passwords for a username from all identities together before it is held off.
const FREE_TRIES_ALL: u32 = 50;
/// The longest a username is held off.
const MAX_HOLD: std::time::Duration = std::time::Duration::from_secs(60);
/// Identity and username pairs whose streaks are remembered at once, at most.
const MAX_TRACKED: usize = 10_000;

/// Why a credential was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// No such username, or the wrong password.
    Wrong,
    /// Too many wrong passwords lately: not checked.
    HeldOff,
}

fn sha256(s: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(s.as_bytes()).into()
}

impl Credentials {
    pub(crate) fn insert(&mut self, username: &str, password: &str, identity: &str) {
        self.known.insert(username.to_owned(), (sha256(password), Principal::named(identity)));
    }

    /// The identity for a username and password sent by `peer` (the connection's own
    /// identity), if they match a configured credential.
    pub(crate) fn check(
        &self,
        peer: &Principal,
        username: &str,
        password: Option<&str>,
    ) -> Result<&Principal, Refused> {
        let (digest, principal) = self.known.get(username).ok_or(Refused::Wrong)?;
        let now = std::time::Instant::now();
        let mut f = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (peer.as_str().to_owned(), username.to_owned());
        let held = |s: Option<&Streak>| s.is_some_and(|s| s.next > now);
        if held(f.by_peer.get(&key)) || held(f.by_username.get(username)) {
            return Err(Refused::HeldOff);
        }
        let given = sha256(password.unwrap_or_default());
        // Compare without an early exit, so timing does not reveal how much matched.
        let diff = digest.iter().zip(given.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 && password.is_some() {
            f.by_peer.remove(&key);
            return Ok(principal);
        }
        f.by_username
            .entry(username.to_owned())
            .or_insert(Streak::new(now))
            .wrong(now, FREE_TRIES_ALL);
        if f.by_peer.len() >= MAX_TRACKED {
            f.by_peer.retain(|_, s| !s.is_over(now));
        }
        // When still full, this identity's streak is not kept: the username's is.
        if f.by_peer.len() < MAX_TRACKED || f.by_peer.contains_key(&key) {
            f.by_peer.entry(key).or_insert(Streak::new(now)).wrong(now, FREE_TRIES);
        }
        Err(Refused::Wrong)
    }
}

/// Name of the built-in policy that allows everything.
pub(crate) const ROOT_POLICY: &str = "root";
/// Name of the built-in policy every token and identity has.
pub(crate) const DEFAULT_POLICY: &str = "default";

/// The digest under which a token is stored.
pub(crate) fn token_hash(token: &str) -> [u8; 32] {
    sha256(token)
}

/// Creates an API token with `policies`, valid for `ttl` seconds (None: no expiry). Returns
/// the token (shown once, never stored) and its stored row.
pub(crate) async fn mint_token(
    store: &crate::store::Store,
    display_name: &str,
    policies: &[String],
    ttl: Option<i64>,
    created_by: &str,
) -> Result<(String, crate::store::TokenRow), crate::store::StoreError> {
    let alphabet: Vec<char> =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".chars().collect();
    let token = format!("sr.{}", crate::creds::password::random_string(&alphabet, 40));
    let now = crate::util::now();
    let row = crate::store::TokenRow {
        accessor: crate::creds::password::random_lower_alnum(24),
        display_name: display_name.to_owned(),
        policies: serde_json::to_string(policies).unwrap_or_else(|_| "[]".into()),
        created_at: now,
        expires_at: ttl.map(|t| now + t),
        created_by: created_by.to_owned(),
        revoked_at: None,
    };
    store.insert_token(&row, &token_hash(&token)).await?;
    Ok((token, row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_match_only_with_the_right_password() {
        let mut c = Credentials::default();
        c.insert("fortigate", "s3cret", "CN=fortigate");
        let peer = Principal::named("CN=box");
        let check = |u, p| c.check(&peer, u, p);
        assert_eq!(check("fortigate", Some("s3cret")).map(Principal::as_str), Ok("CN=fortigate"));
        assert_eq!(check("fortigate", Some("wrong")), Err(Refused::Wrong));
        assert_eq!(check("fortigate", None), Err(Refused::Wrong));
        assert_eq!(check("someone", Some("s3cret")), Err(Refused::Wrong));
    }

    #[test]
    fn wrong_passwords_in_a_row_hold_a_username_off() {
        let mut c = Credentials::default();
        c.insert("netapp", "s3cret", "CN=netapp");
        c.insert("other", "pw", "CN=other");
        let (guesser, owner) = (Principal::named("CN=guesser"), Principal::named("CN=owner"));
        for _ in 0..FREE_TRIES {
            assert_eq!(c.check(&guesser, "netapp", Some("guess")), Err(Refused::Wrong));
        }
        // Held off: even the right password is not checked now.
        assert_eq!(c.check(&guesser, "netapp", Some("s3cret")), Err(Refused::HeldOff));
        assert!(c.check(&guesser, "other", Some("pw")).is_ok(), "other usernames are not");
        // Nor is the username for other certificates: guessing cannot lock its owner out.
        assert!(c.check(&owner, "netapp", Some("s3cret")).is_ok());
        // Many certificates guessing together hold the username off for all of them.
        for i in 0..FREE_TRIES_ALL {
            let guesser = Principal::named(&format!("CN=guesser-{i}"));
            let _ = c.check(&guesser, "other", Some("guess"));
        }
        assert_eq!(c.check(&owner, "other", Some("pw")), Err(Refused::HeldOff));
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert!(c.check(&guesser, "netapp", Some("s3cret")).is_ok());
        let fresh = c.check(&guesser, "netapp", Some("guess"));
        assert_eq!(fresh, Err(Refused::Wrong), "a fresh start");
    }
}
