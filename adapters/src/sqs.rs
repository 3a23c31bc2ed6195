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
    #[serde(deserialize_with = "generation")]
    pub generation: u64,
}

fn generation<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Generation {
        Number(u64),
        Text(String),
    }
    match Generation::deserialize(deserializer)? {
        Generation::Number(number) => Ok(number),
        Generation::Text(text) => text
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("generation {text:?} is not a number"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_pipes_message_and_refuses_one_without_its_generation() {
        let piped: CallbackMessage =
            serde_json::from_str(r#"{"order_number":"o-1","generation":"3"}"#).unwrap();
        assert_eq!(piped.generation, 3);
        let number: CallbackMessage =
            serde_json::from_str(r#"{"order_number":"o-1","generation":3}"#).unwrap();
        assert_eq!(number.generation, 3);
        assert!(serde_json::from_str::<CallbackMessage>(r#"{"order_number":"o-1"}"#).is_err());
        assert!(
            serde_json::from_str::<CallbackMessage>(r#"{"order_number":"o-1","generation":"x"}"#)
                .is_err()
        );
    }
}
