//! Operations of the database engine over the store and the HSM: connections (root password
//! sealed), dynamic roles and their credentials, root rotation, static roles.

use serde::Serialize;

use super::database::{
    connect, Conn, ConnectionConfig, LeaseData, RoleConfig, StaticRoleConfig, Vars,
};
use super::leases::lease_data;
use super::{check_name, Creds, CredsError};
use crate::store::LeaseRow;

/// Store kinds (the `engine_configs.kind` column).
pub(super) const KIND_CONNECTION: &str = "database-connection";
pub(super) const KIND_ROLE: &str = "database-role";
pub(super) const KIND_STATIC_ROLE: &str = "database-static-role";

/// Default and maximum lease of a role that sets none (seconds).
const DEFAULT_TTL: i64 = 3600;
const DEFAULT_MAX_TTL: i64 = 24 * 3600;

fn aad(kind: &str, name: &str) -> String {
    format!("{kind}/{name}")
}

/// A dynamic credential just created, and its lease.
pub(crate) struct IssuedDbCreds {
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) lease: LeaseRow,
}

/// A static role's current password.
#[derive(Serialize)]
pub(crate) struct StaticCreds {
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) last_vault_rotation: Option<i64>,
    pub(crate) rotation_period: i64,
    pub(crate) ttl: i64,
}

