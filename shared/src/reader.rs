//! A JSON reader that collects every problem instead of stopping at the first.
//!
//! serde's derive stops at the first type error, and `serde_json::Value` turns
//! numbers into floats; both are wrong for an API that must list every problem by
//! JSON path and keep prices exact. So the body is split into
//! [`RawValue`]s (which keep each value's source text) and read field by field.

use std::collections::BTreeMap;

use rust_decimal::prelude::ToPrimitive;
use serde_json::value::RawValue;

use crate::error::FieldError;

/// Turns the raw body into the root object, or the single problem that stops
/// us from reading it at all.
pub(crate) fn root_object(body: &[u8]) -> Result<Object<'_>, FieldError> {
    let text = std::str::from_utf8(body)
        .map_err(|err| FieldError::new("$", format!("the body is not valid UTF-8 ({err})")))?;
    if text.trim().is_empty() {
        return Err(FieldError::new(
            "$",
            "the body is empty; send the order as a JSON object",
        ));
    }
    let raw: &RawValue = serde_json::from_str(text).map_err(|err| syntax_problem(text, &err))?;
    if kind(raw) != Kind::Object {
        return Err(FieldError::new(
            "$",
            format!(
                "the body must be a JSON object, not {}",
                kind(raw).article()
            ),
        ));
    }
    let fields = serde_json::from_str(raw.get()).map_err(|err| syntax_problem(text, &err))?;
    Ok(Object {
        path: String::new(),
        fields,
    })
}

/// Says where and what the syntax error is. serde_json names most causes
/// ("EOF while parsing a string", …) but reports a trailing comma in an object
/// as "key must be a string", so that case is recognised from the text itself:
/// spec 000's own sample has trailing commas and clients paste it.
fn syntax_problem(text: &str, err: &serde_json::Error) -> FieldError {
    let full = err.to_string();
    let mut cause = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(cause, _)| cause);
    if cause == "trailing comma" || follows_a_trailing_comma(text, err.line(), err.column()) {
        cause = "trailing comma (JSON allows no comma after the last member of an object or array; remove it)";
    }
    FieldError::new(
        "$",
        format!(
            "invalid JSON at line {}, column {}: {cause}",
            err.line(),
            err.column()
        ),
    )
}

/// Whether the byte at (line, column), both 1-based, closes an object or array
/// right after a comma.
fn follows_a_trailing_comma(text: &str, line: usize, column: usize) -> bool {
    let Some(line_start) = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .reduce(|a, b| a + b)
        .or((line == 1).then_some(0))
    else {
        return false;
    };
    let at = line_start + column.saturating_sub(1);
    let bytes = text.as_bytes();
    matches!(bytes.get(at), Some(b'}' | b']'))
        && bytes[..at]
            .iter()
            .rev()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b',')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    fn article(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "a boolean",
            Kind::Number => "a number",
            Kind::String => "a string",
            Kind::Array => "an array",
            Kind::Object => "an object",
        }
    }
}

/// The JSON type of a value, from its first byte (the text is valid JSON).
pub(crate) fn kind(raw: &RawValue) -> Kind {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'n') => Kind::Null,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'"') => Kind::String,
        Some(b'[') => Kind::Array,
        Some(b'{') => Kind::Object,
        _ => Kind::Number,
    }
}

/// The exact value of a JSON number's text, exponent forms included; `None`
/// beyond what a decimal holds (28 significant digits).
fn json_number(text: &str) -> Option<rust_decimal::Decimal> {
    if text.contains(['e', 'E']) {
        rust_decimal::Decimal::from_scientific(text).ok()
    } else {
        rust_decimal::Decimal::from_str_exact(text).ok()
    }
}

/// A JSON object and the path that leads to it.
#[derive(Debug)]
pub(crate) struct Object<'a> {
    path: String,
    fields: BTreeMap<String, &'a RawValue>,
}

impl<'a> Object<'a> {
    pub(crate) fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value of `key`; absent and `null` are the same to us.
    fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.fields
            .get(key)
            .copied()
            .filter(|raw| kind(raw) != Kind::Null)
    }
}

/// Reads typed fields out of objects, noting every problem on the way.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    problems: Vec<FieldError>,
}

impl Reader {
    pub(crate) fn problem(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(FieldError::new(field, message));
    }

