//! The deterministic intent parser: one message in, one [`Intent`] out.

use super::reference::{parse_ref, TaskRef};
use super::text::{
    clean, has_phrase, split_once_ci, strip_any_prefix, strip_prefix_ci, strip_suffix_ci,
    strip_suffixes, trim_punct_end, unquote, words,
};
use crate::tools::StatusFilter;

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// "hi", "good morning".
    Greeting,
    /// "help", "what can you do".
    Help,
    /// "thanks", "great".
    Thanks,
    /// Create a task.
    Add {
        /// The title, as the user wrote it.
        title: String,
        /// Optional description.
        description: Option<String>,
    },
    /// List tasks.
    List {
        /// Filter, when the user named one.
        status: Option<StatusFilter>,
    },
    /// Mark a task done.
    Complete {
        /// Which task; `None` when the user did not say.
        target: Option<TaskRef>,
    },
    /// Delete a task.
    Delete {
        /// Which task; `None` when the user did not say.
        target: Option<TaskRef>,
    },
    /// Change a task's title.
    Rename {
        /// Which task.
        target: Option<TaskRef>,
        /// The new title.
        title: String,
    },
    /// Change a task's description.
    Describe {
        /// Which task.
        target: Option<TaskRef>,
        /// The new description.
        description: String,
    },
    /// The request is understood but something is missing; the text asks for it.
    Clarify(String),
    /// Understood, but not something the tools can do; the text explains.
    Unsupported(String),
    /// Not understood.
    Unknown,
}

const FILLERS: &[&str] = &[
    "please",
    "pls",
    "plz",
    "kindly",
    "can you",
    "could you",
    "would you",
    "will you",
    "can u",
    "could u",
    "i want you to",
    "i'd like you to",
    "id like you to",
    "go ahead and",
    "just",
    "ok",
    "okay",
    "so",
    "now",
    "also",
    "and",
    "then",
    "hey",
    "hi",
    "hello",
    "oh",
    "um",
    "uh",
    "well",
    "alright",
    "right",
    "yes",
    "yeah",
];
const TRAILING_FILLERS: &[&str] = &[
    "please",
    "pls",
    "plz",
    "thanks",
    "thank you",
    "thx",
    "for me",
    "ok",
    "okay",
    "now",
];

/// Parses one message.
pub fn parse(input: &str) -> Intent {
    let cleaned = clean(input);
    if let Some(i) = small_talk(&cleaned) {
        return i;
    }
    let mut s = cleaned.as_str();
    loop {
        match strip_any_prefix(s, FILLERS) {
            Some(rest) if !rest.is_empty() => s = rest,
            _ => break,
        }
    }
    let s = strip_suffixes(s, TRAILING_FILLERS);
    if s.is_empty() {
        return Intent::Help;
    }
    if let Some(i) = small_talk(s) {
        return i;
    }
    parse_update(s)
        .or_else(|| parse_complete(s))
        .or_else(|| parse_delete(s))
        .or_else(|| parse_list(s))
        .or_else(|| parse_add(s))
        .or_else(|| parse_done_suffix(s, input.trim_end().ends_with('?')))
        .or_else(|| bare_reference(s))
        .unwrap_or(Intent::Unknown)
}

fn small_talk(s: &str) -> Option<Intent> {
    let w = words(s).join(" ");
    const GREETINGS: &[&str] = &[
        "hi",
        "hello",
        "hey",
        "hey there",
        "hi there",
        "hello there",
        "good morning",
        "good afternoon",
        "good evening",
        "morning",
        "yo",
        "howdy",
        "greetings",
        "sup",
        "whats up",
        "how are you",
        "hi how are you",
        "hello how are you",
        "hiya",
        "heya",
    ];
    const HELP: &[&str] = &[
        "help",
        "help me",
        "what can you do",
        "what do you do",
        "how does this work",
        "how do i use this",
        "how do i use you",
        "commands",
        "what can i say",
        "what can i ask",
        "what are the commands",
        "options",
        "menu",
        "usage",
        "who are you",
        "what are you",
        "what can i do",
        "how do you work",
        "what should i say",
        "instructions",
    ];
    const THANKS: &[&str] = &[
        "thanks",
        "thank you",
        "thx",
        "ty",
        "cheers",
        "thanks a lot",
        "thank you so much",
        "great thanks",
        "awesome",
        "cool",
        "ok",
        "okay",
        "great",
        "nice",
        "perfect",
        "got it",
        "ok thanks",
        "okay thanks",
        "thanks so much",
        "much appreciated",
    ];
    if GREETINGS.contains(&w.as_str()) {
        Some(Intent::Greeting)
    } else if HELP.contains(&w.as_str()) {
        Some(Intent::Help)
    } else if THANKS.contains(&w.as_str()) {
        Some(Intent::Thanks)
    } else {
        None
    }
}