fn json<T: Serialize>(v: &T) -> String {
    // Serialising these plain structs cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

impl Creds {
    /// Creates or replaces a connection. Without `password` the stored one is kept.
    /// With `verify`, connects first and refuses a configuration that cannot log in.
    pub(crate) async fn put_connection(
        &self,
        name: &str,
        config: ConnectionConfig,
        password: Option<String>,
        verify: bool,
    ) -> Result<(), CredsError> {
        check_name("connection name", name)?;
        config.password_policy.check().map_err(CredsError::Invalid)?;
        // The URL is stored and shown as given; the password belongs in `password`, which
        // is sealed by the HSM (the URL names it as {{password}}).
        if url_password(&config.connection_url).is_some_and(|p| p != "{{password}}") {
            return Err(CredsError::BadUrl(
                "it holds a password: give it as `password` and write {{password}} in the URL"
                    .into(),
            ));
        }
        let password = match password {
            Some(p) => p,
            None => match self.store.engine_config(KIND_CONNECTION, name).await? {
                Some(row) => match row.sealed {
                    Some(s) => self.open(s, aad(KIND_CONNECTION, name)).await?,
                    None => return Err(CredsError::Invalid("password is required".into())),
                },
                None => return Err(CredsError::Invalid("password is required".into())),
            },
        };
        if verify {
            let conn = connect(&config, &config.username, &password)
                .await
                .map_err(|e| hide(e, &password))?;
            conn.close().await;
        }
        let sealed = self.seal(&password, aad(KIND_CONNECTION, name)).await?;
        self.store
            .put_engine_config(
                KIND_CONNECTION,
                name,
                &json(&config),
                Some(&sealed),
                crate::util::now(),
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn connection(&self, name: &str) -> Result<ConnectionConfig, CredsError> {
        Ok(self.config(KIND_CONNECTION, name).await?.0)
    }

    pub(crate) async fn connection_names(&self) -> Result<Vec<String>, CredsError> {
        self.names(KIND_CONNECTION).await
    }

    /// Deletes a connection that no unrevoked lease needs: their users could not be
    /// dropped any more.
    pub(crate) async fn delete_connection(&self, name: &str) -> Result<bool, CredsError> {
        let needed = self.unrevoked_leases_of(name).await?;
        if needed > 0 {
            return Err(CredsError::Invalid(format!(
                "connection {name:?} has {needed} unrevoked lease(s); revoke them first \
                 (sys/leases/revoke-prefix/database/creds/ROLE)"
            )));
        }
        Ok(self.store.delete_engine_config(KIND_CONNECTION, name).await?)
    }

    /// How many unrevoked leases have users on connection `name`'s database.
    async fn unrevoked_leases_of(&self, name: &str) -> Result<usize, CredsError> {
        let live = self.store.leases_with_prefix("database/", true).await?;
        Ok(live
            .iter()
            .filter(|l| lease_data::<LeaseData>(l).is_ok_and(|d| d.db_name == name))
            .count())
    }

    /// Connects as the connection's root user. If the stored password is refused but a
    /// rotation was interrupted after the database took the new one, the new one is tried
    /// and, when it works, kept.
    async fn root(&self, name: &str) -> Result<(ConnectionConfig, Conn), CredsError> {
        let (config, row) = self.config::<ConnectionConfig>(KIND_CONNECTION, name).await?;
        let sealed = row.sealed.ok_or_else(|| CredsError::Invalid("no password stored".into()))?;
        let password = self.open(sealed, aad(KIND_CONNECTION, name)).await?;
        match connect(&config, &config.username, &password).await {
            Ok(conn) => Ok((config, conn)),
            Err(first) => {
                let Some(pending) = row.pending else { return Err(hide(first, &password)) };
                let new = self.open(pending, aad(KIND_CONNECTION, name)).await?;
                let conn = connect(&config, &config.username, &new)
                    .await
                    .map_err(|_| hide(first, &password))?;
                self.store
                    .promote_pending_secret(
                        KIND_CONNECTION,
                        name,
                        &json(&config),
                        crate::util::now(),
                    )
                    .await?;
                Ok((config, conn))
            }
        }
    }

    /// Rotates the root password: afterwards only Strongroom (through the HSM) knows it.
    pub(crate) async fn rotate_root(&self, name: &str) -> Result<(), CredsError> {
        let lock = self.rotation_lock(name);
        let _one_at_a_time = lock.lock().await;
        let _no_other_replica = self.store.exclusive(&rotation_key(name)).await?;
        let (mut config, mut conn) = self.root(name).await?;
        let new = config.password_policy.generate();
        let sealed = self.seal(&new, aad(KIND_CONNECTION, name)).await?;
        // Recorded before the database changes, so a crash in between loses nothing.
        self.store.set_pending_secret(KIND_CONNECTION, name, Some(&sealed)).await?;
        let vars = Vars { name: &config.username, password: Some(&new), expiration: None };
        let result = conn.run(&config.root_rotation(), &vars).await;
        conn.close().await;
        // On failure the new password stays pending: the database may have taken it all
        // the same (MySQL commits ALTER USER at once; an answer can be lost), and `root`
        // tries it when the stored one is refused.
        result.map_err(|e| hide(e, &new))?;
        let now = crate::util::now();
        config.root_rotated_at = Some(now);
        self.store.promote_pending_secret(KIND_CONNECTION, name, &json(&config), now).await?;
        Ok(())
    }

    pub(crate) async fn put_role(&self, name: &str, role: RoleConfig) -> Result<(), CredsError> {
        check_name("role name", name)?;
        if role.creation_statements.iter().all(|s| s.trim().is_empty()) {
            return Err(CredsError::Invalid("creation_statements are required".into()));
        }
        if role.default_ttl < 0 || role.max_ttl < 0 {
            return Err(CredsError::Invalid("default_ttl and max_ttl must not be negative".into()));
        }
        if role.max_ttl > 0 && role.default_ttl > role.max_ttl {
            return Err(CredsError::Invalid("default_ttl must not exceed max_ttl".into()));
        }
        super::password::username(role.username_template.as_deref(), name, "t", 63)
            .map_err(CredsError::Invalid)?;
        // Template mistakes show now, not at the first credential request, each list with
        // the variables it will be given: revocation has no password or expiration, and
        // renewal no password.
        let full = Vars { name: "v-sample", password: Some("pw"), expiration: Some(0) };
        let renew = Vars { password: None, ..full };
        let revoke = Vars { expiration: None, ..renew };
        let lists = [
            (&role.creation_statements, &full),
            (&role.rollback_statements, &full),
            (&role.renew_statements, &renew),
            (&role.revocation_statements, &revoke),
        ];
        for (statements, vars) in lists {
            for t in statements {
                super::database::render(t, vars)?;
            }
        }
        self.store
            .put_engine_config(KIND_ROLE, name, &json(&role), None, crate::util::now())
            .await?;
        Ok(())
    }

    pub(crate) async fn role(&self, name: &str) -> Result<RoleConfig, CredsError> {
        Ok(self.config(KIND_ROLE, name).await?.0)
    }

    pub(crate) async fn role_names(&self) -> Result<Vec<String>, CredsError> {
        self.names(KIND_ROLE).await
    }

    pub(crate) async fn delete_role(&self, name: &str) -> Result<bool, CredsError> {
        Ok(self.store.delete_engine_config(KIND_ROLE, name).await?)
    }

    /// Creates a user for `role_name` in its database, under a new lease. The lease is
    /// stored before the user exists, so a crash in between still ends in a revocation.
    pub(crate) async fn issue_db_creds(
        &self,
        role_name: &str,
        holder: super::Holder<'_>,
        display_name: &str,
    ) -> Result<IssuedDbCreds, CredsError> {
        let role = self.role(role_name).await?;
        let (config, mut conn) = self.root(&role.db_name).await?;
        if !config.allows(role_name) {
            conn.close().await;
            return Err(CredsError::Invalid(format!(
                "role {role_name:?} is not in the allowed_roles of connection {:?}",
                role.db_name
            )));
        }
        let username = super::password::username(
            role.username_template.as_deref(),
            role_name,
            display_name,
            config.flavor.max_username(),
        )
        .map_err(CredsError::Invalid)?;
        let password = config.password_policy.generate();
        let ttl = if role.default_ttl > 0 { role.default_ttl } else { DEFAULT_TTL };
        let max_ttl = if role.max_ttl > 0 { role.max_ttl } else { DEFAULT_MAX_TTL };
        let revocation = role.revocation(config.flavor);
        let data = LeaseData {
            db_name: role.db_name.clone(),
            role: role_name.to_owned(),
            username: username.clone(),
            revocation: Some(revocation.clone()),
        };
        let lease = self
            .new_lease(
                &format!("database/creds/{role_name}"),
                "database",
                &json(&data),
                ttl.min(max_ttl),
                max_ttl,
                holder,
            )
            .await?;
        let vars =
            Vars { name: &username, password: Some(&password), expiration: Some(lease.expires_at) };
        let created = conn.run(&role.creation_statements, &vars).await;
        if let Err(e) = created {
            // Undo what may exist; the reaper retries the revocation if this fails too.
            let undo = if role.rollback_statements.is_empty() {
                revocation
            } else {
                role.rollback_statements.clone()
            };
            let undone = conn.run(&undo, &vars).await.map_err(|u| hide(u, &password));
            conn.close().await;
            self.settle_undone(&lease.id, undone).await?;
            return Err(hide(e, &password));
        }
        // A revocation that ran while the user was being made (the lease's token revoked,
        // its prefix revoked, the reaper taking a lease shorter than the creation) found
        // no user to drop: it is dropped now, and the credentials are not given out.
        let after = self.lease(&lease.id).await?;
        if after.state != crate::store::lease_state::ACTIVE
            || after.next_attempt_at != after.expires_at
        {
            let undone = conn.run(&revocation, &vars).await.map_err(|u| hide(u, &password));
            conn.close().await;
            self.settle_undone(&lease.id, undone).await?;
            return Err(CredsError::NoLease(lease.id));
        }
        conn.close().await;
        Ok(IssuedDbCreds { username, password, lease })
    }

    /// Records the end of a lease whose user was dropped (or not) right after it was made:
    /// revoked, or due again for the reaper to retry.
    async fn settle_undone(
        &self,
        id: &str,
        undone: Result<(), CredsError>,
    ) -> Result<(), CredsError> {
        let now = crate::util::now();
        match undone {
            Ok(()) => self.store.mark_lease_revoked(id, now).await?,
            Err(u) => self.store.reopen_lease(id, &u.to_string(), now + 1).await?,
        }
        Ok(())
    }

    /// Removes a lease's user from its database.
    pub(crate) async fn revoke_db_user(&self, data: &LeaseData) -> Result<(), CredsError> {
        let (config, mut conn) = self.root(&data.db_name).await?;
        // The role's statements as they are now (so that a broken one can be fixed); once
        // the role is gone, as they were when the lease was issued, or else the defaults.
        let statements = match self.role(&data.role).await {
            Ok(role) => role.revocation(config.flavor),
            Err(CredsError::NotFound { .. }) => match &data.revocation {
                Some(kept) => kept.clone(),
                None => RoleConfig::default().revocation(config.flavor),
            },
            Err(e) => return Err(e),
        };
        let vars = Vars { name: &data.username, password: None, expiration: None };
        let result = conn.run(&statements, &vars).await;
        // Dropped, it logs in no more; its open sessions end too, as far as root may end
        // them (a failure is logged, not retried: the user is gone).
        if result.is_ok() {
            if let Err(e) = conn.end_sessions(&data.username).await {
                tracing::warn!(user = %data.username, error = %e, "ending a revoked user's sessions failed");
            }
        }
        conn.close().await;
        result
    }

    /// Extends a lease's user in its database (PostgreSQL's VALID UNTIL).
    pub(crate) async fn renew_db_user(
        &self,
        data: &LeaseData,
        until: i64,
    ) -> Result<(), CredsError> {
        // A deleted role's leases renew by the default statements, as they revoke.
        let role = match self.role(&data.role).await {
            Ok(role) => role,
            Err(CredsError::NotFound { .. }) => RoleConfig::default(),
            Err(e) => return Err(e),
        };
        let (config, mut conn) = self.root(&data.db_name).await?;
        let statements = role.renewal(config.flavor);
        let vars = Vars { name: &data.username, password: None, expiration: Some(until) };
        let result =
            if statements.is_empty() { Ok(()) } else { conn.run(&statements, &vars).await };
        conn.close().await;
        result
    }

    /// Creates or replaces a static role and rotates its password at once, so the role
    /// holds a password only Strongroom knows from the start.
    pub(crate) async fn put_static_role(
        &self,
        name: &str,
        mut role: StaticRoleConfig,
    ) -> Result<(), CredsError> {
        check_name("static role name", name)?;
        if role.rotation_period < 5 {
            return Err(CredsError::Invalid("rotation_period must be at least 5 seconds".into()));
        }
        if role.username.is_empty()
            || !role.username.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(CredsError::Invalid(
                "username must be 1 or more of A-Z a-z 0-9 _ - .".into(),
            ));
        }
        let config = self.connection(&role.db_name).await?;
        if !config.allows(name) {
            return Err(CredsError::Invalid(format!(
                "static role {name:?} is not in the allowed_roles of connection {:?}",
                role.db_name
            )));
        }
        // Its rotation would change the root password behind the connection's back (and
        // hand it out): rotate-root is for that.
        if role.username.eq_ignore_ascii_case(&config.username) {
            return Err(CredsError::Invalid(format!(
                "{:?} is connection {:?}'s own user; use rotate-root for it",
                role.username, role.db_name
            )));
        }
        role.last_rotated_at = None;
        self.rotate_static(name, Some(role)).await
    }

    /// Sets a new password for a static role's user (now, whatever its period).
    pub(crate) async fn rotate_static(
        &self,
        name: &str,
        new_role: Option<StaticRoleConfig>,
    ) -> Result<(), CredsError> {
        let db = match &new_role {
            Some(r) => r.db_name.clone(),
            None => self.config::<StaticRoleConfig>(KIND_STATIC_ROLE, name).await?.0.db_name,
        };
        let lock = self.rotation_lock(&db);
        let _one_at_a_time = lock.lock().await;
        let _no_other_replica = self.store.exclusive(&rotation_key(&db)).await?;
        // Read again under the lock: another rotation may have just stored its password.
        let mut role = match new_role {
            Some(r) => r,
            None => self.config::<StaticRoleConfig>(KIND_STATIC_ROLE, name).await?.0,
        };
        let (config, mut conn) = self.root(&role.db_name).await?;
        let password = config.password_policy.generate();
        let vars = Vars { name: &role.username, password: Some(&password), expiration: None };
        let result = conn.run(&role.rotation(config.flavor), &vars).await;
        conn.close().await;
        result.map_err(|e| hide(e, &password))?;
        let now = crate::util::now();
        role.last_rotated_at = Some(now);
        let sealed = self.seal(&password, aad(KIND_STATIC_ROLE, name)).await?;
        self.store
            .put_engine_config(KIND_STATIC_ROLE, name, &json(&role), Some(&sealed), now)
            .await?;
        Ok(())
    }

    pub(crate) async fn static_creds(&self, name: &str) -> Result<StaticCreds, CredsError> {
        let (role, row) = self.config::<StaticRoleConfig>(KIND_STATIC_ROLE, name).await?;
        let sealed = row.sealed.ok_or_else(|| CredsError::Invalid("no password yet".into()))?;
        let password = self.open(sealed, aad(KIND_STATIC_ROLE, name)).await?;
        let last = role.last_rotated_at.unwrap_or(0);
        let ttl =
            last.saturating_add(role.rotation_period).saturating_sub(crate::util::now()).max(0);
        Ok(StaticCreds {
            username: role.username,
            password,
            last_vault_rotation: role.last_rotated_at,
            rotation_period: role.rotation_period,
            ttl,
        })
    }

    pub(crate) async fn static_role(&self, name: &str) -> Result<StaticRoleConfig, CredsError> {
        Ok(self.config(KIND_STATIC_ROLE, name).await?.0)
    }

    pub(crate) async fn static_role_names(&self) -> Result<Vec<String>, CredsError> {
        self.names(KIND_STATIC_ROLE).await
    }

    pub(crate) async fn delete_static_role(&self, name: &str) -> Result<bool, CredsError> {
        Ok(self.store.delete_engine_config(KIND_STATIC_ROLE, name).await?)
    }

    /// Rotates every static role whose period has passed; returns how many were rotated.
    pub(crate) async fn rotate_due_static_roles(&self, now: i64) -> Result<usize, CredsError> {
        let mut n = 0;
        for row in self.store.engine_configs(KIND_STATIC_ROLE).await? {
            let Ok(role) = serde_json::from_str::<StaticRoleConfig>(&row.body) else { continue };
            if role.last_rotated_at.unwrap_or(0).saturating_add(role.rotation_period) > now {
                continue;
            }
            // One that failed waits (2 s doubling to 5 min) rather than stalling every tick.
            let retries = || self.static_retry.lock().unwrap_or_else(|e| e.into_inner());
            let failed = retries().get(&row.name).copied();
            if failed.is_some_and(|(_, next)| next > now) {
                continue;
            }
            match self.rotate_static(&row.name, None).await {
                Ok(()) => {
                    retries().remove(&row.name);
                    n += 1;
                }
                Err(e) => {
                    let attempts = failed.map_or(0, |(a, _)| a) + 1;
                    let next = now + super::leases::backoff(attempts);
                    retries().insert(row.name.clone(), (attempts, next));
                    tracing::warn!(role = %row.name, error = %e, attempts, "static role rotation failed");
                }
            }
        }
        Ok(n)
    }
}

/// The password a connection URL holds, if any: in its userinfo (`user:PASSWORD@host`) or
/// as a `password` query parameter, both of which the drivers read.
fn url_password(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let in_userinfo = authority
        .rsplit_once('@')
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password);
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    let in_query = query.split(['&', '#']).find_map(|p| p.strip_prefix("password="));
    in_userinfo.or(in_query)
}

/// What replicas lock while one of them changes a password through connection `db` (its
/// root's, or a static role's): two rotations at once could leave the store holding a
/// password the database no longer takes.
fn rotation_key(db: &str) -> String {
    format!("database-rotation/{db}")
}

/// Keeps a secret out of an error message that might echo it (a driver quoting a statement).
fn hide(e: CredsError, secret: &str) -> CredsError {
    let text = e.to_string();
    if !secret.is_empty() && text.contains(secret) {
        CredsError::Invalid(text.replace(secret, "[redacted]"))
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::url_password;

    #[test]
    fn passwords_are_found_in_urls() {
        let templated = "postgresql://{{username}}:{{password}}@127.0.0.1:5432/test";
        assert_eq!(url_password(templated), Some("{{password}}"));
        assert_eq!(url_password("mysql://root:s3cret@db:3306/app?x=a:b@c"), Some("s3cret"));
        assert_eq!(url_password("postgresql://root@db/app"), None);
        assert_eq!(url_password("postgresql://db/app?user=a:b@c"), None);
        assert_eq!(url_password("postgresql://u@db/app?sslmode=require&password=pw"), Some("pw"));
    }
}