    pub(crate) fn into_problems(self) -> Vec<FieldError> {
        self.problems
    }

    fn wrong_type(&mut self, field: String, expected: &str, raw: &RawValue) {
        let message = format!("must be {expected}, not {}", kind(raw).article());
        self.problem(field, message);
    }

    /// A string of at most `max_chars` characters. Empty strings count as absent:
    /// ERPs commonly send `""` for "no value".
    pub(crate) fn text(&mut self, obj: &Object<'_>, key: &str, max_chars: usize) -> Option<String> {
        let raw = obj.get(key)?;
        let path = obj.path_of(key);
        if kind(raw) != Kind::String {
            self.wrong_type(path, "a string", raw);
            return None;
        }
        let value: String = match serde_json::from_str(raw.get()) {
            Ok(value) => value,
            Err(err) => {
                self.problem(path, format!("is not a valid string ({err})"));
                return None;
            }
        };
        if value.trim().is_empty() {
            return None;
        }
        if value.chars().count() > max_chars {
            self.problem(path, format!("must be at most {max_chars} characters"));
            return None;
        }
        Some(value)
    }

    /// Like [`Reader::text`], but absence is a problem too.
    pub(crate) fn required_text(
        &mut self,
        obj: &Object<'_>,
        key: &str,
        max_chars: usize,
    ) -> Option<String> {
        self.text_required_because(obj, key, max_chars, "")
    }

    /// [`Reader::required_text`] for a field that is only required in some
    /// cases; `because` completes the message ("… when platform_type is tiktok").
    pub(crate) fn text_required_because(
        &mut self,
        obj: &Object<'_>,
        key: &str,
        max_chars: usize,
        because: &str,
    ) -> Option<String> {
        let present = obj.get(key).is_some();
        let value = self.text(obj, key, max_chars);
        if value.is_none() && !self.has_problem_at(&obj.path_of(key)) {
            let why = if present {
                "must not be empty"
            } else {
                "is required"
            };
            self.problem(obj.path_of(key), format!("{why}{because}"));
        }
        value
    }

    pub(crate) fn has_problem_at(&self, path: &str) -> bool {
        self.problems.iter().any(|p| p.field == path)
    }

