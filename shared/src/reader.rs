//! A JSON reader that collects every problem instead of stopping at the first.
//!
//! serde's derive stops at the first type error, and `serde_json::Value` turns
//! numbers into floats; both are wrong for an API that must list every problem by
//! JSON path and keep prices exact. So the body is split into
//! [`RawValue`]s (which keep each value's source text) and read field by field.

use std::borrow::Cow;
use std::fmt;

use rust_decimal::prelude::ToPrimitive;
use serde::de::{
    Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::value::RawValue;

use crate::error::FieldError;
use crate::limits::text::Rule;
use crate::problems::Problems;

/// Most members an object may have. The order has 18 fields and its objects
/// fewer; the room left is for fields ERPs add that we ignore. Members past it
/// are counted, not kept: a body of a million keys costs no memory.
pub(crate) const MAX_MEMBERS: usize = 100;

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
    if nests_deeper_than(text, MAX_DEPTH) {
        return Err(FieldError::new(
            "$",
            format!("nests deeper than {MAX_DEPTH} levels; an order nests 3"),
        ));
    }
    // One pass when the body is an object, as it nearly always is; the second
    // pass only words the refusal of anything else.
    let not_members = match serde_json::from_str::<Members<'_>>(text) {
        Ok(members) if members.unkept > 0 => return Err(too_many_members("$", &members)),
        Ok(members) => {
            return Ok(Object {
                path: String::new(),
                members,
            });
        }
        Err(err) => err,
    };
    let raw: &RawValue = serde_json::from_str(text).map_err(|err| syntax_problem(text, &err))?;
    if kind(raw) == Kind::Object {
        return Err(syntax_problem(text, &not_members));
    }
    Err(FieldError::new(
        "$",
        format!(
            "the body must be a JSON object, not {}",
            kind(raw).article()
        ),
    ))
}

fn too_many_members(path: impl Into<String>, members: &Members<'_>) -> FieldError {
    FieldError::new(
        path,
        format!(
            "has {} members; an object here has at most {MAX_MEMBERS}",
            members.kept.len() + members.unkept
        ),
    )
}

/// Deepest nesting of arrays and objects read. An order nests 3 levels
/// (`items[0].qty`); a body of a million `[` would otherwise be walked by
/// every reader that looks into it.
const MAX_DEPTH: usize = 16;

/// Whether `text` opens more than `limit` arrays or objects inside each
/// other: one byte scan that stops as soon as it knows, strings skipped.
fn nests_deeper_than(text: &str, limit: usize) -> bool {
    let mut depth = 0_usize;
    let mut in_string = false;
    let mut escaped = false;
    for byte in text.bytes() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
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
    members: Members<'a>,
}

impl<'a> Object<'a> {
    /// The JSON path of `key`, built only when a problem is reported there.
    pub(crate) fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value of `key`; absent and `null` are the same to us.
    fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members.get(key).filter(|raw| kind(raw) != Kind::Null)
    }
}

/// An object's members in source order, keys borrowed from the body unless
/// they contain escapes. A dozen keys are found faster by a scan than in a
/// map, and nothing is allocated for them. At most [`MAX_MEMBERS`] are kept;
/// the rest are only counted.
#[derive(Debug)]
struct Members<'a> {
    kept: Vec<(Cow<'a, str>, &'a RawValue)>,
    unkept: usize,
}

impl<'a> Members<'a> {
    /// The value of `key`; when a key is repeated the last one counts, as in
    /// most JSON parsers.
    fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.kept
            .iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, raw)| *raw)
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut kept = Vec::new();
                while kept.len() < MAX_MEMBERS {
                    let Some(Key(name)) = map.next_key()? else {
                        return Ok(Members { kept, unkept: 0 });
                    };
                    kept.push((name, map.next_value()?));
                }
                let mut unkept = 0;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                    unkept += 1;
                }
                Ok(Members { kept, unkept })
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// An object key, borrowed from the body when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(key)))
            }
            fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The content of a JSON string's source text: borrowed when it has no
