//! Reply texts of the built-in engine.

use crate::executor::{clip, TaskView, LIST_DESCRIPTION_CHARS, LIST_PAGE};
use crate::reply::Action;
use crate::tools::{StatusFilter, ToolName};

/// The help text listing what the agent understands.
pub(crate) const HELP: &str = "I can manage your tasks. Try:\n\
- \"add buy milk\" or \"remind me to call mom tomorrow\"\n\
- \"what's on my list\", \"show completed tasks\", \"what's left\"\n\
- \"mark 3 as done\" or \"I finished the milk one\"\n\
- \"delete task 2\"\n\
- \"rename task 1 to buy oat milk\" or \"change the description of 2 to ...\"";

/// The reply to a message that was not understood; short statements get an "add" hint.
pub(crate) fn unknown(message: &str) -> String {
    let text = message.trim();
    let words = text.split_whitespace().count();
    if (1..=8).contains(&words) && !text.ends_with('?') && text.chars().any(char::is_alphabetic) {
        let shown: String = text.chars().take(80).collect();
        format!("Sorry, I didn't understand that. If it is a task, say \"add {shown}\".\n{HELP}")
    } else {
        format!("Sorry, I didn't understand that. {HELP}")
    }
}

/// One task as a line of a list.
pub(crate) fn task_line(t: &TaskView) -> String {
    let mark = if t.completed { "[x]" } else { "[ ]" };
    match &t.description {
        Some(d) if !d.is_empty() => format!(
            "{mark} #{} {} - {}",
            t.id,
            t.title,
            clip(d, LIST_DESCRIPTION_CHARS)
        ),
        _ => format!("{mark} #{} {}", t.id, t.title),
    }
}

/// A listing reply: the first [`LIST_PAGE`] of `total` tasks and "and N more".
pub(crate) fn listing(tasks: &[TaskView], total: usize, status: Option<StatusFilter>) -> String {
    let what = match status {
        Some(StatusFilter::Pending) => "pending tasks",
        Some(StatusFilter::Completed) => "completed tasks",
        _ => "tasks",
    };
    if tasks.is_empty() {
        return match status {
            Some(StatusFilter::Pending) => "You have no pending tasks. Nice work!".to_owned(),
            Some(StatusFilter::Completed) => "You haven't completed any tasks yet.".to_owned(),
            _ => "Your list is empty. Add one with \"add buy milk\".".to_owned(),
        };
    }
    let n = total.max(tasks.len());
    let noun = if n == 1 {
        &what[..what.len() - 1]
    } else {
        what
    };
    let shown: Vec<String> = tasks.iter().take(LIST_PAGE).map(task_line).collect();
    let more = n - shown.len();
    let mut text = format!("You have {n} {noun}:\n{}", shown.join("\n"));
    if more > 0 {
        text.push_str(&format!(
            "\n…and {more} more. The task list shows them all, page by page."
        ));
    }
    text
}

/// The clarifying question for an ambiguous reference.
pub(crate) fn which_one(verb: &str, candidates: &[TaskView]) -> String {
    let mut sorted: Vec<&TaskView> = candidates.iter().collect();
    sorted.sort_by_key(|t| t.id);
    let shown: Vec<String> = sorted
        .iter()
        .take(10)
        .map(|t| format!("#{} \"{}\"", t.id, t.title))
        .collect();
    let example = sorted.first().map_or(1, |t| t.id);
    format!(
        "Which task do you want to {verb}: {}? Tell me its number, for example \"{verb} {example}\".",
        shown.join(", ")
    )
}

/// A short summary of actions already taken (used when the LLM failed mid-turn).
pub(crate) fn summary(actions: &[Action]) -> String {
    let parts: Vec<String> = actions
        .iter()
        .map(|a| {
            if a.result.get("error").is_some() {
                return format!("{} failed", a.tool);
            }
            let id = a
                .result
                .get("id")
                .or_else(|| a.result.get("task_id"))
                .and_then(|v| v.as_i64());
            let title = a.result.get("title").and_then(|v| v.as_str());
            let subject = match (id, title) {
                (Some(id), Some(t)) => format!("#{id} \"{t}\""),
                (Some(id), None) => format!("#{id}"),
                _ => String::new(),
            };
            match a.tool {
                ToolName::AddTask => format!("added {subject}"),
                ToolName::ListTasks => "listed your tasks".to_owned(),
                ToolName::CompleteTask => format!("completed {subject}"),
                ToolName::DeleteTask => format!("deleted {subject}"),
                ToolName::UpdateTask => format!("updated {subject}"),
            }
        })
        .collect();
    format!("Done: {}.", parts.join("; "))
}
