//! docs/openapi.yaml describes exactly the API that infra/template.yaml deploys:
//! the same (method, path) operations as the template's HttpApi routes (less the
//! catch-all that answers 404/405, and `HEAD` routes, which answer as their
//! `GET` without the body, as HTTP defines HEAD), each guarded by the right kind of API key,
//! documenting 401 (and 400 for every POST), and answering 2xx in the envelope.
//! What the operations answer is checked against the running stack by
//! infra/local/schemathesis.sh.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;
use serde_norway::Value as Yaml;

mod repo;

use repo::{openapi, resolve};

/// The route that forwards everything else under /apicenter to the order
/// function, which answers 404/405 itself: not an operation of the API.
const CATCH_ALL: (&str, &str) = ("ANY", "/apicenter/{proxy+}");
const ENVELOPE: &str = "#/components/schemas/Envelope";
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// (METHOD, path) of every `Type: HttpApi` event of every function in the template.
fn template_routes() -> BTreeSet<(String, String)> {
    let template: Yaml = repo::template();
    let resources = template
        .get("Resources")
        .and_then(Yaml::as_mapping)
        .expect("template has Resources");
    let mut routes = BTreeSet::new();
    for (_, resource) in resources {
        let Some(events) = resource
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .and_then(Yaml::as_mapping)
        else {
            continue;
        };
        for (name, event) in events {
            if event.get("Type").and_then(Yaml::as_str) != Some("HttpApi") {
                continue;
            }
            let property = |key: &str| {
                event
                    .get("Properties")
                    .and_then(|p| p.get(key))
                    .and_then(Yaml::as_str)
                    .unwrap_or_else(|| panic!("HttpApi event {name:?} has no {key}"))
                    .to_owned()
            };
            let method = property("Method").to_ascii_uppercase();
            // A HEAD route is its GET without the body: the GET documents both.
            if method != "HEAD" {
                routes.insert((method, property("Path")));
            }
        }
    }
    routes
}

/// (METHOD, path) → operation object, for every operation of the document.
fn operations(doc: &Json) -> BTreeMap<(String, String), &Json> {
    let paths = doc["paths"].as_object().expect("openapi.yaml has paths");
    let mut operations = BTreeMap::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                operations.insert((method.to_ascii_uppercase(), path.clone()), operation);
            }
        }
    }
    operations
}

/// Whether `schema` reaches `target` through `$ref`s anywhere inside it.
fn references(doc: &Json, schema: &Json, target: &str, seen: &mut BTreeSet<String>) -> bool {
    match schema {
        Json::Object(map) => map.iter().any(|(key, value)| {
            if key == "$ref"
                && let Some(reference) = value.as_str()
            {
                if reference == target {
                    return true;
                }
                if !seen.insert(reference.to_owned()) {
                    return false;
                }
                let pointer = reference.strip_prefix('#').unwrap_or(reference);
                return doc
                    .pointer(pointer)
                    .is_some_and(|next| references(doc, next, target, seen));
            }
            references(doc, value, target, seen)
        }),
        Json::Array(items) => items.iter().any(|item| references(doc, item, target, seen)),
        _ => false,
    }
}

#[test]
fn the_document_is_openapi_3_1() {
    let doc = openapi();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(
        repo::read("README.md").contains("docs/openapi.yaml"),
        "the README links the API reference"
    );
}

#[test]
fn the_operations_are_the_templates_http_api_routes() {
    let routes = template_routes();
    assert!(
        routes.contains(&(CATCH_ALL.0.to_owned(), CATCH_ALL.1.to_owned())),
        "the template's catch-all route moved; update CATCH_ALL: {routes:?}"
    );
    let deployed: BTreeSet<_> = routes
        .into_iter()
        .filter(|(method, path)| (method.as_str(), path.as_str()) != CATCH_ALL)
        .collect();
    let doc = openapi();
    let documented: BTreeSet<_> = operations(&doc).into_keys().collect();
    let undocumented: Vec<_> = deployed.difference(&documented).collect();
    let not_deployed: Vec<_> = documented.difference(&deployed).collect();
    assert!(
        undocumented.is_empty() && not_deployed.is_empty(),
        "docs/openapi.yaml and infra/template.yaml disagree:\n  \
         routes without an operation: {undocumented:?}\n  \
         operations without a route: {not_deployed:?}"
    );
}

#[test]
fn every_operation_documents_401_and_every_post_400() {
    let doc = openapi();
    for ((method, path), operation) in operations(&doc) {
        let responses = operation["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path} has no responses"));
        assert!(
            responses.contains_key("401"),
            "{method} {path} does not document 401"
        );
        if method == "POST" {
            // The retry route takes no body, but an unknown key still answers 401;
            // every POST that reads a body documents its 400.
            let reads_body = operation.get("requestBody").is_some();
            assert!(
                responses.contains_key("400") || !reads_body,
                "{method} {path} does not document 400"
            );
        }
    }
}

#[test]
fn every_2xx_answer_is_the_envelope() {
    let doc = openapi();
    for ((method, path), operation) in operations(&doc) {
        let successes: Vec<_> = operation["responses"]
            .as_object()
            .into_iter()
            .flatten()
            // The label's answer is a redirect (302), with the envelope too.
            .filter(|(status, _)| status.starts_with('2') || status.starts_with('3'))
            .collect();
        assert!(
            !successes.is_empty(),
            "{method} {path} documents no 2xx or 3xx"
        );
        for (status, response) in successes {
            let schema = &resolve(&doc, response)["content"]["application/json"]["schema"];
            assert!(
                !schema.is_null(),
                "{method} {path} {status} has no application/json schema"
            );
            assert!(
                references(&doc, schema, ENVELOPE, &mut BTreeSet::new()),
                "{method} {path} {status} does not reference {ENVELOPE}"
            );
        }
    }
}

#[test]
fn every_operation_needs_the_right_kind_of_key() {
    let doc = openapi();
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("securitySchemes");
    for ((method, path), operation) in operations(&doc) {
        let required: BTreeSet<&str> = operation["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path} declares no security"))
            .iter()
            .flat_map(|alternative| alternative.as_object().into_iter().flatten())
            .map(|(name, _)| name.as_str())
            .collect();
        for name in &required {
            assert!(
                schemes.contains_key(*name),
                "{method} {path}: unknown scheme {name}"
            );
        }
        // The warehouse-events function's routes take warehouse keys.
        let expected: BTreeSet<&str> =
            if warehouse_events::serves(&path.replace("{order_number}", "o-1")) {
                ["wmsKey", "wmsApiKey"].into()
            } else {
                ["erpKey", "erpApiKey"].into()
            };
        assert_eq!(required, expected, "{method} {path}");
    }
}

#[test]
fn every_path_parameter_is_declared() {
    let doc = openapi();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let in_path: BTreeSet<&str> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let declared: BTreeSet<&str> = item["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|parameter| resolve(&doc, parameter))
            .filter(|parameter| parameter["in"] == "path")
            .filter_map(|parameter| parameter["name"].as_str())
            .collect();
        assert_eq!(in_path, declared, "{path}");
    }
}

#[test]
fn the_order_example_is_the_spec_sample() {
    let doc = openapi();
    let example = &doc["paths"]["/apicenter/api/order"]["post"]["requestBody"]["content"]["application/json"]
        ["examples"]["spec-000-sample"]["value"];
    let fixture: Json = serde_json::from_str(&repo::read("tests/fixtures/spec-000-sample.json"))
        .expect("the fixture is JSON");
    assert_eq!(example, &fixture);
}
