//! The README is a manual: short, and every page it or the docs link to
//! exists, down to the heading a link names. A page renamed or a heading
//! reworded breaks this test instead of a reader's click.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

mod repo;

const README_MOST_LINES: usize = 200;

/// The pages: the README and every Markdown file in docs/.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![PathBuf::from("README.md")];
    for entry in std::fs::read_dir(repo::root().join("docs")).expect("docs/ exists") {
        let name = entry.expect("docs/ is readable").file_name();
        if name.to_string_lossy().ends_with(".md") {
            pages.push(Path::new("docs").join(name));
        }
    }
    pages
}

/// GitHub's anchor for a heading: lower case, spaces to hyphens, and only
/// letters, digits, hyphens and underscores kept.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(page: &str) -> BTreeSet<String> {
    let mut fenced = false;
    page.lines()
        .filter(|line| {
            if line.starts_with("```") {
                fenced = !fenced;
            }
            !fenced && line.starts_with('#')
        })
        .map(|line| anchor(line.trim_start_matches('#')))
        .collect()
}

/// Relative link targets of a Markdown page: `](target)` outside code.
fn links(page: &str) -> Vec<String> {
    page.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|target| !target.contains("://") && !target.starts_with("mailto:"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readme_is_a_short_manual() {
    let lines = repo::read("README.md").lines().count();
    assert!(
        lines <= README_MOST_LINES,
        "README.md has {lines} lines; the reference belongs in docs/ (at most {README_MOST_LINES})"
    );
}

#[test]
fn every_link_between_the_pages_reaches_its_page_and_heading() {
    let mut broken = Vec::new();
    for page in pages() {
        let text = repo::read(&page);
        let dir = page.parent().unwrap_or(Path::new(""));
        for link in links(&text) {
            let (file, heading) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                dir.join(file)
            };
            if !repo::root().join(&target).exists() {
                broken.push(format!("{}: {link} (no such file)", page.display()));
            } else if !heading.is_empty()
                && target.extension().is_some_and(|ext| ext == "md")
                && !anchors(&repo::read(&target)).contains(heading)
            {
                broken.push(format!("{}: {link} (no such heading)", page.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken links:\n  {}",
        broken.join("\n  ")
    );
}

/// What the walk-through says the service prints or answers, quoted from the
/// README: each phrase must still be in the code that says it.
#[test]
fn the_walk_through_quotes_what_the_code_says() {
    let quoted = [
        (
            "\"message\":\"created\"",
            "functions/order-intake/src/lib.rs",
            "\"created\"",
        ),
        (
            "already received; this is the stored order",
            "functions/order-intake/src/lib.rs",
            "already received; this is the stored order",
        ),
        (
            "\"message\", \"personal data erased\"",
            "functions/order-intake/src/lib.rs",
            "\"personal data erased\"",
        ),
        (
            "local partner received a platform callback",
            "infra/local-stack/src/partner.rs",
            "local partner received a platform callback",
        ),
        (
            "created; keep the secret, it is shown only now",
            "functions/webhook-api/src/lib.rs",
            "created; keep the secret, it is shown only now",
        ),
        (
            "refused (401): …",
            "infra/local-stack/src/bin/webhook-receiver.rs",
            "refused (401): {why}",
        ),
        (
            "verified order.accepted         order mabang-test002  sequence 1",
            "infra/local-stack/src/bin/webhook-receiver.rs",
            "\"verified {:<22} order {}  sequence {}\"",
        ),
        (
            "partner access token refreshed and stored",
            "shared/src/token_refresh.rs",
            "partner access token refreshed and stored",
        ),
    ];
    let readme = repo::read("README.md");
    let mut stale = Vec::new();
    for (in_readme, file, in_code) in quoted {
        let readme_says = readme.contains(in_readme) || readme.contains(in_code);
        if !readme_says || !repo::read(file).contains(in_code) {
            stale.push(format!("{in_code:?} (README: {readme_says}, {file})"));
        }
    }
    assert!(
        stale.is_empty(),
        "the walk-through and the code disagree on:\n  {}",
        stale.join("\n  ")
    );
}
