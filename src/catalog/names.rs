//! The one rule by which a name as written matches a declared name, and "did you mean"
//! suggestions. Names match ignoring case, spaces, underscores and hyphens (`App Launch` =
//! `AppLaunch`, `push_registration_enabled` = `pushRegistrationEnabled`): the checker, the
//! catalog's lookups and output column names all resolve through it, so a name never resolves
//! on one path and fails on another.

/// A name reduced to what matching compares.
pub fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

pub fn same(a: &str, b: &str) -> bool {
    normalize(a) == normalize(b)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The closest candidate, if it is close enough to be what the user meant.
pub fn suggest<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let w = normalize(wrong);
    let limit = (w.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (levenshtein(&w, &normalize(c)), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("primaryDevise", ["primaryDevice", "platform"]),
            Some("primaryDevice")
        );
        assert_eq!(
            suggest("AppLunch", ["AppLaunch", "Install"]),
            Some("AppLaunch")
        );
        assert_eq!(suggest("zzz", ["AppLaunch"]), None);
        assert!(
            same("App Launch", "AppLaunch")
                && same("push_registration_enabled", "pushRegistrationEnabled")
        );
    }
}
