//! Helpers for SQL that runs on both backends through sqlx's `Any` driver.

use std::fmt::Write as _;

use sqlx::any::{AnyArguments, AnyTypeInfo, AnyValueRef};
use sqlx::error::BoxDynError;
use sqlx::query::{Query, QueryAs};
use sqlx::{Any, Arguments, AssertSqlSafe, Decode, Encode, FromRow, Type};

use super::StoreError;

/// Most parameters in one multi-row statement: many rows to a round trip, far below
/// SQLite's limit (32766), and a statement text sqlx's cache can keep.
const PARAMS_PER_STATEMENT: usize = 1024;

/// Inserts `rows` with `head` (`INSERT INTO t (columns) VALUES `), many rows to a
/// statement; `each` binds a row's `params` values.
pub(super) async fn insert_rows<R>(
    conn: &mut sqlx::AnyConnection,
    head: &str,
    params: usize,
    rows: &[R],
    mut each: impl FnMut(&mut Row<'_>, &R),
) -> Result<(), StoreError> {
    for chunk in statement_chunks(rows, params) {
        let mut q = Sql::for_conn(head, conn);
        q.values(chunk, &mut each);
        q.query()?.execute(&mut *conn).await?;
    }
    Ok(())
}

/// `rows` of `params` parameters each, as many to a statement as [`PARAMS_PER_STATEMENT`]
/// allows.
fn statement_chunks<R>(rows: &[R], params: usize) -> std::slice::Chunks<'_, R> {
    rows.chunks((PARAMS_PER_STATEMENT / params).max(1))
}

/// Statements that commit together, sent in as few round trips as the database allows:
/// one query holding them all. On SQLite that is the whole transaction
/// (`BEGIN IMMEDIATE; …; COMMIT`), which its connection's worker thread runs in one go; a
/// transaction run statement by statement crosses to that thread and back for each
/// statement, its BEGIN and its COMMIT, each crossing two thread wake-ups. PostgreSQL takes
/// one statement with parameters per message: there they become the data-modifying
/// common table expressions of one statement (`WITH b0 AS (…), b1 AS (…) SELECT 1`), atomic
/// on its own, one network round trip in place of one per statement plus BEGIN and COMMIT.
///
/// The statements must not depend on each other's writes: PostgreSQL runs such
/// expressions against one snapshot, in no set order (foreign keys are checked at the end,
/// so rows may refer to rows inserted beside them). The one exception is a guard
/// ([`Batch::guard`]), whose returned rows the inserts after it read.
pub(super) struct Batch {
    sqlite: bool,
    /// Whether the commit waits for the disk (see [`Batch::without_flush`]).
    durable: bool,
    /// Whether the first statement is a guard (see [`Batch::guard`]).
    guarded: bool,
    /// Every statement so far, joined; `None` before the first.
    sql: Option<Sql>,
    statements: usize,
}

impl Batch {
    pub(super) fn new(sqlite: bool) -> Batch {
        Batch { sqlite, durable: true, guarded: false, sql: None, statements: 0 }
    }

    /// Commits without waiting for the disk: SQLite's `synchronous = NORMAL` for this
    /// transaction, PostgreSQL's `synchronous_commit = off`. A crash of the process loses
    /// nothing and a power loss leaves a consistent database, but may lose this commit.
    /// Only for rows a client can make again, such as an ACME order before it is
    /// finalized. The log is flushed in order, so a durable commit after this one makes
    /// it durable too (an issued certificate never outlives its order). For
    /// [`Batch::commit`]; [`Batch::commit_after`] (the writer's) always waits.
    pub(super) fn without_flush(mut self) -> Batch {
        self.durable = false;
        self
    }

    /// A batch for the database `conn` is connected to.
    pub(super) fn for_conn(conn: &sqlx::AnyConnection) -> Batch {
        Batch::new(is_sqlite(conn))
    }

    /// Adds a statement: `text`, then what the caller pushes and binds on the result.
    pub(super) fn add(&mut self, text: &str) -> &mut Sql {
        let n = self.statements;
        self.statements += 1;
        let sqlite = self.sqlite;
        let sql = self.sql.get_or_insert_with(|| Sql { anonymous: sqlite, ..Sql::default() });
        match (sqlite, n) {
            (true, 0) => {}
            (true, _) => {
                sql.push(";\n");
            }
            (false, 0) => {
                sql.push("WITH b0 AS (");
            }
            (false, _) => {
                sql.push(&format!("),\nb{n} AS ("));
            }
        }
        sql.push(text)
    }

    /// Starts the batch with its guard, a data-modifying statement with `RETURNING`
    /// (PostgreSQL only): the inserts added after it insert their rows only if it returned
    /// one, and [`Batch::commit`] says whether it did. A write that must use something up
    /// (an ACME nonce) takes it so, in the same statement.
    pub(super) fn guard(&mut self, text: &str) -> &mut Sql {
        let first = self.statements == 0 && !self.sqlite;
        self.guarded = true;
        let sql = self.add(text);
        if !first {
            sql.error.get_or_insert("a guard must be the first statement, on PostgreSQL".into());
        }
        sql
    }

