//! The lifecycle requests' bodies, read at the edge: a handler calls one of
//! these first and hands [`super::Lifecycle`] what it returns, so the use
//! cases take typed requests and never see bytes. Each refuses a body over
//! [`MAX_EVENT_BODY_BYTES`] unread and lists every problem of the rest.

use super::LifecycleError;
use super::callback_fields::parse_callback_fields;
use super::event::{MAX_EVENT_BODY_BYTES, parse_event};
use crate::limits::text;
use crate::reader::{Reader, root_object};
use crate::record::CallbackFields;
use crate::record::event::WarehouseEvent;

/// An ERP's cancellation: `POST …/cancel`, body optional `{"reason": "..."}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cancel {
    pub reason: Option<String>,
}

/// A warehouse event body (`POST …/events`).
pub fn event(body: &[u8]) -> Result<WarehouseEvent, LifecycleError> {
    within_size(body)?;
    parse_event(body).map_err(LifecycleError::Invalid)
}

/// A cancellation body: empty (or blank), or an object with an optional `reason`.
pub fn cancel(body: &[u8]) -> Result<Cancel, LifecycleError> {
    within_size(body)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Cancel::default());
    }
    let root = root_object(body).map_err(|p| LifecycleError::Invalid(vec![p]))?;
    let mut reader = Reader::default();
    let reason = reader.text(&root, "reason", text::DESC);
    let problems = reader.into_problems();
    if !problems.is_empty() {
        return Err(LifecycleError::Invalid(problems));
    }
    Ok(Cancel { reason })
}

/// A callback-fields body (`POST …/callback/fields`).
pub fn callback_fields(body: &[u8]) -> Result<CallbackFields, LifecycleError> {
    within_size(body)?;
    parse_callback_fields(body).map_err(LifecycleError::Invalid)
}

/// Event and cancel bodies are small; anything bigger is refused unread.
fn within_size(body: &[u8]) -> Result<(), LifecycleError> {
    if body.len() > MAX_EVENT_BODY_BYTES {
        return Err(LifecycleError::BodyTooLarge {
            size: body.len(),
            limit: MAX_EVENT_BODY_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_cancel_body_has_no_reason_and_a_reason_is_read() {
        assert_eq!(cancel(b" \n").unwrap(), Cancel::default());
        assert_eq!(
            cancel(br#"{"reason":"out of stock"}"#)
                .unwrap()
                .reason
                .as_deref(),
            Some("out of stock")
        );
        assert!(matches!(
            cancel(br#"{"reason":7}"#),
            Err(LifecycleError::Invalid(problems)) if problems[0].field == "reason"
        ));
    }

    #[test]
    fn an_oversized_body_is_refused_unread() {
        let huge = vec![b'{'; MAX_EVENT_BODY_BYTES + 1];
        for refused in [
            event(&huge).map(|_| ()),
            cancel(&huge).map(|_| ()),
            callback_fields(&huge).map(|_| ()),
        ] {
            assert!(
                matches!(refused, Err(LifecycleError::BodyTooLarge { .. })),
                "{refused:?}"
            );
        }
    }
}
