//! The problems found in one request, listed up to a budget and counted past it.
//!
//! A 6 MB body can hold three million wrong values; listing each would make the
//! answer larger than the request and the list larger than the function's
//! memory. So a request's answer lists at most [`MAX_LISTED`] problems in at
//! most [`MAX_LISTED_BYTES`] of JSON, and one last entry says how many more
//! there were. Every collector of problems in the core goes through
//! [`Problems`], so no route can answer more than that.

use crate::error::{FieldError, clip};

/// Most problems listed in one answer.
pub const MAX_LISTED: usize = 50;
/// Most bytes the listed problems may take as JSON: the answer stays well
/// under 64 KB whatever the fields and messages quote.
pub const MAX_LISTED_BYTES: usize = 32 * 1024;
/// Longest field path kept, in characters (a query parameter's name is the
/// client's text).
const MAX_FIELD_CHARS: usize = 128;
/// Longest message kept, in characters (some quote the value they refuse).
const MAX_MESSAGE_CHARS: usize = 256;

/// Problems of one request: the first ones listed, the rest counted.
#[derive(Debug, Default)]
pub struct Problems {
    listed: Vec<FieldError>,
    listed_bytes: usize,
    unlisted: usize,
    /// The path of the last problem counted but not listed, so that
    /// [`Problems::has_problem_at`] still sees it (a field's second problem is
    /// worded from its first).
    last_unlisted: Option<String>,
}

impl Problems {
    /// Notes a problem at `field`.
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.add(FieldError::new(field, message));
    }

    /// Notes a problem already built.
    pub fn add(&mut self, problem: FieldError) {
        let field = clip(problem.field, MAX_FIELD_CHARS);
        // Once one problem went unlisted, the rest are only counted: the list
        // keeps the order problems were found in, and costs nothing more.
        if self.unlisted == 0 && self.listed.len() < MAX_LISTED {
            let message = clip(problem.message, MAX_MESSAGE_CHARS);
            // {"field":"…","message":"…"}, and the comma before it.
            let bytes = json_len(&field) + json_len(&message) + 25;
            if self.listed_bytes + bytes <= MAX_LISTED_BYTES {
                self.listed_bytes += bytes;
                self.listed.push(FieldError { field, message });
                return;
            }
        }
        self.unlisted += 1;
        self.last_unlisted = Some(field);
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    /// Whether a problem was noted at `path` (among the listed ones, or the
    /// last one counted).
    #[must_use]
    pub fn has_problem_at(&self, path: &str) -> bool {
        self.last_unlisted.as_deref() == Some(path) || self.listed.iter().any(|p| p.field == path)
    }

    /// The listed problems, with one last entry at `$` counting the rest.
    #[must_use]
    pub fn into_vec(self) -> Vec<FieldError> {
        let mut listed = self.listed;
        if self.unlisted > 0 {
            listed.push(FieldError::new(
                "$",
                format!(
                    "and {} more problem(s) not listed; fix the ones above and send again",
                    self.unlisted
                ),
            ));
        }
        listed
    }
}

/// The length of `text` as a JSON string's content (escapes included).
fn json_len(text: &str) -> usize {
    text.chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' => 2,
            c if c.is_control() => 6,
            c => c.len_utf8(),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_budget_problems_are_counted_not_listed() {
        let mut problems = Problems::default();
        for index in 0..3_000_000 {
            problems.push(format!("items[{index}]"), "must be an object, not a number");
        }
        let listed = problems.into_vec();
        assert_eq!(listed.len(), MAX_LISTED + 1);
        assert_eq!(listed[0].field, "items[0]");
        let last = listed.last().expect("the count");
        assert_eq!(last.field, "$");
        assert!(
            last.message
                .contains(&format!("{} more", 3_000_000 - MAX_LISTED)),
            "{}",
            last.message
        );
    }

    #[test]
    fn the_listed_problems_fit_the_byte_budget_whatever_they_quote() {
        let mut problems = Problems::default();
        for _ in 0..1_000 {
            problems.push("\u{1}".repeat(10_000), "\"".repeat(10_000));
        }
        let json = serde_json::to_string(&problems.into_vec()).expect("serialises");
        assert!(json.len() < MAX_LISTED_BYTES + 1024, "{}", json.len());
    }

    #[test]
    fn a_problem_counted_past_the_budget_is_still_seen_at_its_path() {
        let mut problems = Problems::default();
        for index in 0..MAX_LISTED {
            problems.push(format!("a{index}"), "x");
        }
        problems.push("late", "is wrong");
        assert!(problems.has_problem_at("late"));
        assert!(problems.has_problem_at("a0"));
        assert!(!problems.has_problem_at("other"));
    }

    #[test]
    fn long_fields_and_messages_are_clipped_at_a_character_boundary() {
        assert_eq!(clip("héllo".to_owned(), 2), "hé…");
        assert_eq!(clip("short".to_owned(), 10), "short");
    }
}
