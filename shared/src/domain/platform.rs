use std::fmt;

use serde::{Deserialize, Serialize};

/// The marketplace an order was sold on (`platform_type`), stored lower-case.
///
/// Spec 000 lists shopee, lazada, tiktok and tokopedia and says the value is not
/// strictly checked; we add temu and ebay (spec 001's callback platforms) and keep
/// any other value as [`Platform::Other`] so it is a data-quality finding rather
/// than a rejection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Platform {
    Shopee,
    Lazada,
    Tiktok,
    Tokopedia,
    Temu,
    Ebay,
    Other(String),
}

/// The marketplaces the platform-callback API (spec 001) reports shipments to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackPlatform {
    TikTok,
    Temu,
    EBay,
}

impl CallbackPlatform {
    /// The `PlatformCode` spelling spec 001 expects.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::TikTok => "TikTok",
            Self::Temu => "Temu",
            Self::EBay => "eBay",
        }
    }
}

impl Platform {
    #[must_use]
    pub fn parse(value: &str) -> Self {
        let lower = value.trim().to_ascii_lowercase();
        match lower.as_str() {
            "shopee" => Self::Shopee,
            "lazada" => Self::Lazada,
            "tiktok" => Self::Tiktok,
            "tokopedia" => Self::Tokopedia,
            "temu" => Self::Temu,
            "ebay" => Self::Ebay,
            _ => Self::Other(lower),
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Shopee => "shopee",
            Self::Lazada => "lazada",
            Self::Tiktok => "tiktok",
            Self::Tokopedia => "tokopedia",
            Self::Temu => "temu",
            Self::Ebay => "ebay",
            Self::Other(other) => other,
        }
    }

    /// `Some` when shipments of this platform are reported through spec 001.
    #[must_use]
    pub fn callback(&self) -> Option<CallbackPlatform> {
        match self {
            Self::Tiktok => Some(CallbackPlatform::TikTok),
            Self::Temu => Some(CallbackPlatform::Temu),
            Self::Ebay => Some(CallbackPlatform::EBay),
            _ => None,
        }
    }
}

impl From<String> for Platform {
    fn from(value: String) -> Self {
        Self::parse(&value)
    }
}

impl From<Platform> for String {
    fn from(value: Platform) -> Self {
        value.as_str().to_owned()
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_names_are_case_insensitive_and_stored_lower_case() {
        assert_eq!(Platform::parse("TikTok"), Platform::Tiktok);
        assert_eq!(Platform::parse("EBAY").as_str(), "ebay");
        assert_eq!(Platform::parse("Amazon"), Platform::Other("amazon".into()));
    }

    #[test]
    fn only_tiktok_temu_and_ebay_get_a_callback() {
        assert_eq!(
            Platform::Tiktok.callback().map(CallbackPlatform::code),
            Some("TikTok")
        );
        assert_eq!(
            Platform::Temu.callback().map(CallbackPlatform::code),
            Some("Temu")
        );
        assert_eq!(
            Platform::Ebay.callback().map(CallbackPlatform::code),
            Some("eBay")
        );
        assert_eq!(Platform::Shopee.callback(), None);
        assert_eq!(Platform::Other("x".into()).callback(), None);
    }
}
