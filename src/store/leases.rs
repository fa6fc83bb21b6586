//! Leases on dynamic credentials, and the certificates issued under them.

use super::sql::{insert_rows, Batch, Row};
use super::{Store, StoreError};

/// A lease: what it covers, until when, and how its revocation is going.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct LeaseRow {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) data: String,
    pub(crate) issued_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) max_expires_at: i64,
    #[sqlx(try_from = "super::Flag")]
    pub(crate) renewable: bool,
    pub(crate) state: String,
    pub(crate) attempts: i64,
    pub(crate) next_attempt_at: i64,
    pub(crate) last_error: Option<String>,
    pub(crate) revoked_at: Option<i64>,
    pub(crate) issued_to: String,
}

/// Lease states as stored (the third, 'revoke_failed', is set by `mark_lease_failed`).
pub(crate) const ACTIVE: &str = "active";
pub(crate) const REVOKED: &str = "revoked";

/// `SELECT` list of [`LeaseRow`]; a macro so queries stay `&'static str`.
macro_rules! lease_columns {
    () => {
        "SELECT id, kind, data, issued_at, expires_at, max_expires_at, renewable, state, \
         attempts, next_attempt_at, last_error, revoked_at, issued_to FROM leases "
    };
}

/// Certificates from KMIP Certify not yet linked to their object, through the
/// `certificates_unlinked` index (read at every start).
pub(super) const UNLINKED_CERTIFIED: &str = "SELECT serial, pem FROM certificates \
     WHERE role = 'kmip-certify' AND kmip_object IS NULL";

/// The statement that revokes the certificates whose `column` is `$3` (first revocation
/// wins: an earlier time and reason stay, except that a later keyCompromise (1) replaces
/// the reason, as RFC 5280 §5.3.1 allows); a macro so that each stays one literal.
macro_rules! revoke_where {
    ($column:literal) => {
        concat!(
            "UPDATE certificates SET revoked_at = COALESCE(revoked_at, $1), \
             revocation_reason = CASE WHEN $2 = 1 THEN 1 \
             ELSE COALESCE(revocation_reason, $2) END WHERE ",
            $column,
            " = $3"
        )
    };
}

/// A certificate issued through the API.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct CertificateRow {
    pub(crate) serial: String,
    pub(crate) role: String,
    pub(crate) subject: String,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    pub(crate) lease_id: Option<String>,
    pub(crate) revoked_at: Option<i64>,
    pub(crate) revocation_reason: Option<i64>,
    pub(crate) pem: String,
    /// The CA certificate that signed it (`root`, or an intermediate's id).
    pub(crate) issuer: String,
    /// The KMIP Certificate object Certify made for it, whose Revoke revokes it.
    #[sqlx(default)]
    pub(crate) kmip_object: Option<String>,
}

/// A CA certificate made after the first root: an intermediate, a newer root or a
/// cross-certificate.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct IssuerRow {
    pub(crate) id: String,
    /// `intermediate`, `root` or `cross`.
    pub(crate) kind: String,
    /// The signing authority's id (a root's own).
    pub(crate) parent: String,
    /// For a cross-certificate: the root it certifies.
    pub(crate) certifies: Option<String>,
    pub(crate) key_label: String,
    pub(crate) cert_pem: String,
    pub(crate) created_at: i64,
    /// When it was revoked (intermediates only).
    pub(crate) revoked_at: Option<i64>,
}

