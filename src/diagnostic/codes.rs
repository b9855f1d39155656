//! Stable diagnostic codes. A code names a kind of mistake, not a message: messages may be
//! reworded, codes never change meaning (programs and the web page key on them). The list is
//! documented in grammar/diagnostics.md, which a test keeps equal to [`Code::ALL`].

use serde::{Serialize, Serializer};
use std::fmt;

macro_rules! codes {
    ($($variant:ident = $code:literal: $title:literal,)*) => {
        /// What kind of mistake a diagnostic reports.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $(#[doc = $title] $variant,)*
        }

        impl Code {
            /// Every code, in documentation order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// `E012`, `W003`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $code,)*
                }
            }

            /// One line saying what the code means.
            pub fn title(self) -> &'static str {
                match self {
                    $(Code::$variant => $title,)*
                }
            }
        }
    };
}

codes! {
    // Syntax.
    Empty = "E001": "the segment is empty",
    Unexpected = "E002": "unexpected text where the segment should continue or end",
    ExpectedCondition = "E003": "a condition is missing (after `and`, `or`, `not`, `(` or at the start)",
    Unclosed = "E004": "a `(` or an event function is not closed",
    ExpectedValue = "E005": "a value is missing after an operator",
    BadList = "E006": "a list is malformed (`in (…)`, `has any (…)`)",
    IncompletePhrase = "E007": "a keyword phrase is incomplete (`between … and …`, `is set`, `starts with`)",
    BadName = "E008": "a name is malformed (quoting, non-ASCII letters, a missing part after `.`)",
    BadString = "E009": "a string is malformed (unterminated, unknown escape)",
    BadNumber = "E010": "a number is malformed or out of range",
    BadTime = "E011": "a date or timestamp is malformed or out of range",
    BadDuration = "E012": "a duration is malformed, uses an unknown unit, or is too large",
    TooLarge = "E013": "the segment is too long or nests too deep",
    BadSegmentReference = "E014": "`segment(…)` is not given a saved segment's name as a string",
    BadSequence = "E015": "a sequence is malformed (a gap on its first step, `then not` before its last, `then` outside `did(…)`)",
    BadRegularity = "E016": "a regularity test is malformed (`>= 3 per week in 4 of the last 6 weeks`)",
    // Names.
    UnknownAttribute = "E020": "no attribute has this name",
    AmbiguousAttribute = "E021": "the name is an attribute of both persons and installations",
    CustomWithoutNamespace = "E022": "a custom attribute is named without `custom.`",
    UnknownEvent = "E023": "no event has this name",
    UnknownProperty = "E024": "the event has no property of this name",
    PropertyOutsideFunction = "E025": "an event property is used outside an event function",
    NotAProperty = "E026": "inside `where`, a name is not a property of the event",
    // Types.
    TypeMismatch = "E030": "the value's type is not the attribute's",
    NotACondition = "E031": "a value that is not true or false is used as a condition",
    OperatorNotApplicable = "E032": "the operator does not apply to this type",
    BadVersion = "E033": "a version literal is not dotted numbers",
    BadRegex = "E034": "the regular expression is invalid",
    TimeExpected = "E035": "a point in time or a duration is expected, and the other was written",
    // Event functions.
    NotComparable = "E040": "`did(…)` or `segment(…)` is compared like a value",
    BadAggregateProperty = "E041": "an event function is missing its number property or takes none",
    AlwaysSet = "E042": "`is set` on a count or sum, which always has a value",
    NestedFunction = "E043": "an event function or `segment(…)` is nested inside `where`",
    BadGap = "E044": "a sequence's gap or a regularity's period is not an exact length of time",
    BadRegularityCount = "E045": "a regularity test's counts are out of range (1 ≤ K ≤ M ≤ 366)",
    BadLapse = "E046": "the windows of `stopped(…)` or `restarted(…)` are not durations, or in the wrong order",
    NotAnniversary = "E047": "an anniversary is tested with something other than `within [next] D`, or of a non-date",
    // Saved segments.
    UnknownSavedSegment = "E050": "no saved segment has this name",
    UnreadableSavedSegment = "E051": "the saved segment's file cannot be read",
    SavedSegmentErrors = "E052": "the saved segment has errors of its own",
    SavedSegmentCycle = "E053": "saved segments refer to each other in a cycle",
    TooManyExpansions = "E054": "saved segments expand to too many references",
    // Bugs.
    Internal = "E099": "a bug in audience (please report it with the segment)",
    // Warnings: the segment runs, but the answer may not be what was meant.
    ValueNeverSeen = "W001": "no row of the snapshot has this value",
    SuspiciousWindow = "W002": "a window so short it reads as another unit (`3m` is minutes)",
    ScopeTrap = "W003": "an event whose person and installation scopes mean different things",
    AsOfOutsideHistory = "W004": "the as-of time is outside the snapshot's history",
    AttributesAtSnapshot = "W005": "under `--as-of`, attribute conditions still use the snapshot's values",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The documentation table of every code (grammar/diagnostics.md holds it verbatim).
pub fn table() -> String {
    let mut out = String::from("| code | meaning |\n|---|---|\n");
    for c in Code::ALL {
        out.push_str(&format!("| {} | {} |\n", c.as_str(), c.title()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_list_is_the_list() {
        let doc = include_str!("../../grammar/diagnostics.md");
        assert!(
            doc.contains(&table()),
            "grammar/diagnostics.md must contain this table:\n{}",
            table()
        );
    }

    #[test]
    fn codes_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
        }
    }
}
