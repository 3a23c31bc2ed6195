//! The bodies of the subscription routes: `POST /apicenter/api/webhooks`
//! (`{"url": …, "event_types": [...], "description": …}`) and
//! `PATCH /apicenter/api/webhooks/{id}` (any of `url`, `event_types`,
//! `enabled`, `description`), each problem listed by its JSON path.

use std::collections::BTreeSet;

use crate::error::FieldError;
use crate::limits::text;
use crate::reader::{Object, Reader, root_object};

use super::{EndpointUrl, EventType, Reach};

/// Which events an endpoint receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventTypes {
    /// Every type, including types added later (`event_types` omitted).
    All,
    Only(BTreeSet<EventType>),
}

impl EventTypes {
    #[must_use]
    pub fn includes(&self, kind: EventType) -> bool {
        match self {
            Self::All => true,
            Self::Only(kinds) => kinds.contains(&kind),
        }
    }
}

/// A new endpoint, as its owner asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    pub url: EndpointUrl,
    pub event_types: EventTypes,
    pub description: Option<String>,
}

/// What a `PATCH` changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointChange {
    pub url: Option<EndpointUrl>,
    pub event_types: Option<EventTypes>,
    pub enabled: Option<bool>,
    pub description: Option<String>,
}

/// Parses a create body; `url` is required.
pub fn parse_new_endpoint(body: &[u8], reach: Reach) -> Result<NewEndpoint, Vec<FieldError>> {
    let root = root_object(body).map_err(|problem| vec![problem])?;
    let mut r = Reader::default();
    let url = r
        .required_text(&root, "url", text::URL)
        .and_then(|url| endpoint_url(&mut r, &url, reach));
    let event_types = event_types(&mut r, &root).unwrap_or(EventTypes::All);
    let description = r.text(&root, "description", text::NAME);
    let problems = r.into_problems();
    match url {
        Some(url) if problems.is_empty() => Ok(NewEndpoint {
            url,
            event_types,
            description,
        }),
        _ => Err(problems),
    }
}

/// Parses a change body; at least one field must be given.
pub fn parse_endpoint_change(body: &[u8], reach: Reach) -> Result<EndpointChange, Vec<FieldError>> {
    let root = root_object(body).map_err(|problem| vec![problem])?;
    let mut r = Reader::default();
    let change = EndpointChange {
        url: r
            .text(&root, "url", text::URL)
            .and_then(|url| endpoint_url(&mut r, &url, reach)),
        event_types: event_types(&mut r, &root),
        enabled: r.boolean(&root, "enabled"),
        description: r.text(&root, "description", text::NAME),
    };
    let mut problems = r.into_problems();
    if problems.is_empty() && change == EndpointChange::default() {
        problems.push(FieldError::new(
            "$",
            "give at least one of url, event_types, enabled, description",
        ));
    }
    if problems.is_empty() {
        Ok(change)
    } else {
        Err(problems)
    }
}

fn endpoint_url(r: &mut Reader, url: &str, reach: Reach) -> Option<EndpointUrl> {
    EndpointUrl::parse(url, reach)
        .map_err(|why| r.problem("url", why.to_string()))
        .ok()
}

/// `event_types`: a non-empty list of known type names; absent = every type.
fn event_types(r: &mut Reader, root: &Object<'_>) -> Option<EventTypes> {
    let names = r.array_of_texts(root, "event_types", EventType::ALL.len(), text::CODE)?;
    let mut kinds = BTreeSet::new();
    for (index, name) in names.iter().enumerate() {
        match name.as_deref().map(|name| (name, EventType::parse(name))) {
            Some((_, Some(kind))) => {
                kinds.insert(kind);
            }
            Some((name, None)) => r.problem(
                format!("event_types[{index}]"),
                format!(
                    "{} is not an event type; the types: {}",
                    crate::error::quoted(name),
                    names_of_all()
                ),
            ),
            None if !r.has_problem_at(&format!("event_types[{index}]")) => {
                r.problem(format!("event_types[{index}]"), "must not be empty");
            }
            None => {}
        }
    }
    if names.is_empty() {
        r.problem(
            "event_types",
            "must name at least one type; omit it for every type",
        );
    }
    Some(EventTypes::Only(kinds))
}

fn names_of_all() -> String {
    EventType::ALL.map(EventType::as_str).join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_alone_subscribes_to_every_type() {
        let endpoint = parse_new_endpoint(
            br#"{"url": "https://erp.example.com/hooks"}"#,
            Reach::Internet,
        )
        .unwrap();
        assert_eq!(endpoint.event_types, EventTypes::All);
        assert!(
            endpoint
                .event_types
                .includes(EventType::CallbackDeadLettered)
        );
    }

    #[test]
    fn listed_types_are_the_only_ones() {
        let endpoint = parse_new_endpoint(
            br#"{"url": "https://erp.example.com/", "event_types": ["order.shipped", "order.cancelled"]}"#,
            Reach::Internet,
        )
        .unwrap();
        assert!(endpoint.event_types.includes(EventType::OrderShipped));
        assert!(!endpoint.event_types.includes(EventType::OrderAccepted));
    }

    #[test]
    fn every_problem_is_listed_by_its_path() {
        let problems = parse_new_endpoint(
            br#"{"url": "http://169.254.169.254/", "event_types": ["order.shipped", "order.lost", 7, ""]}"#,
            Reach::LocalNetwork,
        )
        .unwrap_err();
        let mut fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            ["event_types[1]", "event_types[2]", "event_types[3]", "url"]
        );
        let unknown = problems
            .iter()
            .find(|p| p.field == "event_types[1]")
            .unwrap();
        assert!(
            unknown.message.contains("order.handed_over"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_missing_url_or_an_empty_list_is_refused() {
        let problems = parse_new_endpoint(br#"{"event_types": []}"#, Reach::Internet).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["url", "event_types"]);
    }

    #[test]
    fn a_change_names_what_it_changes_and_nothing_is_refused() {
        let change = parse_endpoint_change(br#"{"enabled": false}"#, Reach::Internet).unwrap();
        assert_eq!(change.enabled, Some(false));
        assert_eq!(change.url, None);
        let problems = parse_endpoint_change(b"{}", Reach::Internet).unwrap_err();
        assert_eq!(problems[0].field, "$");
        let problems =
            parse_endpoint_change(br#"{"url": "http://erp.example.com/"}"#, Reach::Internet)
                .unwrap_err();
        assert_eq!(
            (problems[0].field.as_str(), problems[0].message.as_str()),
            ("url", "must use https")
        );
    }
}
