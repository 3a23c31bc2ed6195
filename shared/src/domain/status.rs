use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where an order stands in the warehouse.
///
/// The main line is `pending → allocated → picked → packed → shipped →
/// handed_over`; `shortage` sits beside `allocated` (stock is short; allocation
/// follows when it arrives) and `cancelled` ends an order that has not shipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Allocated,
    Shortage,
    Picked,
    Packed,
    Shipped,
    HandedOver,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [Self; 8] = [
        Self::Pending,
        Self::Allocated,
        Self::Shortage,
        Self::Picked,
        Self::Packed,
        Self::Shipped,
        Self::HandedOver,
        Self::Cancelled,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Allocated => "allocated",
            Self::Shortage => "shortage",
            Self::Picked => "picked",
            Self::Packed => "packed",
            Self::Shipped => "shipped",
            Self::HandedOver => "handed_over",
            Self::Cancelled => "cancelled",
        }
    }

    /// How far along the main line the order is; `shortage` ranks with
    /// `allocated`. `None` for `cancelled`, which is off the line.
    #[must_use]
    pub fn progress(self) -> Option<u8> {
        match self {
            Self::Pending => Some(0),
            Self::Allocated | Self::Shortage => Some(1),
            Self::Picked => Some(2),
            Self::Packed => Some(3),
            Self::Shipped => Some(4),
            Self::HandedOver => Some(5),
            Self::Cancelled => None,
        }
    }

    /// Whether the parcel has left the warehouse (no cancelling any more).
    #[must_use]
    pub fn has_shipped(self) -> bool {
        self.progress().is_some_and(|p| p >= 4)
    }
}

impl FromStr for OrderStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown order status {s:?}"))
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_from_its_name() {
        for status in OrderStatus::ALL {
            assert_eq!(status.as_str().parse(), Ok(status));
        }
        assert!("lost".parse::<OrderStatus>().is_err());
    }
}
