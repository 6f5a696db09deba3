//! Every way a request can be refused, and the status each one maps to.

/// A request the server refuses. [`HttpError::status`] gives the status code
/// to answer with, or `None` when the connection is closed without a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("placeholder")]
    Placeholder,
}

impl HttpError {
    /// The status code to answer with; `None` means close silently.
    pub fn status(&self) -> Option<u16> {
        todo!()
    }
}
