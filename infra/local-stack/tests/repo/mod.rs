//! The repository's files, for the tests that check its documents and
//! template against each other.

use std::path::{Path, PathBuf};

/// The checkout's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file of the checkout, by its path from the root; a missing one fails
/// the test, naming it.
pub fn read(relative: impl AsRef<Path>) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// `infra/template.yaml`, parsed.
// Each test binary compiles this module anew; the pages test has no use for it.
#[allow(dead_code)]
pub fn template() -> serde_norway::Value {
    serde_norway::from_str(&read("infra/template.yaml")).expect("template is valid YAML")
}

/// Fails listing what `check` finds wrong in `infra/template.yaml`, if anything.
#[allow(dead_code)]
pub fn assert_template_passes(check: fn(&serde_norway::Value) -> Vec<String>) {
    let problems = check(&template());
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Fails unless one of `problems` mentions `needle`.
#[allow(dead_code)]
pub fn assert_found(problems: &[String], needle: &str) {
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "nothing about {needle:?} in {problems:#?}"
    );
}

/// `docs/openapi.yaml`, parsed.
#[allow(dead_code)]
pub fn openapi() -> serde_json::Value {
    serde_norway::from_str(&read("docs/openapi.yaml")).expect("docs/openapi.yaml is valid YAML")
}

/// Follows a local `$ref` (`#/components/...`) of the OpenAPI document `doc`.
#[allow(dead_code)]
pub fn resolve<'a>(
    doc: &'a serde_json::Value,
    value: &'a serde_json::Value,
) -> &'a serde_json::Value {
    match value.get("$ref").and_then(serde_json::Value::as_str) {
        Some(reference) => {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("only local references are used: {reference}"));
            let target = doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling reference {reference}"));
            resolve(doc, target)
        }
        None => value,
    }
}
