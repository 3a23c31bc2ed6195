//! The callback queue's message body. The outbox (the orders table's stream,
//! through an EventBridge Pipe) writes it; the dispatcher reads it. It names
//! the order and the callback generation only: the dispatcher reads
//! everything else from the order itself, so a message never carries stale data.

use serde::{Deserialize, Deserializer};

use shared::domain::OrderNumber;

/// The body of a callback message:
/// `{"order_number": "…", "generation": "3"}` (the pipe's input template
/// writes the generation as a string; a number is accepted too).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CallbackMessage {
    pub order_number: OrderNumber,
    /// Absent in messages sent before generations existed.
    #[serde(default, deserialize_with = "generation")]
    pub generation: Option<u64>,
}

fn generation<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Generation {
        Number(u64),
        Text(String),
    }
    match Option::<Generation>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Generation::Number(number)) => Ok(Some(number)),
        Some(Generation::Text(text)) => text
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("generation {text:?} is not a number"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_pipes_message_and_the_legacy_one() {
        let piped: CallbackMessage =
            serde_json::from_str(r#"{"order_number":"o-1","generation":"3"}"#).unwrap();
        assert_eq!(piped.generation, Some(3));
        let legacy: CallbackMessage = serde_json::from_str(r#"{"order_number":"o-1"}"#).unwrap();
        assert_eq!(legacy.generation, None);
        assert!(
            serde_json::from_str::<CallbackMessage>(r#"{"order_number":"o-1","generation":"x"}"#)
                .is_err()
        );
    }
}
