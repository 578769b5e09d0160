//! Why the gateway did not start or stopped badly.

use std::error::Error as StdError;

/// A failure of the gateway, with what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The configuration (or what it names, such as the subscribers CSV) is invalid.
    #[error(transparent)]
    Config(#[from] ispmux_conf::ConfError),
    /// A step of starting or stopping failed.
    #[error("{what}: {source}")]
    Step {
        /// The step, as an operator reads it ("starting port \"p0\"").
        what: String,
        /// Why.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// A step failed for a reason of its own.
    #[error("{0}")]
    Other(String),
}

/// Names the step an error happened in.
pub(crate) trait Step<T> {
    fn step(self, what: impl FnOnce() -> String) -> Result<T, GatewayError>;
}

impl<T, E: StdError + Send + Sync + 'static> Step<T> for Result<T, E> {
    fn step(self, what: impl FnOnce() -> String) -> Result<T, GatewayError> {
        self.map_err(|e| GatewayError::Step {
            what: what(),
            source: Box::new(e),
        })
    }
}
