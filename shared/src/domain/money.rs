use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A non-negative amount kept as an exact decimal: `unit_price` arrives as a JSON
/// number or a string and must never pass through a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Money(Decimal);

impl Money {
    /// Parses the decimal text of a JSON number or string (`"10"`, `10.50`, `"1e2"` is refused).
    pub fn parse(text: &str) -> Result<Self, String> {
        let value = Decimal::from_str_exact(text.trim())
            .map_err(|_| format!("must be a decimal number, got {text:?}"))?;
        if value.is_sign_negative() && !value.is_zero() {
            return Err("must not be negative".into());
        }
        // Normalised so that 10, 10.0 and "10.00" are the same price (and the same
        // idempotency hash).
        Ok(Self(value.normalize()))
    }

    #[must_use]
    pub fn amount(&self) -> Decimal {
        self.0
    }
}

impl TryFrom<String> for Money {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Money> for String {
    fn from(value: Money) -> Self {
        value.0.to_string()
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_digits_a_float_would_lose() {
        let price = Money::parse("12345678901234567.123456789").unwrap();
        assert_eq!(price.to_string(), "12345678901234567.123456789");
    }

    #[test]
    fn equal_prices_in_different_notations_are_equal() {
        assert_eq!(Money::parse("10"), Money::parse("10.00"));
    }

    #[test]
    fn refuses_negative_and_non_numeric_prices() {
        assert!(Money::parse("-1").is_err());
        assert!(Money::parse("ten").is_err());
        assert!(Money::parse("").is_err());
        assert!(Money::parse("NaN").is_err());
    }
}