/// escapes (nearly always), decoded otherwise.
fn string_content(raw: &RawValue) -> Result<Cow<'_, str>, serde_json::Error> {
    let text = raw.get();
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Ok(Cow::Borrowed(inner)),
        _ => serde_json::from_str::<String>(text).map(Cow::Owned),
    }
}

/// Why a JSON string could not be decoded (a lone UTF-16 surrogate, say).
fn undecodable(err: &serde_json::Error) -> String {
    let full = err.to_string();
    let cause = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(c, _)| c);
    format!("is not a valid string ({cause})")
}

/// Characters that render as nothing at all.
fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// Bidirectional formatting: embeddings, overrides, isolates and marks. In an
/// identifier they only make text display as something it is not.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The first character `rule` refuses in `value`, in words.
fn refused_character(value: &str, rule: Rule) -> Option<String> {
    // Printable ASCII, the usual case, needs no look at each character.
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    value.chars().find_map(|c| {
        let line_break = matches!(c, '\t' | '\n' | '\r');
        if c.is_control() && !(rule.free && line_break) {
            Some(format!(
                "must not contain control characters (found U+{:04X})",
                u32::from(c)
            ))
        } else if !rule.free && is_bidi_control(c) {
            Some(format!(
                "must not contain bidirectional formatting characters (found U+{:04X})",
                u32::from(c)
            ))
        } else {
            None
        }
    })
}

/// Reads typed fields out of objects, noting every problem on the way.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    problems: Problems,
}

impl Reader {
    pub(crate) fn problem(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(field, message);
    }

    pub(crate) fn into_problems(self) -> Vec<FieldError> {
        self.problems.into_vec()
    }

    fn wrong_type(&mut self, field: String, expected: &str, raw: &RawValue) {
        let message = format!("must be {expected}, not {}", kind(raw).article());
        self.problem(field, message);
    }

    /// A string within `rule`'s length and characters. Empty strings count as
    /// absent (ERPs commonly send `""` for "no value"), and so do strings of
    /// only spaces and zero-width characters, which look empty wherever shown.
    pub(crate) fn text(&mut self, obj: &Object<'_>, key: &str, rule: Rule) -> Option<String> {
        let raw = obj.get(key)?;
        self.text_at(raw, obj.path_of(key), rule)
    }

    fn text_at(&mut self, raw: &RawValue, path: String, rule: Rule) -> Option<String> {
        if kind(raw) != Kind::String {
            self.wrong_type(path, "a string", raw);
            return None;
        }
        let value = match string_content(raw) {
            Ok(value) => value,
            Err(err) => {
                self.problem(path, undecodable(&err));
                return None;
            }
        };
        if value.chars().all(|c| c.is_whitespace() || is_zero_width(c)) {
            return None;
        }
        let max_chars = rule.max_chars;
        // Bytes bound characters from above: count only when it can matter.
        if value.len() > max_chars && value.chars().count() > max_chars {
            self.problem(path, format!("must be at most {max_chars} characters"));
            return None;
        }
        if let Some(why) = refused_character(&value, rule) {
            self.problem(path, why);
            return None;
        }
        Some(value.into_owned())
    }

    /// Like [`Reader::text`], but absence is a problem too.
    pub(crate) fn required_text(
        &mut self,
        obj: &Object<'_>,
        key: &str,
        rule: Rule,
    ) -> Option<String> {
        self.text_required_because(obj, key, rule, "")
    }

    /// [`Reader::required_text`] for a field that is only required in some
    /// cases; `because` completes the message ("… when platform_type is tiktok").
    pub(crate) fn text_required_because(
        &mut self,
        obj: &Object<'_>,
        key: &str,
        rule: Rule,
        because: &str,
    ) -> Option<String> {
        let value = self.text(obj, key, rule);
        if value.is_none() {
            let path = obj.path_of(key);
            if !self.has_problem_at(&path) {
                let why = if obj.get(key).is_some() {
                    "must not be empty"
                } else {
                    "is required"
                };
                self.problem(path, format!("{why}{because}"));
            }
        }
        value
    }