fn target(text: &str) -> Option<TaskRef> {
    parse_ref(text)
}

const DONE_WORDS: &[&str] = &[
    "done",
    "complete",
    "completed",
    "finished",
    "checked",
    "checked off",
];

fn parse_update(s: &str) -> Option<Intent> {
    if let Some(rest) = strip_prefix_ci(s, "rename") {
        let parts = split_once_ci(rest, " to ").or_else(|| split_once_ci(rest, " as "));
        return Some(match parts {
            Some((r, title)) if !unquote(title).is_empty() => Intent::Rename {
                target: target(r),
                title: unquote(title).to_owned(),
            },
            _ => Intent::Clarify(
                "What should the new name be? For example: rename task 1 to buy oat milk".into(),
            ),
        });
    }
    if let Some(rest) = strip_any_prefix(s, &["describe"]) {
        let parts = split_once_ci(rest, " as ").or_else(|| split_once_ci(rest, ":"));
        if let Some((r, d)) = parts {
            return describe(r, d);
        }
    }
    if let Some(rest) = strip_any_prefix(s, &["add", "put", "write", "attach"]) {
        const NOTE: &[&str] = &[
            "a description",
            "the description",
            "description",
            "a note",
            "the note",
            "note",
            "notes",
            "some notes",
            "details",
            "some details",
        ];
        if let Some(rest) = strip_any_prefix(rest, NOTE) {
            if let Some(rest) = strip_any_prefix(rest, &["to", "for", "on"]) {
                let parts = split_once_ci(rest, ":")
                    .or_else(|| split_once_ci(rest, " saying "))
                    .or_else(|| split_once_ci(rest, " that says "))
                    .or_else(|| split_once_ci(rest, " - "));
                // Without a separator this is more likely a new task ("add a note to buy stamps").
                if let Some((r, d)) = parts {
                    return describe(r, d);
                }
            }
        }
    }
    let rest = strip_any_prefix(
        s,
        &[
            "change", "set", "update", "edit", "modify", "make", "switch", "replace",
        ],
    )?;
    const TITLE_OF: &[&str] = &[
        "the title of",
        "title of",
        "the name of",
        "name of",
        "the title for",
        "title for",
        "the name for",
        "name for",
        "the wording of",
    ];
    const DESCRIPTION_OF: &[&str] = &[
        "the description of",
        "description of",
        "the description for",
        "description for",
        "the description on",
        "the note on",
        "the notes on",
        "the note for",
        "the notes for",
        "the note of",
        "the notes of",
        "the details of",
        "details of",
        "the desc of",
        "desc of",
    ];
    if let Some(r) = strip_any_prefix(rest, TITLE_OF) {
        let (r, title) = split_once_ci(r, " to ")?;
        return rename(r, title);
    }
    if let Some(r) = strip_any_prefix(rest, DESCRIPTION_OF) {
        let (r, d) = split_once_ci(r, " to ").or_else(|| split_once_ci(r, ":"))?;
        return describe(r, d);
    }
    let (lhs, rhs) = split_once_ci(rest, " to ")
        .or_else(|| split_once_ci(rest, " as "))
        .or_else(|| split_once_ci(rest, ":"))?;
    if DONE_WORDS.contains(&rhs.to_ascii_lowercase().as_str()) {
        return Some(Intent::Complete {
            target: target(lhs),
        });
    }
    if let Some(r) = strip_suffixes_once(
        lhs,
        &[
            "'s description",
            " description",
            "'s desc",
            " desc",
            "'s notes",
            " notes",
            "'s note",
            " note",
            "'s details",
            " details",
        ],
    ) {
        return describe(r, rhs);
    }
    if let Some(r) = strip_suffixes_once(lhs, &["'s title", " title", "'s name", " name"]) {
        return rename(r, rhs);
    }
    // "change task 1 to ..." / "update 2 to ...": only when the left side is clearly a task.
    match target(lhs) {
        Some(TaskRef::Id(id)) => rename_ref(TaskRef::Id(id), rhs),
        Some(other) if has_phrase(&words(lhs), "task") => rename_ref(other, rhs),
        _ => None,
    }
}

