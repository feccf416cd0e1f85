//! Storage errors. Messages name tables and paths, never key contents: keys
//! hold ID numbers, and these messages reach logs.

use std::path::PathBuf;

use thiserror::Error;

pub type StorageResult<T> = Result<T, StorageError>;

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("store at {path} is locked by another process (is another popbase running on this data dir?)")]
    Locked { path: PathBuf },
    #[error("store at {path} is corrupt: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("store at {path} belongs to '{found}', not '{expected}'")]
    WrongStore { path: PathBuf, expected: String, found: String },
    #[error("value in table '{table}' cannot be decoded: {detail}")]
    Decode { table: String, detail: String },
    #[error("concurrent change in table '{table}': expected version {expected:?}, found {found:?}")]
    Conflict {
        table: String,
        expected: Option<u64>,
        found: Option<u64>,
    },
    #[error("table '{0}' is not part of this store's schema")]
    UnknownTable(String),
    #[error("malformed key: {0}")]
    Key(#[from] crate::keys::KeyError),
    #[error("io error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("rocksdb: {0}")]
    Engine(String),
}

impl StorageError {
    /// A stored value of `table` that cannot be read as its message.
    pub fn decode(table: &str, detail: impl std::fmt::Display) -> Self {
        StorageError::Decode {
            table: table.to_string(),
            detail: detail.to_string(),
        }
    }

    /// Classifies a RocksDB error raised while working on the store at `path`.
    pub(crate) fn from_engine(path: &std::path::Path, err: rocksdb::Error) -> Self {
        let text = err.to_string();
        match err.kind() {
            rocksdb::ErrorKind::Corruption => StorageError::Corrupt {
                path: path.to_path_buf(),
                detail: text,
            },
            rocksdb::ErrorKind::IOError if text.contains("lock") => StorageError::Locked { path: path.to_path_buf() },
            _ => StorageError::Engine(text),
        }
    }
}
