//! Errors of the store layer.

#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
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
