//! An inline label (`logistics_provider.label_base64`): decoded, hashed and
//! named for the label store.

use std::fmt;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::domain::{OrderNumber, StoredLabel};

/// An inline label's bytes, decoded when the request is parsed. Its `Debug`
/// shows only the size: a label is up to a few megabytes.
#[derive(Clone, PartialEq, Eq)]
pub struct LabelBytes(pub Vec<u8>);

impl fmt::Debug for LabelBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LabelBytes({} bytes)", self.0.len())
    }
}

/// The label's bytes; MIME-style line breaks are allowed, padding is not
/// optional. The error says what is wrong, for the 400.
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    let compact: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|err| format!("must be base64 text ({err})"))
}

/// Where the label is stored and what it is: one object per order and content,
/// so a retry stores the same object and a conflicting order never replaces it.
#[must_use]
pub fn describe(order_number: &OrderNumber, bytes: &[u8]) -> StoredLabel {
    let sha256 = crate::hex::encode(&Sha256::digest(bytes));
    StoredLabel {
        key: format!("labels/{order_number}/{sha256}"),
        bytes: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
        sha256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_is_named_by_its_order_and_content() {
        let number = OrderNumber::parse("o-1").unwrap();
        let bytes = decode("JVBER\r\ni0=").unwrap();
        assert_eq!(bytes, b"%PDF-");
        let stored = describe(&number, &bytes);
        assert_eq!(stored.bytes, 5);
        assert_eq!(stored.key, format!("labels/o-1/{}", stored.sha256));
        assert_eq!(stored.sha256.len(), 64);
        assert!(decode("JVBERi0").is_err(), "padding is required");
    }
}
