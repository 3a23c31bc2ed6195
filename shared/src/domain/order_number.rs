use std::fmt;

use serde::{Deserialize, Serialize};

/// The upstream order number (`package.order_number`): the table key and the
/// idempotency key of an order.
///
/// Spec 000 forbids special characters; we allow ASCII letters, digits, `-` and
/// `_`, at most [`OrderNumber::MAX_LEN`] long (the partner's `ParcelId` cap), so
/// the value is safe in a URL path, a DynamoDB key and the callback body alike.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrderNumber(String);

impl OrderNumber {
    pub const MAX_LEN: usize = 100;

    /// Accepts a candidate order number or says what is wrong with it.
    pub fn parse(candidate: &str) -> Result<Self, String> {
        if candidate.is_empty() {
            return Err("must not be empty".into());
        }
        if candidate.len() > Self::MAX_LEN {
            return Err(format!("must be at most {} characters", Self::MAX_LEN));
        }
        if let Some(bad) = candidate
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "may contain only letters, digits, '-' and '_' (found {bad:?})"
            ));
        }
        Ok(Self(candidate.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for OrderNumber {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<OrderNumber> for String {
    fn from(value: OrderNumber) -> Self {
        value.0
    }
}

impl fmt::Display for OrderNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_letters_digits_dash_and_underscore() {
        assert_eq!(
            OrderNumber::parse("mabang-test_002").map(|n| n.to_string()),
            Ok("mabang-test_002".to_owned())
        );
    }

    #[test]
    fn rejects_special_characters_naming_the_first_one() {
        let err = OrderNumber::parse("ab/c d").unwrap_err();
        assert!(err.contains("'/'"), "{err}");
    }

    #[test]
    fn rejects_empty_and_overlong_numbers() {
        assert!(OrderNumber::parse("").is_err());
        assert!(OrderNumber::parse(&"a".repeat(101)).is_err());
        assert!(OrderNumber::parse(&"a".repeat(100)).is_ok());
    }

    #[test]
    fn rejects_non_ascii_letters() {
        assert!(OrderNumber::parse("订单1").is_err());
    }
}
