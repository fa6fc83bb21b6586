//! ACME accounts, orders, authorizations and challenges (RFC 8555 §7.1).

use sqlx::FromRow;

use super::{CertificateRow, Store, StoreError};

/// An order `o` that is pending or ready and not invalid at `$2` (unexpired, and none of
/// its authorizations failed, deactivated, revoked or expired): one its client may still
/// finalize.
macro_rules! open_order {
    () => {
        "(o.status IN ('pending', 'ready') AND o.expires_at >= $2 \
         AND NOT EXISTS (SELECT 1 FROM acme_authorizations a WHERE a.order_id = o.id \
         AND (a.status IN ('invalid', 'deactivated', 'revoked') OR a.expires_at < $2)))"
    };
}

/// An order `o` that is not invalid at `$2`: open, being finalized or valid.
macro_rules! live_order {
    () => {
        concat!("(o.status IN ('processing', 'valid') OR ", open_order!(), ")")
    };
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct AccountRow {
    pub(crate) id: String,
    pub(crate) thumbprint: String,
    pub(crate) jwk: String,
    pub(crate) status: String,
    pub(crate) contact: String,
    pub(crate) created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub(crate) struct OrderRow {
    pub(crate) id: String,
    pub(crate) account_id: String,
    pub(crate) status: String,
    pub(crate) identifiers: String,
    pub(crate) expires_at: i64,
    pub(crate) error: Option<String>,
    pub(crate) certificate_serial: Option<String>,
    pub(crate) created_at: i64,
    /// The ARI CertID of the certificate this order replaces (RFC 9773 §5).
    pub(crate) replaces: Option<String>,
    /// The certificate profile it is issued under.
    pub(crate) profile: Option<String>,
    /// The serial, certificate and issuer of a certificate whose profile does not store
    /// certificates (`certificate_serial` names only recorded ones).
    pub(crate) unstored_serial: Option<String>,
    pub(crate) certificate_pem: Option<String>,
    pub(crate) certificate_issuer: Option<String>,
}

impl OrderRow {
    /// The serial of the order's certificate, recorded or not.
    pub(crate) fn serial(&self) -> Option<&str> {
        self.certificate_serial.as_deref().or(self.unstored_serial.as_deref())
    }
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub(crate) struct AuthzRow {
    pub(crate) id: String,
    pub(crate) order_id: String,
    pub(crate) account_id: String,
    pub(crate) identifier_type: String,
    pub(crate) identifier_value: String,
    pub(crate) status: String,
    pub(crate) expires_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub(crate) struct ChallengeRow {
    pub(crate) id: String,
    pub(crate) authz_id: String,
    #[sqlx(rename = "type")]
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) token: String,
    pub(crate) status: String,
    pub(crate) validated_at: Option<i64>,
    pub(crate) error: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct EabKeyRow {
    pub(crate) id: String,
    pub(crate) sealed_key: Vec<u8>,
    pub(crate) created_at: i64,
    pub(crate) created_by: String,
    pub(crate) account_id: Option<String>,
    pub(crate) bound_at: Option<i64>,
    /// The profiles accounts bound with it may order, as a JSON array; `None`: all.
    pub(crate) profiles: Option<String>,
}

/// Inserts an account; false if one with its key exists already (made meanwhile by a
/// concurrent request: keys are unique).
async fn insert_account(
    conn: &mut sqlx::AnyConnection,
    a: &AccountRow,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO acme_accounts (id, thumbprint, jwk, status, contact, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (thumbprint) DO NOTHING",
    )
    .bind(&a.id)
    .bind(&a.thumbprint)
    .bind(&a.jwk)
    .bind(&a.status)
    .bind(&a.contact)
    .bind(a.created_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The authorizations of order `o` as one JSON column `children` (PostgreSQL), for
/// [`with_children`]; a macro so that each statement stays one literal.
macro_rules! order_authorizations {
    () => {
        "(SELECT json_agg(a ORDER BY a.rowid) FROM acme_authorizations a \
         WHERE a.order_id = o.id)::text AS children"
    };
}

/// The challenges of authorization `a` as one JSON column `children`, as
/// [`order_authorizations`] gives an order's authorizations.
macro_rules! authorization_challenges {
    () => {
        "(SELECT json_agg(c ORDER BY c.rowid) FROM acme_challenges c \
         WHERE c.authz_id = a.id)::text AS children"
    };
}

/// A row, and the rows a PostgreSQL `json_agg` put in its column `children` (none: NULL).
fn with_children<P, C>(row: sqlx::any::AnyRow) -> Result<(P, Vec<C>), StoreError>
where
    P: for<'r> FromRow<'r, sqlx::any::AnyRow>,
    C: serde::de::DeserializeOwned,
{
    let children = children(&row)?;
    Ok((P::from_row(&row)?, children))
}

/// The rows a PostgreSQL `json_agg` put in `row`'s column `children` (none: NULL).
fn children<C: serde::de::DeserializeOwned>(row: &sqlx::any::AnyRow) -> Result<Vec<C>, StoreError> {
    use sqlx::Row;
    match row.try_get::<Option<String>, _>("children")? {
        None => Ok(Vec::new()),
        Some(json) => from_json(&json),
    }
}

/// A row that PostgreSQL's `row_to_json` or `json_agg` wrote.
fn from_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// An issued certificate as its ACME client downloads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct AcmeCertificate {
    /// The account whose order it was issued for.
    pub(crate) account_id: String,
    pub(crate) pem: String,
    /// The id of the CA that issued it.
    pub(crate) issuer: String,
}

/// What a replica's request may read in the statement that consumes its nonce (see
/// [`Store::consume_acme_nonce_reading_account`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Prefetch<'a> {
    Nothing,
    /// The order with this id, with its authorizations.
    Order(&'a str),
    /// The authorization with this id, with its challenges.
    Authorization(&'a str),
}

/// What [`Prefetch`] found.
#[derive(Debug, Clone)]
pub(crate) enum Prefetched {
    Order(OrderRow, Vec<AuthzRow>),
    Authorization(AuthzRow, Vec<ChallengeRow>),
}

/// A request's nonce, not used up yet, and the account key its signature was checked
/// with (a replica's copy of the account, which another replica may have changed since):
/// a write given it uses the nonce up in its own statement, and writes only if the
/// nonce was good and the account is still valid with that key (PostgreSQL only).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NonceGuard<'a> {
    pub(crate) nonce: &'a str,
    pub(crate) now: i64,
    pub(crate) account_id: &'a str,
    pub(crate) jwk: &'a str,
}

impl<'a> NonceGuard<'a> {
    /// Guards a write with `nonce`, for `account` as read.
    pub(crate) fn new(nonce: &'a str, account: &'a AccountRow) -> NonceGuard<'a> {
        let (account_id, jwk) = (account.id.as_str(), account.jwk.as_str());
        NonceGuard { nonce, now: crate::util::now(), account_id, jwk }
    }

    /// Appends the statement that uses the nonce up and returns a row, if the nonce was
    /// good and the account still as checked (the nonce is kept otherwise).
    fn push(&self, sql: &mut super::sql::Sql) {
        sql.push("DELETE FROM acme_nonces WHERE nonce = ")
            .bind(self.nonce.to_owned())
            .push(" AND expires_at > ")
            .bind(self.now)
            .push(" AND EXISTS (SELECT 1 FROM acme_accounts WHERE id = ")
            .bind(self.account_id.to_owned())
            .push(" AND status = 'valid' AND jwk = ")
            .bind(self.jwk.to_owned())
            .push(") RETURNING 1");
    }
}

/// A new order with its authorizations and their challenges.
pub(crate) struct NewOrder<'a> {
    pub(crate) order: &'a OrderRow,
    pub(crate) authorizations: &'a [(AuthzRow, Vec<ChallengeRow>)],
}

impl Store {
    /// Inserts an account; false if one with its key exists already.
    pub(crate) async fn insert_acme_account(&self, a: &AccountRow) -> Result<bool, StoreError> {
        insert_account(&mut *self.write.get().await?, a).await
    }

    pub(crate) async fn acme_account(&self, id: &str) -> Result<Option<AccountRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM acme_accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.read.get().await?)
            .await?)
    }

    pub(crate) async fn acme_account_by_thumbprint(
        &self,
        thumbprint: &str,
    ) -> Result<Option<AccountRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM acme_accounts WHERE thumbprint = $1")
            .bind(thumbprint)
            .fetch_optional(&mut *self.write.get().await?)
            .await?)
    }

    /// Sets an account's status and contacts, if it is still valid; false if it is not.
    pub(crate) async fn update_acme_account(&self, a: &AccountRow) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE acme_accounts SET status = $1, contact = $2 WHERE id = $3 AND status = 'valid'",
        )
        .bind(&a.status)
        .bind(&a.contact)
        .bind(&a.id)
        .execute(&mut *self.write.get().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores an order, its authorizations and their challenges in one transaction.
    /// Without waiting for the disk: a power loss may lose an order (its client then
    /// makes another), never a certificate issued for it. With `guard`, only if it lets
    /// (false otherwise: nothing written).
    pub(crate) async fn insert_acme_order(
        &self,
        new: NewOrder<'_>,
        guard: Option<NonceGuard<'_>>,
    ) -> Result<bool, StoreError> {
        let mut batch = self.batch().without_flush();
        if let Some(guard) = guard {
            guard.push(batch.guard(""));
        }
        let o = new.order;
        batch.insert_rows(
            "INSERT INTO acme_orders (id, account_id, status, identifiers, expires_at, \
             error, certificate_serial, created_at, replaces, profile) VALUES ",
            10,
            &[o],
            |b, o| {
                b.bind(o.id.clone())
                    .bind(o.account_id.clone())
                    .bind(o.status.clone())
                    .bind(o.identifiers.clone())
                    .bind(o.expires_at)
                    .bind(o.error.clone())
                    .bind(o.certificate_serial.clone())
                    .bind(o.created_at)
                    .bind(o.replaces.clone())
                    .bind(o.profile.clone());
            },
        );
        // All authorizations in one statement, then all their challenges in one.
        let authorizations: Vec<&AuthzRow> = new.authorizations.iter().map(|(a, _)| a).collect();
        batch.insert_rows(
            "INSERT INTO acme_authorizations (id, order_id, account_id, identifier_type, \
             identifier_value, status, expires_at) VALUES ",
            7,
            &authorizations,
            |b, a| {
                b.bind(a.id.clone())
                    .bind(a.order_id.clone())
                    .bind(a.account_id.clone())
                    .bind(a.identifier_type.clone())
                    .bind(a.identifier_value.clone())
                    .bind(a.status.clone())
                    .bind(a.expires_at);
            },
        );
        let challenges: Vec<&ChallengeRow> =
            new.authorizations.iter().flat_map(|(_, challenges)| challenges.iter()).collect();
        batch.insert_rows(
            "INSERT INTO acme_challenges (id, authz_id, type, token, status, validated_at, \
             error) VALUES ",
            7,
            &challenges,
            |b, c| {
                b.bind(c.id.clone())
                    .bind(c.authz_id.clone())
                    .bind(c.kind.clone())
                    .bind(c.token.clone())
                    .bind(c.status.clone())
                    .bind(c.validated_at)
                    .bind(c.error.clone());
            },
        );
        // The issuance's next requests read all of it.
        let (order, authorizations) = (o.clone(), new.authorizations.to_vec());
        self.commit(batch, move |store| {
            let Some(c) = store.acme_caches() else { return };
            let rows = authorizations.iter().map(|(a, _)| a.clone()).collect();
            c.authorizations.write(&order.id, rows);
            for (a, challenges) in authorizations {
                c.challenges.write(&a.id, challenges);
                c.authorization.write(&a.id.clone(), a);
            }
            c.orders.write(&order.id.clone(), order);
        })
        .await
    }

    fn acme_caches(&self) -> Option<&super::cache::AcmeCaches> {
        self.caches.acme.as_ref()
    }

    pub(crate) async fn acme_order(&self, id: &str) -> Result<Option<OrderRow>, StoreError> {
        let read = async {
            Ok(sqlx::query_as("SELECT * FROM acme_orders WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *self.read.get().await?)
                .await?)
        };
        super::cache::read_through(self.acme_caches().map(|c| &c.orders), id, read).await
    }

    /// Drops the cached copy of order `id`, after a write changed it.
    fn order_changed(&self, id: &str) {
        if let Some(c) = self.acme_caches() {
            c.orders.forget(id);
        }
    }

    /// Drops the cached authorizations and challenges, after a write changed one.
    fn authorizations_changed(&self) {
        if let Some(c) = self.acme_caches() {
            c.authorizations_changed();
        }
    }

    /// Keeps an order's certificate, just issued, for its download.
    fn issued(&self, order: &OrderRow, serial: &str, pem: &str, issuer: &str) {
        let account_id = order.account_id.clone();
        let cert = AcmeCertificate { account_id, pem: pem.to_owned(), issuer: issuer.to_owned() };
        self.caches.certificates.write(serial, cert);
    }

    /// The certificate with `serial` as its order's account downloads it: recorded in
    /// `certificates`, or kept on the order (profiles that do not store certificates).
    pub(crate) async fn acme_certificate(
        &self,
        serial: &str,
    ) -> Result<Option<AcmeCertificate>, StoreError> {
        let read = async {
            Ok(sqlx::query_as(
                "SELECT o.account_id AS account_id, COALESCE(c.pem, o.certificate_pem) AS pem, \
                 COALESCE(c.issuer, o.certificate_issuer, '') AS issuer \
                 FROM acme_orders o LEFT JOIN certificates c ON c.serial = o.certificate_serial \
                 WHERE (o.certificate_serial = $1 OR o.unstored_serial = $1) \
                 AND COALESCE(c.pem, o.certificate_pem) IS NOT NULL",
            )
            .bind(serial)
            .fetch_optional(&mut *self.read.get().await?)
            .await?)
        };
        super::cache::read_through(Some(&self.caches.certificates), serial, read).await
    }

    /// Whether an order that has not failed by `now` already replaces the certificate with
    /// ARI CertID `cert_id` (RFC 9773 §5). An order's status is written when it is read,
    /// so one still marked pending or ready has failed if it expired or one of its
    /// authorizations did.
    pub(crate) async fn acme_replaced(&self, cert_id: &str, now: i64) -> Result<bool, StoreError> {
        let (n,): (i64,) = sqlx::query_as(concat!(
            "SELECT COUNT(*) FROM acme_orders o WHERE o.replaces = $1 AND ",
            live_order!()
        ))
        .bind(cert_id)
        .bind(now)
        .fetch_one(&mut *self.write.get().await?)
        .await?;
        Ok(n > 0)
    }

    /// The ids of an account's orders that are not invalid at `now` (RFC 8555 §7.1.2.1),
    /// oldest first.
    pub(crate) async fn acme_order_ids(
        &self,
        account_id: &str,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(concat!(
            "SELECT id FROM acme_orders o WHERE o.account_id = $1 AND ",
            live_order!(),
            " ORDER BY rowid"
        ))
        .bind(account_id)
        .bind(now)
        .fetch_all(&mut *self.read.get().await?)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// How many of an account's orders are open (pending or ready, and not invalid) at
    /// `now`.
    pub(crate) async fn acme_open_orders(
        &self,
        account_id: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as(concat!(
            "SELECT COUNT(*) FROM acme_orders o WHERE o.account_id = $1 AND ",
            open_order!()
        ))
        .bind(account_id)
        .bind(now)
        .fetch_one(&mut *self.read.get().await?)
        .await?;
        Ok(n)
    }

    /// The order that produced the certificate with `serial`.
    pub(crate) async fn acme_order_by_certificate(
        &self,
        serial: &str,
    ) -> Result<Option<OrderRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM acme_orders WHERE certificate_serial = $1 OR unstored_serial = $1",
        )
        .bind(serial)
        .fetch_optional(&mut *self.read.get().await?)
        .await?)
    }

    /// Moves an order from `from` to `to` (with an error document for invalid); false when
    /// it was no longer in `from`, so two finalizations cannot both proceed.
    pub(crate) async fn transition_acme_order(
        &self,
        id: &str,
        from: &str,
        to: &str,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        // Moving to processing records when (see `claim_ready_acme_order`).
        let r = sqlx::query(
            "UPDATE acme_orders SET status = $1, error = $2, processing_since = \
             CASE WHEN $1 = 'processing' THEN $3 ELSE processing_since END \
             WHERE id = $4 AND status = $5",
        )
        .bind(to)
        .bind(error)
        .bind(crate::util::now())
        .bind(id)
        .bind(from)
        .execute(&mut *self.write.get().await?)
        .await?;
        self.order_changed(id);
        Ok(r.rows_affected() == 1)
    }

    /// Stores the order's certificate and marks the order valid, in one transaction.
    pub(crate) async fn complete_acme_order(
        &self,
        order: &OrderRow,
        cert: &CertificateRow,
    ) -> Result<(), StoreError> {
        let mut batch = self.batch();
        super::leases::add_certificate_row(&mut batch, cert);
        batch
            .add("UPDATE acme_orders SET status = 'valid', certificate_serial = ")
            .bind(cert.serial.clone())
            .push(", certificate_not_after = ")
            .bind(cert.not_after)
            .push(" WHERE id = ")
            .bind(order.id.clone());
        let (order, cert) = (order.clone(), cert.clone());
        self.commit(batch, move |store| {
            if let Some(c) = store.acme_caches() {
                c.orders.update(&order.id, |o| {
                    o.status = "valid".into();
                    o.certificate_serial = Some(cert.serial.clone());
                });
            }
            store.issued(&order, &cert.serial, &cert.pem, &cert.issuer);
        })
        .await?;
        Ok(())
    }

    /// Marks the order valid with a certificate not recorded in `certificates` (a profile
    /// with `store = false`): the order keeps it for download only. Without waiting for
    /// the disk: such a profile keeps no record a revocation needs, and an order a power
    /// loss took back is one its client makes again.
    pub(crate) async fn complete_acme_order_unstored(
        &self,
        order: &OrderRow,
        serial: &str,
        pem: &str,
        issuer: &str,
        not_after: i64,
    ) -> Result<(), StoreError> {
        let mut batch = self.batch().without_flush();
        batch
            .add("UPDATE acme_orders SET status = 'valid', unstored_serial = ")
            .bind(serial.to_owned())
            .push(", certificate_not_after = ")
            .bind(not_after)
            .push(", certificate_pem = ")
            .bind(pem.to_owned())
            .push(", certificate_issuer = ")
            .bind(issuer.to_owned())
            .push(" WHERE id = ")
            .bind(order.id.clone());
        let order = order.clone();
        let (serial, pem, issuer) = (serial.to_owned(), pem.to_owned(), issuer.to_owned());
        self.commit(batch, move |store| {
            if let Some(c) = store.acme_caches() {
                c.orders.update(&order.id, |o| {
                    o.status = "valid".into();
                    o.unstored_serial = Some(serial.clone());
                    o.certificate_pem = Some(pem.clone());
                    o.certificate_issuer = Some(issuer.clone());
                });
            }
            store.issued(&order, &serial, &pem, &issuer);
        })
        .await?;
        Ok(())
    }

    /// Deletes up to `limit` orders, with their authorizations and challenges, whose own
    /// expiry and whose certificate's (if any) are both before `cutoff`; how many went.
    /// An order being finalized stays whatever its dates.
    pub(crate) async fn purge_acme_orders(
        &self,
        cutoff: i64,
        limit: i64,
    ) -> Result<usize, StoreError> {
        let ids: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM acme_orders WHERE expires_at < $1 AND status <> 'processing' \
             AND COALESCE(certificate_not_after, 0) < $1 ORDER BY expires_at LIMIT $2",
        )
        .bind(cutoff)
        .bind(limit)
        .fetch_all(&mut *self.read.get().await?)
        .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let mut batch = self.batch().without_flush();
        for (head, tail) in [
            (
                "DELETE FROM acme_challenges WHERE authz_id IN \
                 (SELECT id FROM acme_authorizations WHERE order_id IN (",
                "))",
            ),
            ("DELETE FROM acme_authorizations WHERE order_id IN (", ")"),
            ("DELETE FROM acme_orders WHERE id IN (", ")"),
        ] {
            let sql = batch.add(head);
            for (i, (id,)) in ids.iter().enumerate() {
                sql.push(if i == 0 { "" } else { ", " }).bind(id.clone());
            }
            sql.push(tail);
        }
        self.commit(batch, |store| {
            if let Some(c) = store.acme_caches() {
                c.orders.clear();
                c.authorizations_changed();
            }
        })
        .await?;
        Ok(ids.len())
    }

    pub(crate) async fn acme_authorizations(
        &self,
        order_id: &str,
    ) -> Result<Vec<AuthzRow>, StoreError> {
        let read = async {
            let rows = sqlx::query_as(
                "SELECT * FROM acme_authorizations WHERE order_id = $1 ORDER BY rowid",
            )
            .bind(order_id)
            .fetch_all(&mut *self.read.get().await?)
            .await?;
            Ok(Some(rows))
        };
        let cache = self.acme_caches().map(|c| &c.authorizations);
        Ok(super::cache::read_through(cache, order_id, read).await?.unwrap_or_default())
    }

    /// Order `id` with its authorizations: on a shared store in one statement (each
    /// request of a replica reads both, and every statement is a round trip).
    pub(crate) async fn acme_order_with_authorizations(
        &self,
        id: &str,
    ) -> Result<Option<(OrderRow, Vec<AuthzRow>)>, StoreError> {
        if self.acme_caches().is_some() {
            let Some(order) = self.acme_order(id).await? else { return Ok(None) };
            return Ok(Some((order, self.acme_authorizations(id).await?)));
        }
        let row = sqlx::query(concat!(
            "SELECT o.*, ",
            order_authorizations!(),
            " FROM acme_orders o WHERE o.id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *self.read.get().await?)
        .await?;
        row.map(with_children).transpose()
    }

    /// Marks order `id` of `account_id` processing if it is ready (or was left processing
    /// since before `stale` by a replica that stopped mid-finalize), has not expired by
    /// `now` and all its authorizations are still valid, and returns it so, with its authorizations: in one statement (PostgreSQL
    /// only), so that a replica's finalize reads and claims the order in one round trip.
    /// None if the order was not so (it may be pending still: read it to know). With
    /// `guard`, the same statement uses the request's nonce up, and claims nothing unless
    /// the guard lets it: the first value says whether it did (true without a guard).
    pub(crate) async fn claim_ready_acme_order(
        &self,
        id: &str,
        account_id: &str,
        now: i64,
        stale: i64,
        guard: Option<NonceGuard<'_>>,
    ) -> Result<(bool, Option<(OrderRow, Vec<AuthzRow>)>), StoreError> {
        use sqlx::Row;
        if self.backend != super::Backend::Postgres {
            return Err(StoreError::Unsupported("claiming an order as it is read: PostgreSQL"));
        }
        let mut sql = super::sql::Sql::new("WITH ");
        if let Some(guard) = guard {
            sql.push("n AS (");
            guard.push(&mut sql);
            sql.push("), ");
        }
        sql.push("o AS (UPDATE acme_orders SET status = 'processing', processing_since = ")
            .bind(now)
            .push(" WHERE id = ")
            .bind(id.to_owned())
            .push(" AND account_id = ")
            .bind(account_id.to_owned())
            .push(" AND (status = 'ready' OR (status = 'processing' AND COALESCE(processing_since, 0) < ")
            .bind(stale)
            .push(")) AND expires_at >= ")
            .bind(now)
            // Ready was written when every authorization was valid; one deactivated or
            // expired since leaves the order unclaimed, and the caller's read of it then
            // finds it invalid (an authorization expires with its order).
            .push(
                " AND NOT EXISTS (SELECT 1 FROM acme_authorizations a \
                 WHERE a.order_id = acme_orders.id AND (a.status <> 'valid' OR a.expires_at < ",
            )
            .bind(now)
            .push("))");
        let passed = match guard {
            Some(_) => {
                sql.push(" AND EXISTS (SELECT 1 FROM n)");
                "(SELECT COUNT(*) FROM n)"
            }
            None => "1",
        };
        // One row even when nothing was claimed, for `passed`.
        sql.push(" RETURNING *) SELECT ").push(passed).push(concat!(
            " AS passed, o.*, ",
            order_authorizations!(),
            " FROM (SELECT 1) AS one LEFT JOIN o ON true"
        ));
        let row = sql.query()?.fetch_one(&mut *self.write.get().await?).await?;
        let passed = row.try_get::<i64, _>("passed")? > 0;
        let claimed = match row.try_get::<Option<String>, _>("id")? {
            Some(_) => Some(with_children(row)?),
            None => None,
        };
        Ok((passed, claimed))
    }

    /// Authorization `id` with its challenges, on a shared store in one statement.
    pub(crate) async fn acme_authorization_with_challenges(
        &self,
        id: &str,
    ) -> Result<Option<(AuthzRow, Vec<ChallengeRow>)>, StoreError> {
        if self.acme_caches().is_some() {
            let Some(authz) = self.acme_authorization(id).await? else { return Ok(None) };
            return Ok(Some((authz, self.acme_challenges(id).await?)));
        }
        let row = sqlx::query(concat!(
            "SELECT a.*, ",
            authorization_challenges!(),
            " FROM acme_authorizations a WHERE a.id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *self.read.get().await?)
        .await?;
        row.map(with_children).transpose()
    }

    pub(crate) async fn acme_authorization(
        &self,
        id: &str,
    ) -> Result<Option<AuthzRow>, StoreError> {
        let read = async {
            Ok(sqlx::query_as("SELECT * FROM acme_authorizations WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *self.read.get().await?)
                .await?)
        };
        super::cache::read_through(self.acme_caches().map(|c| &c.authorization), id, read).await
    }

    pub(crate) async fn acme_challenges(
        &self,
        authz_id: &str,
    ) -> Result<Vec<ChallengeRow>, StoreError> {
        let read = async {
            let rows =
                sqlx::query_as("SELECT * FROM acme_challenges WHERE authz_id = $1 ORDER BY rowid")
                    .bind(authz_id)
                    .fetch_all(&mut *self.read.get().await?)
                    .await?;
            Ok(Some(rows))
        };
        let cache = self.acme_caches().map(|c| &c.challenges);
        Ok(super::cache::read_through(cache, authz_id, read).await?.unwrap_or_default())
    }

    pub(crate) async fn acme_challenge(
        &self,
        id: &str,
    ) -> Result<Option<ChallengeRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM acme_challenges WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.read.get().await?)
            .await?)
    }

    /// Deactivates a pending or valid authorization; false if it was neither.
    pub(crate) async fn deactivate_acme_authorization(&self, id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE acme_authorizations SET status = 'deactivated' \
             WHERE id = $1 AND status IN ('pending', 'valid')",
        )
        .bind(id)
        .execute(&mut *self.write.get().await?)
        .await?;
        self.authorizations_changed();
        Ok(r.rows_affected() == 1)
    }

    /// Starts validating a challenge at `now`: a pending one, or one left processing since
    /// before `stale` (by a process that stopped mid-validation). False if neither.
    pub(crate) async fn start_acme_challenge(
        &self,
        id: &str,
        now: i64,
        stale: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE acme_challenges SET status = 'processing', processing_since = $1 \
             WHERE id = $2 AND (status = 'pending' \
             OR (status = 'processing' AND COALESCE(processing_since, 0) < $3))",
        )
        .bind(now)
        .bind(id)
        .bind(stale)
        .execute(&mut *self.write.get().await?)
        .await?;
        self.authorizations_changed();
        Ok(r.rows_affected() == 1)
    }

    /// Records the result of the validation started at `started` on the challenge and its
    /// authorization together; false (nothing recorded) if a newer validation has started
    /// since.
    pub(crate) async fn finish_acme_challenge(
        &self,
        challenge: &ChallengeRow,
        started: i64,
        now: i64,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let status = if error.is_none() { "valid" } else { "invalid" };
        let mut conn = self.write.get().await?;
        let mut tx = conn.begin().await?;
        let r = sqlx::query(
            "UPDATE acme_challenges SET status = $1, validated_at = $2, error = $3 \
             WHERE id = $4 AND status = 'processing' AND processing_since = $5",
        )
        .bind(status)
        .bind(error.is_none().then_some(now))
        .bind(error)
        .bind(&challenge.id)
        .bind(started)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE acme_authorizations SET status = $1 WHERE id = $2 AND status = 'pending'",
        )
        .bind(status)
        .bind(&challenge.authz_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.authorizations_changed();
        Ok(true)
    }

    /// Replaces an account's key (keyChange); false if another account has that key.
    pub(crate) async fn change_acme_account_key(
        &self,
        id: &str,
        thumbprint: &str,
        jwk: &str,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE acme_accounts SET thumbprint = $1, jwk = $2 WHERE id = $3 \
             AND NOT EXISTS (SELECT 1 FROM acme_accounts WHERE thumbprint = $4)",
        )
        .bind(thumbprint)
        .bind(jwk)
        .bind(id)
        .bind(thumbprint)
        .execute(&mut *self.write.get().await?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub(crate) async fn insert_acme_eab_key(&self, k: &EabKeyRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO acme_eab_keys (id, sealed_key, created_at, created_by, profiles) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&k.id)
        .bind(&k.sealed_key)
        .bind(k.created_at)
        .bind(&k.created_by)
        .bind(&k.profiles)
        .execute(&mut *self.write.get().await?)
        .await?;
        Ok(())
    }

    /// The EAB key an account was bound with, if any (bound when the account is made, in
    /// the same transaction, and never unbound: cached).
    pub(crate) async fn acme_eab_key_of_account(
        &self,
        account_id: &str,
    ) -> Result<Option<EabKeyRow>, StoreError> {
        let read = async {
            let row = sqlx::query_as("SELECT * FROM acme_eab_keys WHERE account_id = $1")
                .bind(account_id)
                .fetch_optional(&mut *self.read.get().await?)
                .await?;
            Ok(Some(row))
        };
        Ok(super::cache::read_through(Some(&self.caches.eab), account_id, read).await?.flatten())
    }

    pub(crate) async fn acme_eab_key(&self, id: &str) -> Result<Option<EabKeyRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM acme_eab_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.write.get().await?)
            .await?)
    }

    pub(crate) async fn acme_eab_keys(&self) -> Result<Vec<EabKeyRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM acme_eab_keys ORDER BY created_at, id")
            .fetch_all(&mut *self.read.get().await?)
            .await?)
    }

    pub(crate) async fn delete_acme_eab_key(&self, id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM acme_eab_keys WHERE id = $1 AND account_id IS NULL")
            .bind(id)
            .execute(&mut *self.write.get().await?)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Inserts an account bound to the unused EAB key `eab_id`, in one transaction; false
    /// (nothing written) if that key is bound already or an account with the same key
    /// exists.
    pub(crate) async fn insert_acme_account_with_eab(
        &self,
        a: &AccountRow,
        eab_id: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.write.get().await?;
        let mut tx = conn.begin().await?;
        if !insert_account(&mut tx, a).await? {
            return Ok(false);
        }
        let bound = sqlx::query(
            "UPDATE acme_eab_keys SET account_id = $1, bound_at = $2 WHERE id = $3 AND account_id IS NULL",
        )
        .bind(&a.id)
        .bind(a.created_at)
        .bind(eab_id)
        .execute(&mut *tx)
        .await?;
        if bound.rows_affected() != 1 {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// ACME nonces shared by replicas (PostgreSQL stores only; see `schemas/postgres`).
impl Store {
    /// Records nonces handed out from now on, in one statement.
    pub(crate) async fn insert_acme_nonces(
        &self,
        nonces: &[String],
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let head = "INSERT INTO acme_nonces (nonce, expires_at) VALUES ";
        let mut conn = self.write.get().await?;
        super::sql::insert_rows(&mut conn, head, 2, nonces, |b, n| {
            b.bind(n.clone()).bind(expires_at);
        })
        .await
    }

    /// Uses up a nonce: true once, if it was issued and has not expired by `now`.
    pub(crate) async fn consume_acme_nonce(
        &self,
        nonce: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM acme_nonces WHERE nonce = $1 AND expires_at > $2")
            .bind(nonce)
            .bind(now)
            .execute(&mut *self.write.get().await?)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Consumes a shared nonce and reads account `id` in one round trip (PostgreSQL only:
    /// a data-modifying CTE): a replica's `kid`-signed request needs both before anything
    /// else. With `also`, the same statement reads the order or authorization the request
    /// names (a POST-as-GET of it), which the caller may use once the request's signature
    /// is checked. Whether the nonce was good, the account, and what `also` found.
    pub(crate) async fn consume_acme_nonce_reading_account(
        &self,
        nonce: &str,
        now: i64,
        id: &str,
        also: Prefetch<'_>,
    ) -> Result<(bool, Option<AccountRow>, Option<Prefetched>), StoreError> {
        use sqlx::{FromRow, Row};
        if self.backend != super::Backend::Postgres {
            return Err(StoreError::Unsupported("one-statement nonce and account: PostgreSQL"));
        }
        // The read row as JSON, and its children as the one-statement reads give them.
        let (join, target) = match also {
            Prefetch::Nothing => ("", None),
            Prefetch::Order(id) => (
                concat!(
                    " LEFT JOIN (SELECT row_to_json(o)::text AS parent, ",
                    order_authorizations!(),
                    " FROM acme_orders o WHERE o.id = $4) p ON true"
                ),
                Some(id),
            ),
            Prefetch::Authorization(id) => (
                concat!(
                    " LEFT JOIN (SELECT row_to_json(a)::text AS parent, ",
                    authorization_challenges!(),
                    " FROM acme_authorizations a WHERE a.id = $4) p ON true"
                ),
                Some(id),
            ),
        };
        let columns = if target.is_some() { ", p.parent, p.children" } else { "" };
        let text = format!(
            "WITH n AS (DELETE FROM acme_nonces WHERE nonce = $1 AND expires_at > $2 RETURNING 1) \
             SELECT (SELECT COUNT(*) FROM n) AS nonce_ok, acct.*{columns} \
             FROM (SELECT 1) AS one LEFT JOIN acme_accounts acct ON acct.id = $3{join}"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(text)).bind(nonce).bind(now).bind(id);
        if let Some(target) = target {
            query = query.bind(target);
        }
        let row = query.fetch_one(&mut *self.write.get().await?).await?;
        let good = row.try_get::<i64, _>("nonce_ok")? == 1;
        let account = match row.try_get::<Option<String>, _>("id")? {
            Some(_) => Some(AccountRow::from_row(&row)?),
            None => None,
        };
        let parent = match target {
            Some(_) => row.try_get::<Option<String>, _>("parent")?,
            None => None,
        };
        let prefetched = match (also, parent) {
            (Prefetch::Nothing, _) | (_, None) => None,
            (Prefetch::Order(_), Some(order)) => {
                let (order, authzs) = (from_json(&order)?, children(&row)?);
                Some(Prefetched::Order(order, authzs))
            }
            (Prefetch::Authorization(_), Some(authz)) => {
                let (authz, challenges) = (from_json(&authz)?, children(&row)?);
                Some(Prefetched::Authorization(authz, challenges))
            }
        };
        Ok((good, account, prefetched))
    }

    /// Forgets nonces that expired unused; returns how many.
    pub(crate) async fn purge_acme_nonces(&self, now: i64) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM acme_nonces WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *self.write.get().await?)
            .await?;
        Ok(r.rows_affected())
    }
}