    pub(crate) fn has_problem_at(&self, path: &str) -> bool {
        self.problems.has_problem_at(path)
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
        if kind(raw) != Kind::Number {
            self.wrong_type(obj.path_of(key), "an integer", raw);
            return None;
        }
        let text = raw.get();
        if let Ok(value) = text.parse::<u32>() {
            return Some(value);
        }
        let path = obj.path_of(key);
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
            Kind::String => match string_content(raw) {
                Ok(text) => (!text.trim().is_empty()).then(|| text.into_owned()),
                Err(err) => {
                    self.problem(obj.path_of(key), undecodable(&err));
                    None
                }
            },
            _ => {
                self.wrong_type(obj.path_of(key), "a number or a decimal string", raw);
                None
            }
        }
    }

    pub(crate) fn object<'a>(&mut self, obj: &Object<'a>, key: &str) -> Option<Object<'a>> {
        let raw = obj.get(key)?;
        self.as_object(raw, obj.path_of(key))
    }

    fn as_object<'a>(&mut self, raw: &'a RawValue, path: String) -> Option<Object<'a>> {
        if kind(raw) != Kind::Object {
            self.wrong_type(path, "an object", raw);
            return None;
        }
        match serde_json::from_str::<Members<'a>>(raw.get()) {
            Ok(members) if members.unkept > 0 => {
                self.problems.add(too_many_members(path, &members));
                None
            }
            Ok(members) => Some(Object { path, members }),
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

    /// The elements of an array of at most `max` elements, each as an object
    /// with its `path[i]`. A longer array is one problem: its elements are
    /// counted, not read, so its length costs time but no memory.
    pub(crate) fn array_of_objects<'a>(
        &mut self,
        obj: &Object<'a>,
        key: &str,
        max: usize,
    ) -> Option<Vec<Option<Object<'a>>>> {
        let (path, elements) = self.elements(obj, key, max)?;
        Some(
            elements
                .into_iter()
                .enumerate()
                .map(|(index, element)| self.as_object(element, format!("{path}[{index}]")))
                .collect(),
        )
    }

    /// [`Reader::array_of_objects`] for an array of strings, each read as
    /// [`Reader::text`] reads one (an empty one is `None`).
    pub(crate) fn array_of_texts(
        &mut self,
        obj: &Object<'_>,
        key: &str,
        max: usize,
        rule: Rule,
    ) -> Option<Vec<Option<String>>> {
        let (path, elements) = self.elements(obj, key, max)?;
        Some(
            elements
                .into_iter()
                .enumerate()
                .map(|(index, element)| self.text_at(element, format!("{path}[{index}]"), rule))
                .collect(),
        )
    }

    fn elements<'a>(
        &mut self,
        obj: &Object<'a>,
        key: &str,
        max: usize,
    ) -> Option<(String, Vec<&'a RawValue>)> {
        let raw = obj.get(key)?;
        let path = obj.path_of(key);
        if kind(raw) != Kind::Array {
            self.wrong_type(path, "an array", raw);
            return None;
        }
        let mut json = serde_json::Deserializer::from_str(raw.get());
        let elements = match (CappedElements { max }).deserialize(&mut json) {
            Ok(elements) => elements,
            Err(err) => {
                self.problem(path, format!("is not a valid array ({err})"));
                return None;
            }
        };
        if elements.total > max {
            self.problem(
                path,
                format!("must contain at most {max} entries, got {}", elements.total),
            );
            return None;
        }
        Some((path, elements.kept))
    }
}

/// An array's first `max` elements, and how many it has in all.
struct Elements<'a> {
    kept: Vec<&'a RawValue>,
    total: usize,
}

/// Reads an array into [`Elements`], keeping at most `max`.
struct CappedElements {
    max: usize,
}

