//! `audience fmt`: a segment in canonical form, its comments kept, long segments broken over
//! lines at their top-level `and` / `or`.
//!
//! The canonical printer (the AST's `Display`) drops comments, so this keeps them by position: a
//! comment before the first condition stays at the top; a comment on a condition's line stays
//! after that condition; a comment on a line of its own stays before the condition that follows
//! it. Formatting its own output changes nothing.

use super::ast::{Pred, Segment};
use crate::diagnostic::Diagnostics;

/// A `#` comment of the text: where it starts, and its text without the newline.
struct Comment {
    at: usize,
    text: String,
    /// Nothing but whitespace before it on its line.
    own_line: bool,
}

/// The comments of `src`: every `#` outside strings and quoted names, to the end of its line.
fn comments(src: &str) -> Vec<Comment> {
    let mut out = Vec::new();
    let mut chars = src.char_indices().peekable();
    let mut line_start = 0;
    while let Some((i, c)) = chars.next() {
        match c {
            '\n' => line_start = i + 1,
            '"' => {
                while let Some((_, d)) = chars.next() {
                    match d {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '`' => {
                for (_, d) in chars.by_ref() {
                    if d == '`' {
                        break;
                    }
                }
            }
            '#' => {
                let end = src[i..].find('\n').map_or(src.len(), |n| i + n);
                out.push(Comment {
                    at: i,
                    text: src[i..end].trim_end().to_string(),
                    own_line: src[line_start..i].trim().is_empty(),
                });
                while chars.peek().is_some_and(|(j, _)| *j < end) {
                    chars.next();
                }
            }
            _ => {}
        }
    }
    out
}

/// The top-level conditions and the word joining them (`and`, `or`, or none for one).
fn top_level(seg: &Segment) -> (Vec<&Pred>, &'static str) {
    match &seg.root {
        Pred::And(items) => (items.iter().collect(), "and"),
        Pred::Or(items) => (items.iter().collect(), "or"),
        other => (vec![other], ""),
    }
}

/// The canonical form of `src`, comments kept, broken at top-level `and` / `or` when longer
/// than `width` or when comments sit between conditions. Ends with a newline.
pub fn format(src: &str, width: usize) -> Result<String, Diagnostics> {
    let seg = super::parse(src)?;
    let one_line = seg.to_string();
    let notes = comments(src);
    let (items, word) = top_level(&seg);
    if notes.is_empty() && (one_line.len() <= width || items.len() == 1) {
        return Ok(format!("{one_line}\n"));
    }
    let first_start = items[0].span().start;
    // Comments before, after (on the same line) and inside each condition.
    let mut head: Vec<&str> = Vec::new();
    let mut leading: Vec<Vec<&str>> = vec![Vec::new(); items.len()];
    let mut trailing: Vec<Vec<&str>> = vec![Vec::new(); items.len()];
    for c in &notes {
        if c.at < first_start {
            head.push(&c.text);
            continue;
        }
        // The last condition starting before the comment.
        let k = items
            .iter()
            .rposition(|p| p.span().start < c.at)
            .unwrap_or(0);
        if c.own_line && c.at >= items[k].span().end && k + 1 < items.len() {
            leading[k + 1].push(&c.text);
        } else {
            trailing[k].push(&c.text);
        }
    }
    let mut out = String::new();
    for h in &head {
        out.push_str(h);
        out.push('\n');
    }
    for (k, item) in items.iter().enumerate() {
        let indent = if k == 0 { "" } else { "  " };
        for l in &leading[k] {
            out.push_str(&format!("{indent}{l}\n"));
        }
        let text = if items.len() == 1 {
            one_line.clone()
        } else {
            // As the canonical printer prints an item of this level (parenthesized if needed).
            child(item, word)
        };
        if k == 0 {
            out.push_str(&text);
        } else {
            out.push_str(&format!("  {word} {text}"));
        }
        for t in &trailing[k] {
            out.push_str("  ");
            out.push_str(t);
        }
        out.push('\n');
    }
    Ok(out)
}

/// An item of a top-level `and` / `or` as the canonical printer prints it there.
fn child(p: &Pred, word: &str) -> String {
    let needs_parens = match (word, p) {
        ("and", Pred::Or(_)) => true,
        ("and", Pred::Group(inner, _)) => matches!(inner.as_ref(), Pred::Or(_)),
        _ => false,
    };
    if needs_parens {
        format!("({p})")
    } else {
        p.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use insta::assert_snapshot;

    #[test]
    fn short_segments_stay_on_one_line() {
        assert_snapshot!(format("a  AND b", 100).unwrap(), @"a and b");
    }

    #[test]
    fn long_segments_break_at_the_top_level() {
        let src = "primaryDevice and pushRegistrationEnabled and count(AppLaunch within 30d) >= 3 and (platform = \"iOS\" or platform = \"Android\")";
        assert_snapshot!(format(src, 60).unwrap(), @r#"
        primaryDevice
          and pushRegistrationEnabled
          and count(AppLaunch within 30d) >= 3
          and (platform = "iOS" or platform = "Android")
        "#);
    }

    #[test]
    fn comments_stay_where_they_were() {
        let src = "# churn risk, weekly\nlast(AppLaunch) before 30d ago  # lapsed\n  # still installed\n  and state != \"uninstalled\" and tags has \"#vip\"";
        let once = format(src, 100).unwrap();
        assert_snapshot!(once, @r##"
        # churn risk, weekly
        last(AppLaunch) before 30d ago  # lapsed
          # still installed
          and state != "uninstalled"
          and tags has "#vip"
        "##);
        assert_eq!(
            format(&once, 100).unwrap(),
            once,
            "formatting is idempotent"
        );
    }
}