    /// Adds inserts of `rows` as [`insert_rows`] makes them (`head` ends with `VALUES `);
    /// after a guard, as `INSERT … SELECT` of those rows when the guard returned one.
    pub(super) fn insert_rows<R>(
        &mut self,
        head: &str,
        params: usize,
        rows: &[R],
        mut each: impl FnMut(&mut Row<'_>, &R),
    ) {
        for chunk in statement_chunks(rows, params) {
            if !self.guarded {
                self.add(head).values(chunk, &mut each);
                continue;
            }
            let Some(into) = head.strip_suffix("VALUES ") else {
                let sql = self.add(head);
                sql.error.get_or_insert("a guarded insert's head must end with VALUES".into());
                continue;
            };
            let sql = self.add(into);
            sql.push("SELECT * FROM (VALUES ");
            sql.values(chunk, &mut each);
            sql.push(") AS v WHERE EXISTS (SELECT 1 FROM b0)");
        }
    }

    /// The one query, closed: with COMMIT after it on SQLite, the main query on PostgreSQL
    /// (its column `passed` counts the guard's rows).
    fn finish(self) -> Option<Sql> {
        let mut sql = self.sql?;
        if self.sqlite {
            sql.push(";\nCOMMIT");
            return Some(sql);
        }
        sql.push(match self.guarded {
            true => ")\nSELECT (SELECT COUNT(*) FROM b0) AS passed",
            false => ")\nSELECT 1 AS passed",
        });
        if !self.durable {
            // The statement is its own transaction: a setting local to it is what its
            // commit goes by.
            sql.push(", set_config('synchronous_commit', 'off', true)");
        }
        Some(sql)
    }

    /// Runs the statements in one transaction on `conn`; false if the batch has a guard
    /// and it returned no row (then nothing was written). A caller must not drop this
    /// future half-way on SQLite (the transaction would stay open on the connection):
    /// [`super::Store::commit`] runs it in a task of its own.
    pub(super) async fn commit(self, conn: &mut sqlx::AnyConnection) -> Result<bool, StoreError> {
        use sqlx::Row as _;
        let (sqlite, durable) = (self.sqlite, self.durable);
        let Some(mut sql) = self.finish() else { return Ok(true) };
        if !sqlite {
            let row = sql.query()?.fetch_one(&mut *conn).await?;
            return Ok(row.try_get::<i64, _>("passed")? > 0);
        }
        // The prefix has no parameters, so the `?` placeholders keep their order.
        if durable {
            sql.text.insert_str(0, "BEGIN IMMEDIATE;\n");
            return run_sqlite(conn, sql).await.map(|()| true);
        }
        // SQLite's setting belongs to the connection and cannot change inside a
        // transaction: set before BEGIN, and set back after COMMIT or a failure.
        sql.text.insert_str(0, "PRAGMA synchronous = NORMAL;\nBEGIN IMMEDIATE;\n");
        sql.push(";\nPRAGMA synchronous = FULL");
        let done = run_sqlite(conn, sql).await;
        if done.is_err() {
            sqlx::query("PRAGMA synchronous = FULL").execute(&mut *conn).await?;
        }
        done.map(|()| true)
    }

    /// Like [`Batch::commit`], with `lead` first, a statement that returns the row `fill`
    /// needs to add the rest (the audit chain's head, which it also locks). Two round
    /// trips on SQLite (BEGIN with `lead`, then the statements with COMMIT), four on
    /// PostgreSQL (BEGIN, `lead`, the statements, COMMIT).
    pub(super) async fn commit_after<O>(
        mut self,
        conn: &mut sqlx::AnyConnection,
        lead: &'static str,
        fill: impl FnOnce(O, &mut Batch),
    ) -> Result<(), StoreError>
    where
        O: for<'r> FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    {
        if !self.sqlite {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            let row = sqlx::query_as(lead).fetch_one(&mut *tx).await?;
            fill(row, &mut self);
            if let Some(sql) = self.finish() {
                sql.query()?.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            return Ok(());
        }
        let text = AssertSqlSafe(format!("BEGIN IMMEDIATE;\n{lead}"));
        // Every row is read, so that the statement has run to its end.
        let rows = sqlx::query_as(text).fetch_all(&mut *conn).await.map_err(StoreError::from);
        match rows.and_then(|r| r.into_iter().next().ok_or(sqlx::Error::RowNotFound.into())) {
            Ok(row) => fill(row, &mut self),
            Err(e) => return Err(rollback(conn, e).await),
        }
        let sql = self.finish().unwrap_or_else(|| Sql::new("COMMIT"));
        run_sqlite(conn, sql).await
    }
}

/// Runs `sql`, a transaction's statements through its COMMIT (SQLite), undoing the
/// transaction if one fails.
async fn run_sqlite(conn: &mut sqlx::AnyConnection, sql: Sql) -> Result<(), StoreError> {
    let done = match sql.query() {
        Ok(q) => q.execute(&mut *conn).await.map_err(StoreError::from),
        Err(e) => Err(e),
    };
    match done {
        Ok(_) => Ok(()),
        Err(e) => Err(rollback(conn, e).await),
    }
}

/// Undoes an SQLite transaction that `error` stopped half-way (the failed statement
/// ended the query), and returns the error. An error that ended the transaction already
/// makes this ROLLBACK fail, which is of no concern.
async fn rollback(conn: &mut sqlx::AnyConnection, error: StoreError) -> StoreError {
    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
    error
}

fn is_sqlite(conn: &sqlx::AnyConnection) -> bool {
    conn.backend_name() == <sqlx::Sqlite as sqlx::Database>::NAME
}

/// A statement built at run time with `$N` parameters, which both SQLite and PostgreSQL
/// accept (sqlx's own query builder writes `?` for the `Any` driver, which PostgreSQL
/// refuses).
#[derive(Default)]
pub(super) struct Sql {
    text: String,
    args: AnyArguments,
    error: Option<BoxDynError>,
    /// Whether placeholders are `?` (bound in order) rather than `$N`.
    anonymous: bool,
}

impl Sql {
    pub(super) fn new(text: &str) -> Sql {
        Sql { text: text.to_owned(), ..Sql::default() }
    }