fn strip_suffixes_once<'a>(s: &'a str, suffixes: &[&str]) -> Option<&'a str> {
    suffixes.iter().find_map(|x| strip_suffix_ci(s, x))
}

fn rename(r: &str, title: &str) -> Option<Intent> {
    let t = unquote(title);
    if t.is_empty() {
        return None;
    }
    Some(Intent::Rename {
        target: target(r),
        title: t.to_owned(),
    })
}

fn rename_ref(r: TaskRef, title: &str) -> Option<Intent> {
    let t = unquote(title);
    (!t.is_empty()).then(|| Intent::Rename {
        target: Some(r),
        title: t.to_owned(),
    })
}

fn describe(r: &str, d: &str) -> Option<Intent> {
    let d = unquote(d);
    if d.is_empty() {
        return None;
    }
    Some(Intent::Describe {
        target: target(r),
        description: d.to_owned(),
    })
}

fn reopen_requested(rest: &str) -> bool {
    let w = words(rest);
    [
        "not done",
        "undone",
        "incomplete",
        "pending",
        "not complete",
        "not completed",
        "open",
        "unfinished",
    ]
    .iter()
    .any(|p| has_phrase(&w, p))
}

fn parse_complete(s: &str) -> Option<Intent> {
    const PREFIXES: &[&str] = &[
        "check off",
        "tick off",
        "cross off",
        "cross out",
        "complete",
        "finish",
        "finished",
        "i'm done with",
        "im done with",
        "i am done with",
        "done with",
        "i'm finished with",
        "im finished with",
        "i finished",
        "i have finished",
        "i've finished",
        "ive finished",
        "i just finished",
        "just finished",
        "i completed",
        "i've completed",
        "ive completed",
        "i have completed",
        "i just completed",
        "i did",
        "i've done",
        "ive done",
        "i have done",
        "i just did",
        "close",
        "resolve",
        "tick",
        "accomplished",
        "i accomplished",
    ];
    if let Some(rest) = strip_prefix_ci(s, "mark").or_else(|| strip_prefix_ci(s, "flag")) {
        if reopen_requested(rest) {
            return Some(reopen());
        }
        let r = strip_suffixes(
            rest,
            &[
                "as done",
                "as complete",
                "as completed",
                "as finished",
                "done",
                "complete",
                "completed",
                "finished",
                "off",
                "as checked",
                "checked",
                "as checked off",
                "checked off",
                "as",
            ],
        );
        return Some(Intent::Complete { target: target(r) });
    }
    let rest = strip_any_prefix(s, PREFIXES)?;
    if reopen_requested(rest) && strip_prefix_ci(s, "complete").is_none() {
        return Some(reopen());
    }
    Some(Intent::Complete {
        target: target(strip_suffixes(
            rest,
            &["off", "as done", "already", "today", "just now", "now"],
        )),
    })
}

fn reopen() -> Intent {
    Intent::Unsupported(
        "I can't reopen a completed task yet. You can add it again as a new task.".into(),
    )
}

fn parse_delete(s: &str) -> Option<Intent> {
    const PREFIXES: &[&str] = &[
        "delete",
        "remove",
        "erase",
        "drop",
        "cancel",
        "get rid of",
        "trash",
        "discard",
        "scratch",
        "forget about",
        "forget",
        "del",
        "rm",
        "take off",
        "throw away",
        "throw out",
        "ditch",
        "i don't need to",
        "i dont need to",
        "i do not need to",
        "i no longer need to",
        "no need to",
        "never mind",
        "nevermind",
    ];
    let rest = strip_any_prefix(s, PREFIXES)?;
    let rest = strip_suffixes(rest, &["anymore", "any more", "after all"]);
    if rest.is_empty() && strip_any_prefix(s, &["never mind", "nevermind"]).is_some() {
        return Some(Intent::Thanks);
    }
    Some(Intent::Delete {
        target: target(rest),
    })
}

