//! How the user points at a task ("3", "task #3", "the milk one") and resolving that
//! against the user's current tasks.

use super::text::{strip_any_prefix, strip_suffixes, trim_punct_end, unquote, words};
use crate::executor::TaskView;

/// A reference to one task, as written by the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskRef {
    /// By id ("3", "task #3", "number 3").
    Id(i64),
    /// By words of its title ("the milk one" -> ["milk"]).
    Words(Vec<String>),
    /// "all", "everything": the tools act on one task at a time.
    All,
}

const LEADING: &[&str] = &[
    "the",
    "my",
    "that",
    "this",
    "task",
    "item",
    "todo",
    "to-do",
    "number",
    "no.",
    "num",
    "id",
    "one about",
    "one",
    "about",
];
const TRAILING: &[&str] = &[
    "one",
    "task",
    "item",
    "todo",
    "thing",
    "off",
    "as done",
    "now",
    "for me",
    "please",
    "again",
    "off my list",
    "from my list",
    "from the list",
    "from my tasks",
    "from my todo list",
    "from my to-do list",
    "from my to do list",
    "off the list",
    "anymore",
    "any more",
];
const STOP: &[&str] = &[
    "the", "a", "an", "my", "that", "this", "one", "ones", "task", "tasks", "item", "todo",
    "thing", "about", "with", "of", "to", "for", "on", "i", "it", "is", "was", "and", "off",
    "please", "list", "me", "called", "named", "titled", "number", "id", "im", "ive", "we", "were",
    "you",
];

/// Parses a reference; `None` when nothing usable is left.
pub fn parse_ref(text: &str) -> Option<TaskRef> {
    let mut s = unquote(trim_punct_end(text.trim()));
    while let Some(rest) = strip_any_prefix(s, LEADING) {
        s = rest;
    }
    s = strip_suffixes(s, TRAILING);
    let digits = s.trim().trim_start_matches('#').trim();
    if let Ok(id) = digits.parse::<i64>() {
        return (id > 0).then_some(TaskRef::Id(id));
    }
    let ws: Vec<String> = words(s)
        .into_iter()
        .filter(|w| !STOP.contains(&w.as_str()))
        .collect();
    let all = [
        "all",
        "everything",
        "every",
        "all tasks",
        "them all",
        "all of them",
    ];
    if ws
        .iter()
        .any(|w| w == "all" || w == "everything" || w == "every")
        && ws.len() <= 2
        || all.contains(&s.to_ascii_lowercase().as_str())
    {
        return Some(TaskRef::All);
    }
    (!ws.is_empty()).then_some(TaskRef::Words(ws))
}

/// The outcome of resolving a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Exactly one task.
    Found(TaskView),
    /// Several tasks fit equally well.
    Ambiguous(Vec<TaskView>),
    /// No task fits.
    NotFound,
}

fn stem(w: &str) -> &str {
    for suffix in ["ing", "ed", "es", "s"] {
        if let Some(base) = w.strip_suffix(suffix) {
            if base.chars().count() >= 3 {
                return base;
            }
        }
    }
    w
}

fn word_matches(reference: &str, title_word: &str) -> bool {
    let (a, b) = (stem(reference), stem(title_word));
    if a == b {
        return true;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.chars().count() >= 3 && long.starts_with(short)
}

fn score(ref_words: &[String], task: &TaskView) -> usize {
    let title_words = words(&task.title);
    ref_words
        .iter()
        .filter(|r| title_words.iter().any(|t| word_matches(r, t)))
        .count()
}

/// Resolves `reference` among `tasks`; `prefer_pending` breaks ties in favour of open tasks.
pub fn resolve(reference: &TaskRef, tasks: &[TaskView], prefer_pending: bool) -> Resolution {
    let ref_words = match reference {
        TaskRef::Id(id) => {
            return tasks
                .iter()
                .find(|t| t.id == *id)
                .map_or(Resolution::NotFound, |t| Resolution::Found(t.clone()))
        }
        TaskRef::All => return Resolution::Ambiguous(tasks.to_vec()),
        TaskRef::Words(ws) => ws,
    };
    let scored: Vec<(usize, &TaskView)> = tasks.iter().map(|t| (score(ref_words, t), t)).collect();
    let best = scored.iter().map(|(s, _)| *s).max().unwrap_or(0);
    if best == 0 {
        return Resolution::NotFound;
    }
    let mut candidates: Vec<&TaskView> = scored
        .iter()
        .filter(|(s, _)| *s == best)
        .map(|(_, t)| *t)
        .collect();
    if prefer_pending && candidates.iter().any(|t| !t.completed) {
        candidates.retain(|t| !t.completed);
    }
    if candidates.len() > 1 && best == ref_words.len() {
        // A title that consists of exactly the referenced words wins ("milk" over "buy milk").
        let exact: Vec<&TaskView> = candidates
            .iter()
            .copied()
            .filter(|t| words(&t.title).len() == ref_words.len())
            .collect();
        if exact.len() == 1 {
            candidates = exact;
        }
    }
    match candidates.as_slice() {
        [one] => Resolution::Found((*one).clone()),
        many => Resolution::Ambiguous(many.iter().map(|t| (*t).clone()).collect()),
    }
}
