//! Errors of the store layer.

#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("database error: {0}")]
    Sqlx(#[source] sqlx::Error),
    /// The caller's input, which this database cannot hold: not a fault of the store.
    #[error("{0}")]
    Unstorable(&'static str),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the store's writer task has stopped")]
    WriterStopped,
    #[error("the store is closed")]
    Closed,
    #[error("a store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("object {0} was changed concurrently")]
    Conflict(String),
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("{0}")]
    Tool(String),
    #[error("stored data is not as written: {0}")]
    Corrupt(String),
    #[error("stored attribute {name} of {object_id} is not valid TTLV: {source}")]
    CorruptAttribute {
        object_id: String,
        name: String,
        #[source]
        source: kmip::ttlv::DecodeError,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        // PostgreSQL refuses what SQLite stores: text containing U+0000 (SQLSTATE 22021,
        // character not in repertoire) and index entries over about 2.7 kB (54000, program
        // limit exceeded: a custom attribute's name of kilobytes, say; values are indexed by
        // their first 200 characters). Both come from a client.
        if let sqlx::Error::Database(db) = &e {
            match db.code().as_deref() {
                Some("22021") => {
                    return StoreError::Unstorable("text containing U+0000 (NUL) is not accepted")
                }
                Some("54000") => return StoreError::Unstorable("a value is too large to index"),
                _ => {}
            }
        }
        StoreError::Sqlx(e)
    }
}

impl StoreError {
    /// Whether the caller's input, not the store, is at fault.
    pub(crate) fn is_input(&self) -> bool {
        matches!(self, StoreError::Unstorable(_))
    }
}
