//! The database secrets engine: connections to PostgreSQL and MariaDB/MySQL (root password
//! sealed by the HSM), dynamic roles whose users exist only for a lease, static roles whose
//! password is rotated on a period, and root rotation. The SQL sent to those databases comes
//! from the role's templates; it never touches Strongroom's own store.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection as _};

use super::password::PasswordPolicy;
use super::CredsError;

/// How long connecting to a managed database may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which SQL dialect a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Flavor {
    Postgres,
    Mysql,
}

impl Flavor {
    /// The flavor for a Vault-style plugin name.
    pub(crate) fn from_plugin(name: &str) -> Option<Flavor> {
        match name {
            "postgresql-database-plugin" | "postgresql" | "postgres" => Some(Flavor::Postgres),
            "mysql-database-plugin" | "mysql" | "mariadb" | "mariadb-database-plugin" => {
                Some(Flavor::Mysql)
            }
            _ => None,
        }
    }

    /// Longest username the database takes (MySQL before 5.7.8 allowed 16; MariaDB 80).
    pub(crate) fn max_username(self) -> usize {
        match self {
            Flavor::Postgres => 63,
            Flavor::Mysql => 32,
        }
    }

    fn default_revocation(self) -> &'static str {
        match self {
            // Idempotent (a retry after a partial revocation, or an undo after a creation
            // that rolled back, finds nothing to do), and ends the user's sessions: a
            // revoked credential must stop working now. A root that may not end them
            // (neither superuser nor in pg_signal_backend) still drops the role, with a
            // warning, rather than failing the revocation for as long as they last.
            Flavor::Postgres => {
                "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{{name}}') THEN \
                 BEGIN PERFORM pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE usename = '{{name}}'; EXCEPTION WHEN insufficient_privilege THEN \
                 RAISE WARNING 'cannot end the sessions of %', '{{name}}'; END; \
                 REASSIGN OWNED BY \"{{name}}\" TO CURRENT_USER; DROP OWNED BY \"{{name}}\"; \
                 DROP ROLE \"{{name}}\"; END IF; END $$;"
            }
            Flavor::Mysql => "DROP USER IF EXISTS '{{name}}'@'%';",
        }
    }

    fn default_renew(self) -> Option<&'static str> {
        match self {
            Flavor::Postgres => Some("ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}';"),
            Flavor::Mysql => None,
        }
    }

    fn default_root_rotation(self) -> &'static str {
        match self {
            Flavor::Postgres => "ALTER ROLE \"{{username}}\" WITH PASSWORD '{{password}}';",
            // Not `ALTER USER CURRENT_USER()`: MariaDB 10.11 accepts it and changes nothing.
            // A root user on another host than '%' sets root_rotation_statements.
            Flavor::Mysql => "ALTER USER '{{username}}'@'%' IDENTIFIED BY '{{password}}';",
        }
    }

    fn default_static_rotation(self) -> &'static str {
        match self {
            Flavor::Postgres => "ALTER ROLE \"{{name}}\" WITH PASSWORD '{{password}}';",
            Flavor::Mysql => "ALTER USER '{{name}}'@'%' IDENTIFIED BY '{{password}}';",
        }
    }
}

/// A configured connection (`/v1/database/config/NAME`), without its password.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ConnectionConfig {
    pub(crate) plugin_name: String,
    pub(crate) flavor: Flavor,
    /// `postgresql://{{username}}:{{password}}@HOST:PORT/DB` or `mysql://...`.
    pub(crate) connection_url: String,
    pub(crate) username: String,
    pub(crate) allowed_roles: Vec<String>,
    pub(crate) root_rotation_statements: Vec<String>,
    pub(crate) password_policy: PasswordPolicy,
    /// When the root password was last rotated by Strongroom (None: as configured).
    pub(crate) root_rotated_at: Option<i64>,
}

impl ConnectionConfig {
    /// Whether `role` may use this connection (`*` allows every role).
    pub(crate) fn allows(&self, role: &str) -> bool {
        self.allowed_roles.iter().any(|r| r == "*" || r == role)
    }

    pub(crate) fn root_rotation(&self) -> Vec<String> {
        statements_or(&self.root_rotation_statements, self.flavor.default_root_rotation())
    }
}

/// A dynamic role (`/v1/database/roles/NAME`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct RoleConfig {
    pub(crate) db_name: String,
    pub(crate) creation_statements: Vec<String>,
    pub(crate) revocation_statements: Vec<String>,
    pub(crate) renew_statements: Vec<String>,
    pub(crate) rollback_statements: Vec<String>,
    pub(crate) default_ttl: i64,
    pub(crate) max_ttl: i64,
    pub(crate) username_template: Option<String>,
}

