//! The system's randomness, for the keys and secrets the service issues.

/// No system randomness: nothing can be issued.
#[derive(Debug, thiserror::Error)]
#[error("no system randomness: {0}")]
pub struct RandomnessError(pub String);

/// Fills `buffer` from the system's randomness.
pub fn fill(buffer: &mut [u8]) -> Result<(), RandomnessError> {
    getrandom::fill(buffer).map_err(|err| RandomnessError(err.to_string()))
}
