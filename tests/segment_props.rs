//! Properties of the front end: no input panics or overflows the stack, and the canonical form
//! means the same segment.

mod common;

use audience::catalog::Catalog;
use audience::check::{compile, NoSavedSegments};
use audience::syntax::{parse, MAX_DEPTH, MAX_SEGMENT_BYTES};
use proptest::prelude::*;

const TOKENS: &[&str] = &[
    "(",
    ")",
    "and",
    "or",
    "not",
    "count(",
    "sum(",
    "did(",
    "installation.",
    "person.",
    "custom.",
    "AppLaunch",
    "Purchase.amount",
    "where",
    "within",
    "30d",
    "since",
    "between",
    "2026-01-01",
    "2026-01-01T10:00:00Z",
    "ago",
    "=",
    "!=",
    ">=",
    "<",
    "\"iOS\"",
    "\"a\\\"b\"",
    "12",
    "-4.5",
    "true",
    "in",
    "has",
    "any",
    "all",
    ",",
    "is",
    "set",
    "contains",
    "starts",
    "with",
    "matches",
    "platform",
    "tags",
    "age",
    "`App Launch`",
    "segment(\"x\")",
    "#",
    "\n",
    "é",
    "`",
    "\"",
    "1d12h",
    "99999999999999999999d",
    ".",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,120}") {
        let _ = compile(&s, &Catalog::sample(), &NoSavedSegments);
    }

    #[test]
    fn token_soup_never_panics(tokens in proptest::collection::vec(proptest::sample::select(TOKENS), 0..40)) {
        let s = tokens.join(" ");
        if let Err(d) = compile(&s, &Catalog::sample(), &NoSavedSegments) {
            for diag in &d.0 {
                prop_assert!(diag.span.end <= s.len());
            }
            let _ = d.render(&s, "t", false);
        }
    }

    #[test]
    fn fmt_round_trips(src in common::segments::segment()) {
        let typed = compile(&src, &Catalog::sample(), &NoSavedSegments)
            .map_err(|d| TestCaseError::fail(format!("{src}: {d}")))?;
        let formatted = parse(&src).unwrap().to_string();
        let again = parse(&formatted).map_err(|d| TestCaseError::fail(format!("{formatted}: {d}")))?;
        prop_assert_eq!(again.to_string(), formatted.clone());
        prop_assert_eq!(compile(&formatted, &Catalog::sample(), &NoSavedSegments).unwrap(), typed);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for open in ["(", "not ", "not (", "count(Purchase where "] {
        let src = open.repeat(100_000) + "primaryDevice";
        let d = parse(&src[..src.len().min(MAX_SEGMENT_BYTES)]).unwrap_err();
        assert!(
            d.0[0]
                .message
                .contains(&format!("nests deeper than {MAX_DEPTH}")),
            "{open}: {}",
            d.0[0].message
        );
    }
    // Just under the limit is fine.
    let ok = "(".repeat(MAX_DEPTH - 1) + "not primaryDevice" + &")".repeat(MAX_DEPTH - 1);
    assert_eq!(parse(&ok).unwrap().to_string(), "not primaryDevice");
    let typed = compile(&ok, &Catalog::sample(), &NoSavedSegments).unwrap();
    assert_eq!(typed.root.to_string(), "not installation.primaryDevice");
}

#[test]
fn oversized_input_is_refused() {
    let src = "primaryDevice or ".repeat(MAX_SEGMENT_BYTES / 10) + "identified";
    let d = parse(&src).unwrap_err();
    assert!(
        d.0[0].message.contains("at most 65536"),
        "{}",
        d.0[0].message
    );
}

#[test]
fn keywords_are_matched_whole() {
    let err = compile("andromeda", &Catalog::sample(), &NoSavedSegments).unwrap_err();
    assert_eq!(err.0[0].message, "unknown attribute `andromeda`");
    assert!(parse("primaryDevice andidentified").is_err());
    assert!(parse("notificationsEnabled").is_ok());
}

#[test]
fn ambiguous_names_ask_for_a_prefix() {
    use audience::catalog::ValueType;
    let catalog = Catalog::with_custom(
        &[("theme", ValueType::String)],
        &[("theme", ValueType::String)],
        &[],
    );
    let d = compile("custom.theme = \"dark\"", &catalog, &NoSavedSegments).unwrap_err();
    assert_eq!(
        d.0[0].hint.as_deref(),
        Some("write person.custom.theme or installation.custom.theme")
    );
    assert!(compile("person.custom.theme = \"dark\"", &catalog, &NoSavedSegments).is_ok());
}