impl Store {
    pub(crate) async fn insert_lease(&self, l: &LeaseRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO leases (id, kind, data, issued_at, expires_at, max_expires_at, renewable, \
             state, attempts, next_attempt_at, last_error, revoked_at, issued_to) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&l.id)
        .bind(&l.kind)
        .bind(&l.data)
        .bind(l.issued_at)
        .bind(l.expires_at)
        .bind(l.max_expires_at)
        .bind(super::sql::flag(l.renewable))
        .bind(&l.state)
        .bind(l.attempts)
        .bind(l.next_attempt_at)
        .bind(&l.last_error)
        .bind(l.revoked_at)
        .bind(&l.issued_to)
        .execute(&mut *self.write.get().await?)
        .await?;
        Ok(())
    }

    pub(crate) async fn lease(&self, id: &str) -> Result<Option<LeaseRow>, StoreError> {
        Ok(sqlx::query_as(concat!(lease_columns!(), "WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *self.read.get().await?)
            .await?)
    }

    /// Leases whose id starts with `prefix`, in id order.
    pub(crate) async fn leases_with_prefix(
        &self,
        prefix: &str,
        only_unrevoked: bool,
    ) -> Result<Vec<LeaseRow>, StoreError> {
        let sql = if only_unrevoked {
            concat!(
                lease_columns!(),
                "WHERE substr(id, 1, length($1)) = $1 AND state != 'revoked' ORDER BY id"
            )
        } else {
            concat!(lease_columns!(), "WHERE substr(id, 1, length($1)) = $1 ORDER BY id")
        };
        Ok(sqlx::query_as(sql).bind(prefix).fetch_all(&mut *self.read.get().await?).await?)
    }

    /// The unrevoked leases issued to `identity` (a token's `token:ACCESSOR`, say).
    pub(crate) async fn leases_issued_to(
        &self,
        identity: &str,
    ) -> Result<Vec<LeaseRow>, StoreError> {
        let sql =
            concat!(lease_columns!(), "WHERE issued_to = $1 AND state != 'revoked' ORDER BY id");
        Ok(sqlx::query_as(sql).bind(identity).fetch_all(&mut *self.read.get().await?).await?)
    }

    /// Up to `limit` active leases issued to revoked tokens (whose revocation did not get
    /// to them: a store failure half-way, a lease made during the revocation).
    pub(crate) async fn leases_of_revoked_tokens(
        &self,
        limit: i64,
    ) -> Result<Vec<LeaseRow>, StoreError> {
        let sql = concat!(
            lease_columns!(),
            "WHERE state = 'active' AND issued_to IN \
             (SELECT 'token:' || accessor FROM tokens WHERE revoked_at IS NOT NULL) \
             ORDER BY id LIMIT $1"
        );
        Ok(sqlx::query_as(sql).bind(limit).fetch_all(&mut *self.read.get().await?).await?)
    }

    /// Extends an active lease's expiry; false if it has expired, is no longer active, or
    /// the reaper has taken it.
    pub(crate) async fn renew_lease(
        &self,
        id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        // Only a lease still unexpired and unclaimed: once the reaper has claimed it (moved
        // its next attempt off its expiry), its credential may be gone already.
        let done = sqlx::query(
            "UPDATE leases SET expires_at = $1, next_attempt_at = $2 WHERE id = $3 \
             AND state = 'active' AND next_attempt_at = expires_at AND expires_at > $4",
        )
        .bind(expires_at)
        .bind(expires_at)
        .bind(id)
        .bind(now)
        .execute(&mut *self.write.get().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Leases due for revocation at `now` (expired, or failed and due for a retry).
    pub(crate) async fn due_leases(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<LeaseRow>, StoreError> {
        let sql = concat!(
            lease_columns!(),
            "WHERE state != 'revoked' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2"
        );
        Ok(sqlx::query_as(sql)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *self.read.get().await?)
            .await?)
    }

    /// Takes a due lease for revocation by moving its next attempt to `until`: only one
    /// worker wins the claim for a given `seen_next_attempt`.
    pub(crate) async fn claim_lease(
        &self,
        id: &str,
        seen_next_attempt: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE leases SET next_attempt_at = $1 \
             WHERE id = $2 AND next_attempt_at = $3 AND state != 'revoked'",
        )
        .bind(until)
        .bind(id)
        .bind(seen_next_attempt)
        .execute(&mut *self.write.get().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(crate) async fn mark_lease_revoked(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE leases SET state = 'revoked', revoked_at = $1, last_error = NULL WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *self.write.get().await?)
        .await?;
        Ok(())
    }

    /// Moves an unrevoked lease's next attempt to `until` (the reaper's retry, should this
    /// revocation not finish), whoever holds it.
    pub(crate) async fn mark_lease_revoking(&self, id: &str, until: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE leases SET next_attempt_at = $1 WHERE id = $2 AND state != 'revoked'")
            .bind(until)
            .bind(id)
            .execute(&mut *self.write.get().await?)
            .await?;
        Ok(())
    }

    /// Makes a lease due again (at `retry_at`) whatever its state, with `error`: its
    /// credential turned out to outlive a revocation already recorded.
    pub(crate) async fn reopen_lease(
        &self,
        id: &str,
        error: &str,
        retry_at: i64,
    ) -> Result<(), StoreError> {
        self.lease_failed(id, error, retry_at, true).await
    }

    /// Records a failed revocation and when to retry it.
    pub(crate) async fn mark_lease_failed(
        &self,
        id: &str,
        error: &str,
        retry_at: i64,
    ) -> Result<(), StoreError> {
        self.lease_failed(id, error, retry_at, false).await
    }

    async fn lease_failed(
        &self,
        id: &str,
        error: &str,
        retry_at: i64,
        reopen: bool,
    ) -> Result<(), StoreError> {
        let sql = match reopen {
            true => {
                "UPDATE leases SET state = 'revoke_failed', revoked_at = NULL, \
                 attempts = attempts + 1, last_error = $1, next_attempt_at = $2 WHERE id = $3"
            }
            false => {
                "UPDATE leases SET state = 'revoke_failed', attempts = attempts + 1, \
                 last_error = $1, next_attempt_at = $2 WHERE id = $3 AND state != 'revoked'"
            }
        };
        sqlx::query(sql)
            .bind(error)
            .bind(retry_at)
            .bind(id)
            .execute(&mut *self.write.get().await?)
            .await?;
        Ok(())
    }

    pub(crate) async fn insert_certificate(&self, c: &CertificateRow) -> Result<(), StoreError> {
        insert_certificate_row(&mut *self.write.get().await?, c).await
    }

    pub(crate) async fn certificate(
        &self,
        serial: &str,
    ) -> Result<Option<CertificateRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT serial, role, subject, not_before, not_after, lease_id, revoked_at, \
             revocation_reason, pem, issuer, kmip_object FROM certificates WHERE serial = $1",
        )
        .bind(serial)
        .fetch_optional(&mut *self.read.get().await?)
        .await?)
    }

    /// Marks a certificate revoked (first revocation wins); false if there is none.
    pub(crate) async fn revoke_certificate(
        &self,
        serial: &str,
        reason: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.revoke_matching(revoke_where!("serial"), serial, reason, now).await? == 1)
    }

    /// Revokes the certificate KMIP Certify made object `object_id` for, if any (first
    /// revocation wins); false if there is none.
    pub(crate) async fn revoke_certified(
        &self,
        object_id: &str,
        reason: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.revoke_matching(revoke_where!("kmip_object"), object_id, reason, now).await? > 0)
    }

    /// Runs a `revoke_where!` statement; how many certificates it matched.
    async fn revoke_matching(
        &self,
        sql: &'static str,
        key: &str,
        reason: i64,
        now: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(sql)
            .bind(now)
            .bind(reason)
            .bind(key)
            .execute(&mut *self.write.get().await?)
            .await?;
        Ok(done.rows_affected())
    }

    /// Records that KMIP Certify made object `object_id` for certificate `serial`.
    pub(crate) async fn set_certified_object(
        &self,
        serial: &str,
        object_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE certificates SET kmip_object = $1 WHERE serial = $2")
            .bind(object_id)
            .bind(serial)
            .execute(&mut *self.write.get().await?)
            .await?;
        Ok(())
    }

    /// Records, for certificates KMIP Certify issued before `kmip_object` existed, the
    /// object it made: the oldest Certificate object holding exactly that certificate (a
    /// copy Registered later is younger). Returns how many it linked.
    pub(crate) async fn link_certified_objects(&self) -> Result<u64, StoreError> {
        let unlinked: Vec<(String, String)> =
            sqlx::query_as(UNLINKED_CERTIFIED).fetch_all(&mut *self.read.get().await?).await?;
        let mut linked = 0;
        for (serial, pem) in unlinked {
            let Ok((_, der)) = x509_parser::pem::parse_x509_pem(pem.as_bytes()) else { continue };
            let object: Option<(String,)> = sqlx::query_as(
                "SELECT id FROM objects WHERE object_type = 1 AND public_material = $1 \
                 ORDER BY initial_date, id LIMIT 1",
            )
            .bind(der.contents)
            .fetch_optional(&mut *self.read.get().await?)
            .await?;
            let Some((object,)) = object else { continue };
            linked += sqlx::query(
                "UPDATE certificates SET kmip_object = $1 WHERE serial = $2 AND kmip_object IS NULL",
            )
            .bind(object)
            .bind(serial)
            .execute(&mut *self.write.get().await?)
            .await?
            .rows_affected();
        }
        Ok(linked)
    }

    /// The next CRL number of `issuer`: one more than its last, and at least `floor`
    /// (RFC 5280 §5.2.3: a CRL number only ever increases, whichever replica builds it).
    pub(crate) async fn next_crl_number(
        &self,
        issuer: &str,
        floor: i64,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO crl_numbers (issuer, number) VALUES ($1, $2) \
             ON CONFLICT (issuer) DO UPDATE SET number = CASE \
             WHEN crl_numbers.number >= excluded.number THEN crl_numbers.number + 1 \
             ELSE excluded.number END RETURNING number",
        )
        .bind(issuer)
        .bind(floor)
        .fetch_one(&mut *self.write.get().await?)
        .await?)
    }

    /// Revoked certificates not yet expired (a CRL's entries): serial, revocation time and
    /// reason, oldest revocation first. The database joins them into one text value: a CRL
    /// may list millions, and one row each costs more in the driver than the query itself.
    pub(crate) async fn revocations(
        &self,
        issuer: &str,
        now: i64,
    ) -> Result<Vec<(String, i64, Option<i64>)>, StoreError> {
        let sql = match self.backend {
            super::Backend::Sqlite => {
                "SELECT group_concat(serial || ' ' || revoked_at || ' ' || \
                 COALESCE(revocation_reason, -1), ';') FROM (SELECT serial, revoked_at, \
                 revocation_reason FROM certificates WHERE not_after > $1 \
                 AND issuer = $2 AND revoked_at IS NOT NULL ORDER BY revoked_at)"
            }
            super::Backend::Postgres => {
                "SELECT string_agg(serial || ' ' || revoked_at || ' ' || \
                 COALESCE(revocation_reason, -1), ';' ORDER BY revoked_at) FROM certificates \
                 WHERE not_after > $1 AND issuer = $2 AND revoked_at IS NOT NULL"
            }
        };
        let (joined,): (Option<String>,) = sqlx::query_as(sql)
            .bind(now)
            .bind(issuer)
            .fetch_one(&mut *self.read.get().await?)
            .await?;
        let Some(joined) = joined else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for entry in joined.split(';') {
            let mut parts = entry.split(' ');
            let (Some(serial), Some(Ok(at)), Some(Ok(reason))) = (
                parts.next(),
                parts.next().map(str::parse::<i64>),
                parts.next().map(str::parse::<i64>),
            ) else {
                return Err(StoreError::Corrupt(format!("revocation entry {entry:?}")));
            };
            out.push((serial.to_owned(), at, (reason >= 0).then_some(reason)));
        }
        Ok(out)
    }

    /// How many certificates were ever revoked, when the latest was, and how many for
    /// keyCompromise: changes whenever a revocation happens (or a reason becomes
    /// keyCompromise), so a cached CRL knows it is out of date.
    pub(crate) async fn revocation_marker(
        &self,
    ) -> Result<(i64, Option<i64>, Option<i64>), StoreError> {
        // With the keyCompromise count: a reason changed to it is a change too.
        Ok(sqlx::query_as(
            "SELECT COUNT(*), MAX(revoked_at), \
             SUM(CASE WHEN revocation_reason = 1 THEN 1 ELSE 0 END) \
             FROM certificates WHERE revoked_at IS NOT NULL",
        )
        .fetch_one(&mut *self.read.get().await?)
        .await?)
    }
}

