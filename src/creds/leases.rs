//! Leases: creation, renewal (bounded by the maximum TTL), revocation by id or prefix, and
//! the reaper that revokes expired leases, retrying with backoff while an engine's target
//! is unreachable.

use tokio::sync::watch;

use super::database::LeaseData;
use super::{Creds, CredsError, Holder};
use crate::store::{lease_state, AuditEvent, LeaseRow};

/// Longest wait between revocation retries (seconds).
const MAX_BACKOFF: i64 = 300;
/// Leases handled per reaper pass.
const REAP_BATCH: i64 = 100;
/// How long a worker holds a claimed lease before another may retry it (seconds).
const CLAIM_SECS: i64 = 120;
/// Longest an expired lease's revocation may take (a database that hangs on a lock, or
/// a connection gone silent) before it is left for a retry.
const REVOKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub(super) fn backoff(attempts: i64) -> i64 {
    1i64.checked_shl(u32::try_from(attempts.clamp(0, 16)).unwrap_or(16))
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

impl Creds {
    /// Stores a new active lease under `path` (its id is `path/` and a random suffix),
    /// ending no later than its holder's token (see [`Holder`]).
    pub(super) async fn new_lease(
        &self,
        path: &str,
        kind: &str,
        data: &str,
        ttl: i64,
        max_ttl: i64,
        holder: Holder<'_>,
    ) -> Result<LeaseRow, CredsError> {
        let now = crate::util::now();
        let (ttl, max_ttl) = (holder.cap(now, ttl), holder.cap(now, max_ttl));
        if ttl <= 0 {
            // It expired while the request was served.
            return Err(CredsError::Invalid("the token has expired".into()));
        }
        let lease = LeaseRow {
            id: format!("{path}/{}", super::password::random_lower_alnum(24)),
            kind: kind.to_owned(),
            data: data.to_owned(),
            issued_at: now,
            expires_at: now.saturating_add(ttl),
            max_expires_at: now.saturating_add(max_ttl),
            renewable: true,
            state: lease_state::ACTIVE.to_owned(),
            attempts: 0,
            next_attempt_at: now.saturating_add(ttl),
            last_error: None,
            revoked_at: None,
            issued_to: holder.identity.to_owned(),
        };
        self.store.insert_lease(&lease).await?;
        Ok(lease)
    }

    pub(crate) async fn lease(&self, id: &str) -> Result<LeaseRow, CredsError> {
        self.store.lease(id).await?.ok_or_else(|| CredsError::NoLease(id.to_owned()))
    }

    /// Leases whose id starts with `prefix` (all states).
    pub(crate) async fn leases(&self, prefix: &str) -> Result<Vec<LeaseRow>, CredsError> {
        Ok(self.store.leases_with_prefix(prefix, false).await?)
    }

    /// Extends an active lease by `increment` seconds from now (default: its original
    /// TTL), never past its maximum.
    pub(crate) async fn renew(
        &self,
        id: &str,
        increment: Option<i64>,
    ) -> Result<LeaseRow, CredsError> {
        let now = crate::util::now();
        let lease = self.lease(id).await?;
        if lease.state != lease_state::ACTIVE || lease.expires_at <= now || !lease.renewable {
            return Err(CredsError::NoLease(id.to_owned()));
        }
        // As in Vault, a database lease renews by its role's default TTL, and no further
        // than its role's maximum now allows (which may have been lowered since).
        let database = match lease.kind.as_str() {
            "database" => {
                let data: LeaseData = lease_data(&lease)?;
                match self.role(&data.role).await {
                    Ok(role) => Some((data, Some(role))),
                    Err(CredsError::NotFound { .. }) => Some((data, None)),
                    Err(e) => return Err(e),
                }
            }
            _ => None,
        };
        let (default_ttl, max_ttl) = match database.as_ref().and_then(|(_, r)| r.as_ref()) {
            Some(r) => (r.default_ttl, r.max_ttl),
            None => (0, 0),
        };
        let increment = match increment {
            Some(i) if i > 0 => i,
            Some(_) => return Err(CredsError::Invalid("increment must be positive".into())),
            None if default_ttl > 0 => default_ttl,
            None => lease.expires_at - lease.issued_at,
        };
        let mut until = now.saturating_add(increment).min(lease.max_expires_at);
        if max_ttl > 0 {
            until = until.min(lease.issued_at.saturating_add(max_ttl));
        }
        if until <= now {
            return Err(CredsError::Invalid(
                "the lease has reached its role's max_ttl; it is revoked when it expires".into(),
            ));
        }
        if let Some((data, _)) = &database {
            if let Err(e) = self.renew_db_user(data, until).await {
                // The reaper may have taken the lease (and dropped the user) meanwhile.
                let now = self.lease(id).await?;
                if now.state != lease_state::ACTIVE || now.next_attempt_at != now.expires_at {
                    return Err(CredsError::NoLease(id.to_owned()));
                }
                return Err(e);
            }
        }
        if !self.store.renew_lease(id, now, until).await? {
            return Err(CredsError::NoLease(id.to_owned()));
        }
        self.lease(id).await
    }

    /// Revokes a lease now. If its engine cannot remove the credential, the lease stays
    /// due and the reaper retries; the error says so.
    pub(crate) async fn revoke(&self, id: &str) -> Result<(), CredsError> {
        let lease = self.lease(id).await?;
        if lease.state == lease_state::REVOKED {
            return Ok(());
        }
        let now = crate::util::now();
        // Marked first (its next attempt moved off its expiry), so that an issuance still
        // making this lease's user sees that a revocation may have missed it.
        let mark = if now + CLAIM_SECS == lease.expires_at {
            now + CLAIM_SECS + 1
        } else {
            now + CLAIM_SECS
        };
        self.store.mark_lease_revoking(id, mark).await?;
        match self.revoke_credential(&lease).await {
            Ok(()) => {
                self.store.mark_lease_revoked(id, now).await?;
                Ok(())
            }
            Err(e) => {
                self.store
                    .mark_lease_failed(id, &e.to_string(), now + backoff(lease.attempts))
                    .await?;
                Err(e)
            }
        }
    }

    /// Revokes every unrevoked lease under `prefix`; returns how many were revoked and the
    /// failures (left for the reaper).
    pub(crate) async fn revoke_prefix(
        &self,
        prefix: &str,
    ) -> Result<(usize, Vec<(String, CredsError)>), CredsError> {
        let leases = self.store.leases_with_prefix(prefix, true).await?;
        self.revoke_all(leases).await
    }

    /// Revokes every unrevoked lease issued to `identity` (a revoked token's); returns
    /// how many were revoked and the failures (left for the reaper).
    pub(crate) async fn revoke_issued_to(
        &self,
        identity: &str,
    ) -> Result<(usize, Vec<(String, CredsError)>), CredsError> {
        let leases = self.store.leases_issued_to(identity).await?;
        self.revoke_all(leases).await
    }

    async fn revoke_all(
        &self,
        leases: Vec<LeaseRow>,
    ) -> Result<(usize, Vec<(String, CredsError)>), CredsError> {
        let mut done = 0;
        let mut failed = Vec::new();
        for lease in leases {
            match self.revoke(&lease.id).await {
                Ok(()) => done += 1,
                Err(e) => failed.push((lease.id, e)),
            }
        }
        Ok((done, failed))
    }

    /// Removes what the lease gave out, through its engine.
    async fn revoke_credential(&self, lease: &LeaseRow) -> Result<(), CredsError> {
        match lease.kind.as_str() {
            "database" => self.revoke_db_user(&lease_data::<LeaseData>(lease)?).await,
            "pki" => self.revoke_leased_certificate(lease).await,
            other => Err(CredsError::Invalid(format!("lease of unknown kind {other:?}"))),
        }
    }

    /// One reaper pass: tries to revoke up to a batch of leases due at `now`. Returns how
    /// many it took (a full batch means more may be waiting).
    pub(crate) async fn reap(&self, now: i64) -> Result<usize, CredsError> {
        let due = self.store.due_leases(now, REAP_BATCH).await?;
        let taken = due.len();
        // Databases that did not answer in this pass: their other leases wait for the next
        // try rather than each waiting out the same timeout.
        let mut down: std::collections::HashMap<String, String> = Default::default();
        for lease in due {
            // Another worker (or replica) may have taken it meanwhile.
            if !self.store.claim_lease(&lease.id, lease.next_attempt_at, now + CLAIM_SECS).await? {
                continue;
            }
            let target = lease_data::<LeaseData>(&lease).ok().map(|d| d.db_name);
            let known_down = target.as_ref().and_then(|t| down.get(t)).cloned();
            let result = match known_down {
                Some(why) => Err(CredsError::Unreachable(why)),
                None => tokio::time::timeout(REVOKE_TIMEOUT, self.revoke_credential(&lease))
                    .await
                    .unwrap_or_else(|_| {
                        Err(CredsError::Unreachable(format!(
                            "no answer within {} s",
                            REVOKE_TIMEOUT.as_secs()
                        )))
                    }),
            };
            if let (Err(CredsError::Unreachable(why)), Some(t)) = (&result, target) {
                down.entry(t).or_insert_with(|| why.clone());
            }
            let (outcome, detail) = match result {
                Ok(()) => {
                    self.store.mark_lease_revoked(&lease.id, now).await?;
                    ("ok", "lease expired; credential revoked".to_owned())
                }
                Err(e) => {
                    let retry = now + backoff(lease.attempts);
                    self.store.mark_lease_failed(&lease.id, &e.to_string(), retry).await?;
                    tracing::warn!(lease = %lease.id, error = %e, "revoking an expired lease failed; will retry");
                    ("error", format!("revocation failed (attempt {}): {e}", lease.attempts + 1))
                }
            };
            let why = "lease expiry";
            self.audit_revocation(why, "lease", &lease.id, outcome, detail, now).await;
        }
        Ok(taken)
    }
}

impl Creds {
    /// Finishes what a token revocation left undone (a store failure half-way, a child
    /// token or lease made while it ran): revokes the tokens of revoked creators, then the
    /// active leases issued to revoked tokens. Failed lease revocations go to the reaper's
    /// retries.
    pub(crate) async fn sweep_revoked_tokens(&self, now: i64) -> Result<(), CredsError> {
        for accessor in self.store.revoke_orphaned_tokens(now).await? {
            let detail = "its creator token was revoked".to_owned();
            let id = format!("token:{accessor}");
            self.audit_revocation("token revoked", "api", &id, "ok", detail, now).await;
        }
        for lease in self.store.leases_of_revoked_tokens(REAP_BATCH).await? {
            let (outcome, detail) = match self.revoke(&lease.id).await {
                Ok(()) => ("ok", "its token was revoked; credential revoked".to_owned()),
                Err(e) => ("error", format!("its token was revoked; revocation failed: {e}")),
            };
            self.audit_revocation("token revoked", "lease", &lease.id, outcome, detail, now).await;
        }
        Ok(())
    }

    /// Audits a revocation the service made on its own, `why` naming the cause.
    async fn audit_revocation(
        &self,
        why: &str,
        protocol: &'static str,
        id: &str,
        outcome: &str,
        detail: String,
        at: i64,
    ) {
        self.store
            .audit(AuditEvent {
                at,
                principal: format!("strongroom ({why})"),
                protocol,
                operation: "revoke".to_owned(),
                object_id: Some(id.to_owned()),
                outcome: outcome.to_owned(),
                detail: Some(detail),
            })
            .await;
    }
}

/// What an engine stored in a lease to revoke or renew it.
pub(super) fn lease_data<T: serde::de::DeserializeOwned>(
    lease: &LeaseRow,
) -> Result<T, CredsError> {
    serde_json::from_str(&lease.data).map_err(|source| CredsError::Corrupt {
        kind: "lease",
        name: lease.id.clone(),
        source,
    })
}

/// Revokes expired leases and rotates static roles every second until `stop`; the first
/// pass at start also catches what expired while the service was down.
pub(crate) async fn run_reaper(creds: Creds, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if !creds.store.is_leader() {
                    continue;
                }
                let now = crate::util::now();
                ticks += 1;
                if ticks.is_multiple_of(10) {
                    if let Err(e) = creds.sweep_revoked_tokens(now).await {
                        tracing::warn!(error = %e, "revoking what revoked tokens left failed");
                    }
                }
                // A full batch: more are due; go on without waiting for the next tick.
                loop {
                    match creds.reap(now).await {
                        Ok(n) if n == usize::try_from(REAP_BATCH).unwrap_or(0) => continue,
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "lease reaper pass failed");
                            break;
                        }
                    }
                }
                if let Err(e) = creds.rotate_due_static_roles(now).await {
                    tracing::warn!(error = %e, "static role rotation pass failed");
                }
            }
            _ = stop.changed() => break,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(super::backoff(0), 1);
        assert_eq!(super::backoff(3), 8);
        assert_eq!(super::backoff(20), super::MAX_BACKOFF);
    }
}