    pub(crate) fn boolean(&mut self, obj: &Object<'_>, key: &str) -> Option<bool> {
        let raw = obj.get(key)?;
        match raw.get() {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                self.wrong_type(obj.path_of(key), "true or false", raw);
                None
            }
        }
    }

    /// A JSON number with no fractional part (`2`, `2.0`, `2e0`, as JSON Schema
    /// counts integers) that fits in `u32`.
    pub(crate) fn integer(&mut self, obj: &Object<'_>, key: &str) -> Option<u32> {
        let raw = obj.get(key)?;
        let path = obj.path_of(key);
        if kind(raw) != Kind::Number {
            self.wrong_type(path, "an integer", raw);
            return None;
        }
        let text = raw.get();
        if let Ok(value) = text.parse::<u32>() {
            return Some(value);
        }
        match json_number(text) {
            Some(value) if value.is_sign_negative() && !value.is_zero() => {
                self.problem(path, "must not be negative");
                None
            }
            Some(value) if value.fract().is_zero() => {
                let whole = value.to_u32();
                if whole.is_none() {
                    self.problem(path, format!("is too large, got {text}"));
                }
                whole
            }
            _ => {
                self.problem(path, format!("must be a whole number, got {text}"));
                None
            }
        }
    }

    /// The exact source text of a number, or the content of a string: for
    /// decimals that must not pass through a float.
    pub(crate) fn decimal_text(&mut self, obj: &Object<'_>, key: &str) -> Option<String> {
        let raw = obj.get(key)?;
        match kind(raw) {
            // A JSON number in exponent form is written out in full.
            Kind::Number => {
                Some(json_number(raw.get()).map_or_else(|| raw.get().to_owned(), |n| n.to_string()))
            }
            Kind::String => serde_json::from_str::<String>(raw.get())
                .ok()
                .filter(|text| !text.trim().is_empty()),
            _ => {
                self.wrong_type(obj.path_of(key), "a number or a decimal string", raw);
                None
            }
        }
    }

    pub(crate) fn object<'a>(&mut self, obj: &Object<'a>, key: &str) -> Option<Object<'a>> {
        let raw = obj.get(key)?;
        let path = obj.path_of(key);
        self.as_object(raw, path)
    }

    fn as_object<'a>(&mut self, raw: &'a RawValue, path: String) -> Option<Object<'a>> {
        if kind(raw) != Kind::Object {
            self.wrong_type(path, "an object", raw);
            return None;
        }
        match serde_json::from_str(raw.get()) {
            Ok(fields) => Some(Object { path, fields }),
            Err(err) => {
                self.problem(path, format!("is not a valid object ({err})"));
                None
            }
        }
    }

    pub(crate) fn required_object<'a>(
        &mut self,
        obj: &Object<'a>,
        key: &str,
    ) -> Option<Object<'a>> {
        if obj.get(key).is_none() {
            self.problem(obj.path_of(key), "is required");
            return None;
        }
        self.object(obj, key)
    }

    /// The elements of an array, each as an object with its `path[i]`.
    pub(crate) fn array_of_objects<'a>(
        &mut self,
        obj: &Object<'a>,
        key: &str,
    ) -> Option<Vec<Option<Object<'a>>>> {
        let raw = obj.get(key)?;
        let path = obj.path_of(key);
        if kind(raw) != Kind::Array {
            self.wrong_type(path, "an array", raw);
            return None;
        }
        let elements: Vec<&'a RawValue> = match serde_json::from_str(raw.get()) {
            Ok(elements) => elements,
            Err(err) => {
                self.problem(path, format!("is not a valid array ({err})"));
                return None;
            }
        };
        Some(
            elements
                .into_iter()
                .enumerate()
                .map(|(index, element)| self.as_object(element, format!("{path}[{index}]")))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_comma_is_named_with_line_and_column() {
        let err = root_object(b"{\n  \"a\": 1,\n}").unwrap_err();
        assert_eq!(err.field, "$");
        assert!(err.message.contains("line 3, column 1"), "{}", err.message);
        assert!(err.message.contains("trailing comma"), "{}", err.message);
        let in_array = root_object(b"{\"a\": [1, 2, ]}").unwrap_err();
        assert!(
            in_array.message.contains("trailing comma"),
            "{}",
            in_array.message
        );
        let missing_value = root_object(b"{\"a\": }").unwrap_err();
        assert!(
            !missing_value.message.contains("trailing comma"),
            "{}",
            missing_value.message
        );
        assert!(err.message.contains("trailing comma"), "{}", err.message);
    }

    #[test]
    fn non_object_bodies_are_refused() {
        assert!(
            root_object(b"[1]")
                .unwrap_err()
                .message
                .contains("an array")
        );
        assert!(root_object(b"  ").unwrap_err().message.contains("empty"));
        assert!(
            root_object(&[0xff, 0xfe])
                .unwrap_err()
                .message
                .contains("UTF-8")
        );
    }

    #[test]
    fn integers_may_be_written_as_json_schema_allows() {
        let obj = root_object(br#"{"a": 2.0, "b": 3e0, "c": 1.5, "d": -1, "e": 1e20}"#).unwrap();
        let mut reader = Reader::default();
        assert_eq!(reader.integer(&obj, "a"), Some(2));
        assert_eq!(reader.integer(&obj, "b"), Some(3));
        assert_eq!(reader.integer(&obj, "c"), None);
        assert_eq!(reader.integer(&obj, "d"), None);
        assert_eq!(reader.integer(&obj, "e"), None);
        let fields: Vec<_> = reader
            .into_problems()
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(fields, ["c", "d", "e"]);
    }

    #[test]
    fn numbers_keep_their_source_text() {
        let obj = root_object(br#"{"p": 0.1000000000000000055511151231257827}"#).unwrap();
        let mut reader = Reader::default();
        assert_eq!(
            reader.decimal_text(&obj, "p").as_deref(),
            Some("0.1000000000000000055511151231257827")
        );
    }

    #[test]
    fn every_wrong_type_is_reported_with_its_path() {
        let obj = root_object(br#"{"a": 1, "b": "x", "c": {"d": []}}"#).unwrap();
        let mut reader = Reader::default();
        reader.text(&obj, "a", 10);
        reader.integer(&obj, "b");
        let c = reader.object(&obj, "c").unwrap();
        reader.text(&c, "d", 10);
        let fields: Vec<_> = reader
            .into_problems()
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(fields, ["a", "b", "c.d"]);
    }
}