/// A static role (`/v1/database/static-roles/NAME`): an existing user whose password
/// Strongroom rotates every `rotation_period` seconds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct StaticRoleConfig {
    pub(crate) db_name: String,
    pub(crate) username: String,
    pub(crate) rotation_period: i64,
    pub(crate) rotation_statements: Vec<String>,
    pub(crate) last_rotated_at: Option<i64>,
}

/// What a lease on a database credential needs for its renewal and revocation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LeaseData {
    pub(crate) db_name: String,
    pub(crate) role: String,
    pub(crate) username: String,
    /// The role's revocation statements when the lease was issued, used once the role is
    /// deleted (rather than the defaults, which may not drop what the role made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) revocation: Option<Vec<String>>,
}

/// Values the statement templates may use.
pub(crate) struct Vars<'a> {
    pub(crate) name: &'a str,
    pub(crate) password: Option<&'a str>,
    /// Unix seconds, rendered as `YYYY-MM-DD HH:MM:SS+00:00`.
    pub(crate) expiration: Option<i64>,
}

fn statements_or(given: &[String], default: &str) -> Vec<String> {
    if given.iter().all(|s| s.trim().is_empty()) {
        vec![default.to_owned()]
    } else {
        given.to_vec()
    }
}

impl RoleConfig {
    pub(crate) fn revocation(&self, flavor: Flavor) -> Vec<String> {
        statements_or(&self.revocation_statements, flavor.default_revocation())
    }

    pub(crate) fn renewal(&self, flavor: Flavor) -> Vec<String> {
        match flavor.default_renew() {
            Some(d) => statements_or(&self.renew_statements, d),
            None => self.renew_statements.clone(),
        }
    }
}

impl StaticRoleConfig {
    pub(crate) fn rotation(&self, flavor: Flavor) -> Vec<String> {
        statements_or(&self.rotation_statements, flavor.default_static_rotation())
    }
}

/// Fills a template's `{{name}}` (or `{{username}}`), `{{password}}` and `{{expiration}}`.
pub(crate) fn render(template: &str, vars: &Vars<'_>) -> Result<String, CredsError> {
    let mut out = template.replace("{{name}}", vars.name).replace("{{username}}", vars.name);
    if let Some(p) = vars.password {
        out = out.replace("{{password}}", p);
    }
    if let Some(e) = vars.expiration {
        let t = time::OffsetDateTime::from_unix_timestamp(e)
            .map_err(|_| CredsError::Template("expiration out of range".into()))?;
        let fmt = time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]+00:00"
        );
        let text = t.format(&fmt).map_err(|e| CredsError::Template(e.to_string()))?;
        out = out.replace("{{expiration}}", &text);
    }
    if let Some(i) = out.find("{{") {
        let end = out[i..].find("}}").map_or(out.len(), |e| i + e + 2);
        // At most 40 bytes of it, cut on a character boundary.
        let mut cut = end.min(i + 40);
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        return Err(CredsError::Template(format!(
            "unknown or unavailable template variable {} (known: {{{{name}}}}, {{{{username}}}}, \
             {{{{password}}}}, {{{{expiration}}}})",
            &out[i..cut]
        )));
    }
    Ok(out)
}

/// Splits a template into statements at `;` outside quotes (`'…'`, `"…"`, `` `…` ``) and
/// PostgreSQL's `$$…$$` bodies.
pub(crate) fn split_statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek() == Some(&'$') && matches!(quote, None | Some('$')) {
            chars.next();
            quote = if quote.is_none() { Some('$') } else { None };
            cur.push_str("$$");
            continue;
        }
        match (quote, c) {
            (None, ';') => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_owned());
                }
                cur.clear();
                continue;
            }
            (None, '\'' | '"' | '`') => quote = Some(c),
            (Some(q), c) if c == q && q != '$' => quote = None,
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

/// Percent-encodes a URL userinfo part.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An open connection to a managed database.
pub(crate) enum Conn {
    Pg(PgConnection),
    My(MySqlConnection),
}

