//! checkov runs on infra/template.yaml in `make test` (infra/local/template-checks.sh)
//! and fails on any failed check; a check that does not fit this service is
//! skipped in the resource's `Metadata`, and each skip must say why in one
//! line a reviewer can accept or refuse.

use serde_norway::Value;

mod repo;

/// `(resource, check id, problem)` for every skip without a one-line reason.
fn unexplained_skips(template: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let resources = template
        .get("Resources")
        .and_then(Value::as_mapping)
        .expect("template has Resources");
    for (id, resource) in resources {
        let id = id.as_str().unwrap_or_default();
        let skips = resource
            .get("Metadata")
            .and_then(|m| m.get("checkov"))
            .and_then(|c| c.get("skip"))
            .and_then(Value::as_sequence)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for skip in skips {
            let check = skip.get("id").and_then(Value::as_str).unwrap_or("?");
            let comment = skip.get("comment").and_then(Value::as_str).unwrap_or("");
            if !check.starts_with("CKV") {
                problems.push(format!("{id}: a skip without a check id ({skip:?})"));
            }
            if comment.trim().len() < 20 || comment.contains('\n') {
                problems.push(format!(
                    "{id}: {check} is skipped without a one-line reason"
                ));
            }
        }
    }
    problems
}

#[test]
fn every_skipped_scanner_check_says_why() {
    repo::assert_template_passes(unexplained_skips);
}

#[test]
fn a_skip_without_a_reason_is_found() {
    let template: Value = serde_norway::from_str(
        "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Metadata:\n      checkov:\n        skip:\n          - id: CKV_AWS_27\n",
    )
    .expect("YAML");
    assert_eq!(
        unexplained_skips(&template),
        ["Queue: CKV_AWS_27 is skipped without a one-line reason"]
    );
}
