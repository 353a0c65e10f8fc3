//! One error type for the whole program. Each variant is a kind of failure;
//! the HTTP layer maps kinds to statuses in one place (`http::respond`), the
//! command line prints the sentence.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller sent something we cannot accept (HTTP 400, CLI usage error).
    #[error("{0}")]
    BadRequest(String),
    /// A user, project or record that does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// No valid credentials where they are needed (401).
    #[error("authentication required")]
    Unauthorized,
    /// Valid credentials, but not enough access (403).
    #[error("{0}")]
    Forbidden(String),
    /// A duplicate (409).
    #[error("{0}")]
    Conflict(String),
    /// No representation the caller accepts (406).
    #[error("{0}")]
    NotAcceptable(String),
    /// The method is not one the URL supports (405); the value is the Allow list.
    #[error("method not allowed (allowed: {0})")]
    MethodNotAllowed(&'static str),
    /// Too many failed logins (429); seconds to wait.
    #[error("too many failed logins; try again in {0} seconds")]
    TooManyRequests(u64),
    /// A body of a type the URL does not take (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Too much work waiting already (503); seconds to wait.
    #[error("the server is busy checking other logins; try again in {0} seconds")]
    Busy(u64),
    /// As many searches, formats and streams are running as the server
    /// takes at once (503); seconds to wait.
    #[error("the server is answering as many searches and downloads as it takes at once; try again in {0} seconds")]
    Crowded(u64),
    /// The database server is not answering, or lost the connection (503):
    /// the request may be tried again.
    #[error("{0}")]
    Unavailable(String),
    /// The database file is missing, corrupt or of a newer version.
    #[error("{0}")]
    Database(String),
    /// The request's work was stopped (SPEC 7.6): past its deadline, its
    /// client gone, or the server stopping (503).
    #[error("{0}")]
    Stopped(crate::deadline::Stop),
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<rusqlite::Error> for Error {
    /// SQLite interrupted by the progress handler: the work's budget said
    /// stop (`crate::deadline`), and why is asked of it.
    fn from(e: rusqlite::Error) -> Error {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) {
            return Error::Stopped(crate::deadline::reason());
        }
        Error::Sqlite(e)
    }
}

impl Error {
    pub fn bad(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::NotFound(msg.into())
    }
}
