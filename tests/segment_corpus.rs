//! The segment corpus: one `.seg` file a case. Valid cases snapshot their canonical form and their
//! resolved (typed) form and must round-trip through the formatter; error cases snapshot the
//! rendered diagnostics.

use audience::catalog::Catalog;
use audience::check::{compile, SegmentDir};
use audience::syntax::parse;
use std::path::{Path, PathBuf};

fn cases(dir: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/segments")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

fn saved() -> SegmentDir {
    SegmentDir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/segments/saved"))
}

#[test]
fn valid_segments_check_and_round_trip() {
    let catalog = Catalog::sample();
    for (name, src) in cases("valid") {
        let typed = compile(&src, &catalog, &saved())
            .unwrap_or_else(|d| panic!("{name}: {}", d.render(&src, &name, false)));
        let formatted = parse(&src).unwrap().to_string();
        // The canonical form parses to the same segment: same canonical text, same typed form.
        let reparsed = parse(&formatted)
            .unwrap_or_else(|d| panic!("{name}: fmt output does not parse: {formatted}: {d}"));
        assert_eq!(reparsed.to_string(), formatted, "{name}");
        assert_eq!(
            compile(&formatted, &catalog, &saved()).unwrap(),
            typed,
            "{name}: fmt changed the meaning"
        );
        insta::assert_snapshot!(
            format!("valid__{name}"),
            format!(
                "{}\n--- fmt\n{formatted}\n--- resolved\n{}",
                src.trim_end(),
                typed.root
            )
        );
    }
}

#[test]
fn error_segments_render_diagnostics() {
    let catalog = Catalog::sample();
    for (name, src) in cases("errors") {
        let d = match compile(&src, &catalog, &saved()) {
            Ok(t) => panic!("{name}: expected an error, got {}", t.root),
            Err(d) => d,
        };
        for diag in &d.0 {
            assert!(
                diag.span.start <= diag.span.end && diag.span.end <= src.len(),
                "{name}: span out of range"
            );
        }
        insta::assert_snapshot!(
            format!("error__{name}"),
            format!(
                "{}\n---\n{}",
                src.trim_end(),
                d.render(&src, &format!("{name}.seg"), false)
            )
        );
    }
}

#[test]
fn several_errors_are_reported_at_once() {
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/segments/errors/several_errors.seg"),
    )
    .unwrap();
    let d = compile(&src, &Catalog::sample(), &saved()).unwrap_err();
    let messages: Vec<&str> = d.0.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(messages.len(), 4, "{messages:?}");
    let json = d.to_json(&src);
    assert_eq!(json["diagnostics"][2]["line"], 2);
    assert_eq!(
        json["diagnostics"][0]["hint"],
        "did you mean `primaryDevice`?"
    );
}

/// Every example in the grammar file parses and checks.
#[test]
fn grammar_examples_parse_and_check() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("grammar/segment.ebnf"))
            .unwrap();
    let examples: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("(* example: "))
        .map(|l| l.trim_end_matches("*)").trim())
        .collect();
    assert!(examples.len() >= 20, "{} examples", examples.len());
    for ex in examples {
        compile(ex, &Catalog::sample(), &saved())
            .unwrap_or_else(|d| panic!("grammar example `{ex}`: {d}"));
    }
}