fn parse_list(s: &str) -> Option<Intent> {
    const VERBS: &[&str] = &[
        "list",
        "show",
        "display",
        "view",
        "see",
        "get",
        "give me",
        "tell me",
        "read",
        "print",
        "what",
        "what's",
        "whats",
        "which",
        "how many",
        "do i have",
        "are there",
        "is there",
        "check",
        "any",
        "let me see",
        "let's see",
        "lets see",
        "remind me what",
        "what're",
        "have i",
        "did i",
        "bring up",
        "pull up",
        "open",
        "fetch",
    ];
    const NOUNS: &[&str] = &[
        "task",
        "tasks",
        "list",
        "todo",
        "todos",
        "items",
        "item",
        "things",
        "agenda",
        "left",
        "remaining",
        "pending",
        "completed",
        "complete",
        "done",
        "finished",
        "outstanding",
        "plate",
        "everything",
        "open",
        "schedule",
        "do",
        "reminders",
        "incomplete",
        "unfinished",
        "accomplished",
        "lists",
        "finish",
    ];
    const ALONE: &[&str] = &[
        "tasks",
        "my tasks",
        "todo",
        "todos",
        "list",
        "my list",
        "todo list",
        "my todo list",
        "to do list",
        "my to do list",
        "agenda",
        "my agenda",
        "whats left",
        "what is left",
        "anything left",
        "pending",
        "pending tasks",
        "completed",
        "completed tasks",
        "done tasks",
        "open tasks",
        "all tasks",
        "everything",
        "my todos",
        "the list",
        "tasks please",
        "remaining tasks",
        "finished tasks",
    ];
    let w = words(s);
    let joined = w.join(" ");
    let verb = strip_any_prefix(s, VERBS).is_some();
    let noun = w.iter().any(|x| NOUNS.contains(&x.as_str()));
    if !(ALONE.contains(&joined.as_str()) || verb && noun) {
        return None;
    }
    Some(Intent::List {
        status: status_of(&w),
    })
}

fn status_of(w: &[String]) -> Option<StatusFilter> {
    const PENDING: &[&str] = &[
        "pending",
        "incomplete",
        "unfinished",
        "uncompleted",
        "open",
        "remaining",
        "left",
        "outstanding",
        "active",
        "not done",
        "not completed",
        "not finished",
        "still",
        "have to do",
        "need to do",
        "got to do",
        "should i do",
        "undone",
        "todo still",
    ];
    const COMPLETED: &[&str] = &[
        "completed",
        "complete",
        "done",
        "finished",
        "accomplished",
        "did i",
        "checked off",
        "finish",
    ];
    if PENDING.iter().any(|p| has_phrase(w, p)) {
        Some(StatusFilter::Pending)
    } else if COMPLETED.iter().any(|p| has_phrase(w, p)) {
        Some(StatusFilter::Completed)
    } else if ["all", "everything", "every"]
        .iter()
        .any(|p| has_phrase(w, p))
    {
        Some(StatusFilter::All)
    } else {
        None
    }
}