    /// [`Sql::new`] for a statement that will run on `conn`, with `?` placeholders when
    /// that is SQLite: sqlx looks up the name of every numbered parameter, which SQLite
    /// finds by a linear scan, so binding many `$N` costs the square of their count (3000
    /// audit records in one statement took longer than their disk flush). Only for text
    /// whose every parameter is written by [`Sql::bind`].
    pub(super) fn for_conn(text: &str, conn: &sqlx::AnyConnection) -> Sql {
        Sql { anonymous: is_sqlite(conn), ..Sql::new(text) }
    }

    pub(super) fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    /// Appends a parameter placeholder bound to `value`.
    pub(super) fn bind<T>(&mut self, value: T) -> &mut Sql
    where
        T: Encode<'static, Any> + Type<Any>,
    {
        if let Err(e) = self.args.add(value) {
            self.error.get_or_insert(e);
        }
        match self.anonymous {
            true => self.text.push('?'),
            false => {
                let _ = write!(self.text, "${}", self.args.len());
            }
        }
        self
    }

    /// Appends `(p, p, ...), (p, ...)`: one parenthesised group per row, each filled by
    /// `each` with `bind` calls (separators are added here).
    pub(super) fn values<R>(&mut self, rows: &[R], mut each: impl FnMut(&mut Row<'_>, &R)) {
        for (i, r) in rows.iter().enumerate() {
            self.push(if i == 0 { "(" } else { ", (" });
            each(&mut Row { sql: self, first: true }, r);
            self.push(")");
        }
    }

    fn into_parts(self) -> Result<(AssertSqlSafe<String>, AnyArguments), StoreError> {
        match self.error {
            Some(e) => Err(StoreError::Sqlx(sqlx::Error::Encode(e))),
            None => Ok((AssertSqlSafe(self.text), self.args)),
        }
    }

    pub(super) fn query(self) -> Result<Query<'static, Any, AnyArguments>, StoreError> {
        let (text, args) = self.into_parts()?;
        Ok(sqlx::query_with(text, args))
    }

    pub(super) fn query_as<O>(self) -> Result<QueryAs<'static, Any, O, AnyArguments>, StoreError>
    where
        O: for<'r> FromRow<'r, sqlx::any::AnyRow>,
    {
        let (text, args) = self.into_parts()?;
        Ok(sqlx::query_as_with(text, args))
    }
}

/// One row's group in [`Sql::values`].
pub(super) struct Row<'a> {
    sql: &'a mut Sql,
    first: bool,
}

impl Row<'_> {
    pub(super) fn bind<T>(&mut self, value: T) -> &mut Self
    where
        T: Encode<'static, Any> + Type<Any>,
    {
        if !std::mem::take(&mut self.first) {
            self.sql.push(", ");
        }
        self.sql.bind(value);
        self
    }
}

/// A 0/1 flag column, read into a `bool` field with `#[sqlx(try_from = "Flag")]`: both
/// backends store flags as integers, and the `Any` driver decodes only real booleans as
/// `bool`.
pub(crate) struct Flag(i64);

impl Type<Any> for Flag {
    fn type_info() -> AnyTypeInfo {
        <i64 as Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        <i64 as Type<Any>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Any> for Flag {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Flag(<i64 as Decode<'r, Any>>::decode(value)?))
    }
}

impl From<Flag> for bool {
    fn from(f: Flag) -> bool {
        f.0 != 0
    }
}

/// A flag as stored.
pub(super) fn flag(b: bool) -> i64 {
    i64::from(b)
}