const INSERT_CERTIFICATE: &str = "INSERT INTO certificates (serial, role, subject, \
     not_before, not_after, lease_id, pem, issuer, kmip_object) VALUES ";

fn certificate_values(b: &mut Row<'_>, c: &&CertificateRow) {
    b.bind(c.serial.clone())
        .bind(c.role.clone())
        .bind(c.subject.clone())
        .bind(c.not_before)
        .bind(c.not_after)
        .bind(c.lease_id.clone())
        .bind(c.pem.clone())
        .bind(c.issuer.clone())
        .bind(c.kmip_object.clone());
}

/// Inserts a certificate row on `conn` (a pooled connection or a transaction).
pub(super) async fn insert_certificate_row(
    conn: &mut sqlx::AnyConnection,
    c: &CertificateRow,
) -> Result<(), StoreError> {
    insert_rows(conn, INSERT_CERTIFICATE, 9, &[c], certificate_values).await
}

/// Adds the insert of a certificate row to `batch`.
pub(super) fn add_certificate_row(batch: &mut Batch, c: &CertificateRow) {
    batch.insert_rows(INSERT_CERTIFICATE, 9, &[c], certificate_values);
}

impl Store {
    /// A page of issued certificates (API and ACME), newest first, without their PEM.
    pub(crate) async fn certificate_page(
        &self,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<CertificateRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT serial, role, subject, not_before, not_after, lease_id, revoked_at, \
             revocation_reason, '' AS pem, issuer FROM certificates \
             ORDER BY not_before DESC, serial LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *self.read.get().await?)
        .await?)
    }
}

