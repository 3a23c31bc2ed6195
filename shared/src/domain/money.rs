use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A non-negative amount kept as an exact decimal: `unit_price` arrives as a JSON
/// number or a string and must never pass through a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Money(Decimal);

impl Money {
    /// Parses plain decimal text: digits with an optional fraction
    /// (`"10"`, `"10.50"`); no sign, exponent or separators.
    pub fn parse(text: &str) -> Result<Self, String> {
        let refuse = || format!("must be a decimal number like 10 or 10.50, got {text:?}");
        let trimmed = text.trim();
        if trimmed.starts_with('-') {
            return Err("must not be negative".into());
        }
        let (whole, fraction) = trimmed.split_once('.').unwrap_or((trimmed, "0"));
        let plain = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !(plain(whole) && plain(fraction)) {
            return Err(refuse());
        }
        let value = Decimal::from_str_exact(trimmed).map_err(|_| refuse())?;
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
        for odd in ["1_000", "+1", "1.", ".5", "1e3", "1,5"] {
            assert!(Money::parse(odd).is_err(), "{odd}");
        }
    }
}
