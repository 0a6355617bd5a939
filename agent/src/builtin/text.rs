//! Case-insensitive matching helpers that keep the user's original text (and its case).
//!
//! Patterns are ASCII; ASCII case folding keeps byte offsets, so a match found in a
//! lowered copy slices the original at the same place.

/// Normalizes whitespace, typographic quotes and trailing punctuation.
pub(crate) fn clean(input: &str) -> String {
    let replaced: String = input
        .chars()
        .map(|c| match c {
            '\u{2018}' | '\u{2019}' | '\u{02BC}' => '\'',
            '\u{201C}' | '\u{201D}' => '"',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    let joined = replaced.split_whitespace().collect::<Vec<_>>().join(" ");
    trim_punct_end(&joined).to_owned()
}

/// Trims trailing sentence punctuation and spaces.
pub(crate) fn trim_punct_end(s: &str) -> &str {
    s.trim_end_matches(['.', '!', '?', ',', ';', ':', ' '])
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '\''
}

/// `s` without `prefix` (ASCII case-insensitive, ending at a word boundary), left-trimmed.
pub(crate) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let n = prefix.len();
    if s.len() < n || !s.is_char_boundary(n) || !s[..n].eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = &s[n..];
    let ends_in_word = prefix.chars().last().is_some_and(is_word_char);
    if ends_in_word && rest.chars().next().is_some_and(is_word_char) {
        return None;
    }
    Some(rest.trim_start_matches([' ', ',']))
}

/// The first of `prefixes` that `s` starts with, and the rest.
pub(crate) fn strip_any_prefix<'a>(s: &'a str, prefixes: &[&str]) -> Option<&'a str> {
    prefixes.iter().find_map(|p| strip_prefix_ci(s, p))
}

/// `s` without `suffix` (ASCII case-insensitive, starting at a word boundary), right-trimmed.
pub(crate) fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let n = suffix.len();
    if s.len() < n || !s.is_char_boundary(s.len() - n) {
        return None;
    }
    let cut = s.len() - n;
    if !s[cut..].eq_ignore_ascii_case(suffix) {
        return None;
    }
    let head = &s[..cut];
    let starts_in_word = suffix.chars().next().is_some_and(is_word_char);
    if starts_in_word && head.chars().last().is_some_and(is_word_char) {
        return None;
    }
    Some(head.trim_end())
}

/// Strips any of `suffixes` repeatedly.
pub(crate) fn strip_suffixes<'a>(mut s: &'a str, suffixes: &[&str]) -> &'a str {
    loop {
        match suffixes.iter().find_map(|x| strip_suffix_ci(s, x)) {
            Some(rest) => s = trim_punct_end(rest),
            None => return s,
        }
    }
}

/// Splits at the first ASCII case-insensitive occurrence of `sep`; both parts trimmed.
pub(crate) fn split_once_ci<'a>(s: &'a str, sep: &str) -> Option<(&'a str, &'a str)> {
    let lower = s.to_ascii_lowercase();
    let at = lower.find(&sep.to_ascii_lowercase())?;
    Some((s[..at].trim(), s[at + sep.len()..].trim()))
}

/// Lowercase words without apostrophes, for classification ("What's" -> "whats").
pub(crate) fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !is_word_char(c) && c != '-')
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Whether the word list contains `phrase` (space-separated words) as a contiguous run.
pub(crate) fn has_phrase(words: &[String], phrase: &str) -> bool {
    let p: Vec<&str> = phrase.split(' ').collect();
    words
        .windows(p.len())
        .any(|w| w.iter().zip(&p).all(|(a, b)| a == b))
}

/// Removes one pair of matching surrounding quotes.
pub(crate) fn unquote(s: &str) -> &str {
    let t = s.trim();
    for q in ['"', '\'', '`'] {
        if t.len() >= 2 && t.starts_with(q) && t.ends_with(q) {
            return t[1..t.len() - 1].trim();
        }
    }
    t
}