impl Store {
    /// The CA certificates in the order they were added (parents first; the last
    /// intermediate is the default issuer).
    pub(crate) async fn ca_issuers(&self) -> Result<Vec<IssuerRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, kind, parent, certifies, key_label, cert_pem, created_at, revoked_at \
             FROM ca_issuers ORDER BY position",
        )
        .fetch_all(&mut *self.read.get().await?)
        .await?)
    }

    /// Revokes the intermediate `id`: marks it, and records its certificate `cert` (issuer:
    /// its root) as revoked for the root's CRL, in one transaction. False if there is no
    /// such intermediate or it was revoked already.
    pub(crate) async fn revoke_ca_issuer(
        &self,
        id: &str,
        cert: &CertificateRow,
        reason: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.write.get().await?;
        let mut tx = conn.begin().await?;
        let marked = sqlx::query(
            "UPDATE ca_issuers SET revoked_at = $1 WHERE id = $2 AND kind = 'intermediate' \
             AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if marked.rows_affected() != 1 {
            return Ok(false);
        }
        let known: Option<(String,)> =
            sqlx::query_as("SELECT serial FROM certificates WHERE serial = $1")
                .bind(&cert.serial)
                .fetch_optional(&mut *tx)
                .await?;
        if known.is_none() {
            insert_certificate_row(&mut tx, cert).await?;
        }
        sqlx::query(
            "UPDATE certificates SET revoked_at = $1, revocation_reason = $2 WHERE serial = $3",
        )
        .bind(now)
        .bind(reason)
        .bind(&cert.serial)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Adds CA certificates after the existing ones, in one transaction.
    pub(crate) async fn insert_ca_issuers(&self, rows: &[IssuerRow]) -> Result<(), StoreError> {
        let mut conn = self.write.get().await?;
        let mut tx = conn.begin().await?;
        for i in rows {
            sqlx::query(
                "INSERT INTO ca_issuers (id, position, kind, parent, certifies, key_label, \
                 cert_pem, created_at) SELECT $1, COALESCE(MAX(position), 0) + 1, $2, $3, $4, \
                 $5, $6, $7 FROM ca_issuers",
            )
            .bind(&i.id)
            .bind(&i.kind)
            .bind(&i.parent)
            .bind(&i.certifies)
            .bind(&i.key_label)
            .bind(&i.cert_pem)
            .bind(i.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