impl<'de> DeserializeSeed<'de> for CappedElements {
    type Value = Elements<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for CappedElements {
    type Value = Elements<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut kept = Vec::new();
        while kept.len() < self.max {
            match seq.next_element()? {
                Some(element) => kept.push(element),
                None => {
                    let total = kept.len();
                    return Ok(Elements { kept, total });
                }
            }
        }
        let mut total = kept.len();
        while seq.next_element::<IgnoredAny>()?.is_some() {
            total += 1;
        }
        Ok(Elements { kept, total })
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
    fn a_body_nested_deeper_than_an_order_is_one_problem() {
        let deep = format!(
            "{{\"items\": {}{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let err = root_object(deep.as_bytes()).unwrap_err();
        assert_eq!(err.field, "$");
        assert!(
            err.message.contains("nests deeper than 16"),
            "{}",
            err.message
        );
        // Brackets inside strings are text, not nesting.
        let text = format!(
            "{{\"desc\": \"{}\\\"{}\"}}",
            "[".repeat(100),
            "{".repeat(100)
        );
        assert!(root_object(text.as_bytes()).is_ok());
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
        reader.text(&obj, "a", crate::limits::text::CODE);
        reader.integer(&obj, "b");
        let c = reader.object(&obj, "c").unwrap();
        reader.text(&c, "d", crate::limits::text::CODE);
        let fields: Vec<_> = reader
            .into_problems()
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(fields, ["a", "b", "c.d"]);
    }

    #[test]
    fn a_lone_surrogate_in_a_decimal_string_is_a_problem_naming_the_field() {
        let obj = root_object(br#"{"p": "\ud800"}"#).unwrap();
        let mut reader = Reader::default();
        assert_eq!(reader.decimal_text(&obj, "p"), None);
        assert!(reader.has_problem_at("p"), "{:?}", reader.into_problems());
    }

    #[test]
    fn control_and_bidi_characters_are_refused_in_identifiers_and_codes() {
        use crate::limits::text;
        for bad in [
            r#""a\u0000b""#,
            r#""a\u202eb""#,
            r#""a\nb""#,
            r#""a\u0085b""#,
            r#""\u2066x""#,
        ] {
            let body = format!(r#"{{"sku": {bad}, "centre_code": {bad}}}"#);
            let obj = root_object(body.as_bytes()).unwrap();
            let mut reader = Reader::default();
            assert_eq!(reader.text(&obj, "sku", text::IDENTIFIER), None, "{bad}");
            assert_eq!(reader.text(&obj, "centre_code", text::CODE), None, "{bad}");
            let fields: Vec<_> = reader
                .into_problems()
                .into_iter()
                .map(|p| p.field)
                .collect();
            assert_eq!(fields, ["sku", "centre_code"], "{bad}");
        }
    }

    #[test]
    fn free_text_keeps_line_breaks_but_not_other_controls() {
        use crate::limits::text;
        let obj =
            root_object(br#"{"ok": "line 1\nline 2\tend", "nul": "a\u0000", "del": "a\u007f"}"#)
                .unwrap();
        let mut reader = Reader::default();
        assert!(reader.text(&obj, "ok", text::DESC).is_some());
        assert_eq!(reader.text(&obj, "nul", text::DESC), None);
        assert_eq!(reader.text(&obj, "del", text::DESC), None);
        assert_eq!(reader.into_problems().len(), 2);
    }

    #[test]
    fn a_zero_width_only_value_counts_as_empty() {
        use crate::limits::text;
        let obj = root_object(br#"{"sku": "\u200b", "mixed": " \u200d\ufeff\u2060 "}"#).unwrap();
        let mut reader = Reader::default();
        assert_eq!(reader.text(&obj, "mixed", text::IDENTIFIER), None);
        assert_eq!(reader.required_text(&obj, "sku", text::IDENTIFIER), None);
        let problems = reader.into_problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].message, "must not be empty");
    }
}