fn parse_add(s: &str) -> Option<Intent> {
    const DIRECT: &[&str] = &[
        "remind me that i need to",
        "remind me that i have to",
        "remind me to",
        "remind me about",
        "remind me of",
        "remind me",
        "don't let me forget to",
        "dont let me forget to",
        "don't let me forget",
        "dont let me forget",
        "don't forget to",
        "dont forget to",
        "i need to",
        "i have to",
        "i must",
        "i should",
        "i've got to",
        "ive got to",
        "i gotta",
        "i got to",
        "i want to",
        "i'd like to",
        "need to",
        "gotta",
        "have to",
        "must",
        "todo:",
        "to do:",
        "to-do:",
        "task:",
        "new task:",
        "note to self:",
        "reminder:",
        "new todo:",
        "new item:",
    ];
    const STRONG: &[&str] = &[
        "add",
        "create",
        "insert",
        "jot down",
        "write down",
        "note down",
        "put",
        "schedule",
        "append",
        "enter",
    ];
    const WEAK: &[&str] = &[
        "make", "new", "note", "save", "record", "track", "set up", "set", "start",
    ];
    const NOUNS: &[&str] = &[
        "a new task",
        "new task",
        "a task",
        "task",
        "an item",
        "a new item",
        "new item",
        "item",
        "a todo",
        "todo",
        "a to-do",
        "to-do",
        "a new todo",
        "new todo",
        "a reminder",
        "reminder",
        "an entry",
        "entry",
        "one more task",
        "another task",
        "tasks",
    ];
    const CONNECTORS: &[&str] = &[
        ":",
        "-",
        "to my list:",
        "to my list",
        "to the list:",
        "to the list",
        "to my todo list:",
        "to my todo list",
        "to",
        "called",
        "named",
        "titled",
        "for",
        "that says",
        "saying",
        "about",
        "which is",
        "that is",
    ];
    let body = if let Some(rest) = strip_any_prefix(s, DIRECT) {
        rest
    } else if let Some(rest) = strip_any_prefix(s, STRONG) {
        let after_noun = strip_any_prefix(rest, NOUNS);
        match after_noun {
            Some(r) => strip_any_prefix(r, CONNECTORS).unwrap_or(r),
            None => strip_any_prefix(
                rest,
                &[
                    "to my list:",
                    "to my todo list:",
                    "to the list:",
                    "to my list",
                    "to do:",
                ],
            )
            .unwrap_or(rest),
        }
    } else {
        let rest = strip_any_prefix(s, WEAK)?;
        let r = strip_any_prefix(rest, NOUNS)?;
        strip_any_prefix(r, CONNECTORS).unwrap_or(r)
    };
    let body = body.trim_start_matches([':', '-', ' ']);
    let (title, description) = split_description(body);
    let title = strip_suffixes(
        title,
        &[
            "to my list",
            "to the list",
            "to my todo list",
            "to my to-do list",
            "to my to do list",
            "to my tasks",
            "to the todo list",
            "on my list",
            "on the list",
            "onto my list",
            "to list",
            "in my list",
            "as a task",
            "as a new task",
            "to my todos",
            "to todo",
            "to my agenda",
        ],
    );
    let title = unquote(title);
    if title.is_empty() {
        return Some(Intent::Clarify(
            "What should the task say? For example: add buy milk".into(),
        ));
    }
    Some(Intent::Add {
        title: title.to_owned(),
        description: description
            .map(|d| unquote(d).to_owned())
            .filter(|d| !d.is_empty()),
    })
}

fn split_description(body: &str) -> (&str, Option<&str>) {
    const SEPARATORS: &[&str] = &[
        " with description ",
        " with the description ",
        " with a description ",
        " with desc ",
        " with note ",
        " with a note ",
        " with the note ",
        " with notes ",
        " with details ",
        " description: ",
        " desc: ",
        " notes: ",
        " note: ",
        " details: ",
        " -- ",
        "; ",
    ];
    for sep in SEPARATORS {
        if let Some((t, d)) = split_once_ci(body, sep) {
            return (trim_punct_end(t), Some(d));
        }
    }
    (body, None)
}

/// "task 3 is done" completes it; "is task 3 done?" is a question, answered with the list.
fn parse_done_suffix(s: &str, question: bool) -> Option<Intent> {
    const SUFFIXES: &[&str] = &[
        "is done",
        "is finished",
        "is complete",
        "is completed",
        "are done",
        "has been done",
        "is taken care of",
        "is sorted",
        "done",
        "finished",
        "completed",
        "is done now",
        "is now done",
        "is all done",
    ];
    let head = SUFFIXES.iter().find_map(|x| strip_suffix_ci(s, x))?;
    match target(head)? {
        TaskRef::All => None,
        _ if question => Some(Intent::List { status: None }),
        t => Some(Intent::Complete { target: Some(t) }),
    }
}

fn bare_reference(s: &str) -> Option<Intent> {
    match parse_ref(s)? {
        TaskRef::Id(id) => Some(Intent::Clarify(format!(
            "What should I do with task #{id}? You can say \"complete {id}\", \"delete {id}\" or \"rename {id} to ...\"."
        ))),
        _ => None,
    }
}