/// Connects as `username`/`password` to the database `config` names.
pub(crate) async fn connect(
    config: &ConnectionConfig,
    username: &str,
    password: &str,
) -> Result<Conn, CredsError> {
    let url = config
        .connection_url
        .replace("{{username}}", &url_encode(username))
        .replace("{{password}}", &url_encode(password));
    let bad_url = |e: sqlx::Error| CredsError::BadUrl(e.to_string());
    let connecting = async {
        Ok(match config.flavor {
            Flavor::Postgres => {
                let mut o = PgConnectOptions::from_str(&url).map_err(bad_url)?;
                if !config.connection_url.contains("{{username}}") {
                    o = o.username(username).password(password);
                }
                Conn::Pg(o.disable_statement_logging().connect().await?)
            }
            Flavor::Mysql => {
                let mut o = MySqlConnectOptions::from_str(&url).map_err(bad_url)?;
                if !config.connection_url.contains("{{username}}") {
                    o = o.username(username).password(password);
                }
                Conn::My(o.disable_statement_logging().connect().await?)
            }
        })
    };
    tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| CredsError::Unreachable("connection timed out".into()))?
}

impl Conn {
    /// Runs every statement of `templates` (rendered with `vars`) in one transaction.
    pub(crate) async fn run(
        &mut self,
        templates: &[String],
        vars: &Vars<'_>,
    ) -> Result<(), CredsError> {
        let mut statements = Vec::new();
        for t in templates {
            statements.extend(split_statements(&render(t, vars)?));
        }
        match self {
            Conn::Pg(c) => {
                let mut tx = c.begin().await?;
                for s in statements {
                    sqlx::raw_sql(AssertSqlSafe(s)).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            // MySQL commits DDL implicitly; the transaction still groups the rest.
            Conn::My(c) => {
                let mut tx = c.begin().await?;
                for s in statements {
                    sqlx::raw_sql(AssertSqlSafe(s)).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Ends `user`'s open sessions on MySQL and MariaDB, where DROP USER leaves them
    /// working (PostgreSQL's default revocation ends them itself). Needs the PROCESS and
    /// CONNECTION_ADMIN (or SUPER) privileges; sessions that end meanwhile are skipped.
    pub(crate) async fn end_sessions(&mut self, user: &str) -> Result<(), CredsError> {
        let Conn::My(c) = self else { return Ok(()) };
        // Signed on MariaDB, unsigned on MySQL.
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT CAST(ID AS SIGNED) FROM information_schema.PROCESSLIST WHERE USER = ?",
        )
        .bind(user)
        .fetch_all(&mut *c)
        .await?;
        for id in ids {
            match sqlx::raw_sql(AssertSqlSafe(format!("KILL CONNECTION {id}")))
                .execute(&mut *c)
                .await
            {
                Ok(_) => {}
                // ER_NO_SUCH_THREAD: it ended on its own.
                Err(sqlx::Error::Database(e))
                    if e.code().as_deref() == Some("HY000")
                        && e.message().contains("Unknown thread id") => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    pub(crate) async fn close(self) {
        let _ = match self {
            Conn::Pg(c) => c.close().await,
            Conn::My(c) => c.close().await,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_outside_quotes() {
        let s = split_statements("CREATE ROLE \"a;b\" PASSWORD 'x;y'; GRANT x TO `c;d`;\n;");
        assert_eq!(s, ["CREATE ROLE \"a;b\" PASSWORD 'x;y'", "GRANT x TO `c;d`"]);
        let s = split_statements("DO $$ BEGIN A; B$1; END $$; SELECT '$$;'");
        assert_eq!(s, ["DO $$ BEGIN A; B$1; END $$", "SELECT '$$;'"]);
    }

    #[test]
    fn templates_render_or_name_the_unknown_variable() {
        let vars = Vars { name: "v-ro-abc", password: Some("pw"), expiration: Some(0) };
        assert_eq!(
            render(
                "CREATE ROLE \"{{name}}\" PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'",
                &vars
            )
            .unwrap(),
            "CREATE ROLE \"v-ro-abc\" PASSWORD 'pw' VALID UNTIL '1970-01-01 00:00:00+00:00'"
        );
        let e = render("{{nmae}}", &vars).unwrap_err().to_string();
        assert!(e.contains("{{nmae}}"), "{e}");
        let no_password = Vars { name: "u", password: None, expiration: None };
        assert!(render("{{password}}", &no_password).is_err());
        // The message is cut on a character boundary, not through one.
        let e = render(&format!("{{{{a{}}}}}", "é".repeat(30)), &vars).unwrap_err();
        assert!(e.to_string().contains("{{aé"), "{e}");
    }

    #[test]
    fn userinfo_is_percent_encoded() {
        assert_eq!(url_encode("a b@c:d/é"), "a%20b%40c%3Ad%2F%C3%A9");
    }
}
