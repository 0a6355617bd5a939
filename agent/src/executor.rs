//! The boundary between the agent and task storage.

use std::future::Future;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::tools::Tool;

/// A task as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskView {
    /// The task's id (unique per deployment, shown to the user as `#id`).
    pub id: i64,
    /// The title.
    pub title: String,
    /// Optional longer text.
    pub description: Option<String>,
    /// Whether it is done.
    pub completed: bool,
}

/// Most tasks a listing shows (in a reply, in a stored action, in what a model is sent);
/// the rest is counted, not shown.
pub const LIST_PAGE: usize = 20;
/// Longest description in a listing, in characters (a task's own answer shows all of it).
pub const LIST_DESCRIPTION_CHARS: usize = 200;

/// What a successful tool call produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolOutput {
    /// The task that was created, completed or updated.
    Task(TaskView),
    /// The first tasks of a listing (newest first, at most [`LIST_PAGE`] are kept) and how many
    /// matched in all.
    Tasks {
        /// The first tasks.
        tasks: Vec<TaskView>,
        /// How many tasks matched.
        total: usize,
    },
    /// The id of the task that was deleted.
    Deleted {
        /// Id of the removed task.
        task_id: i64,
    },
}

impl ToolOutput {
    /// A listing of `tasks` (all that matched, or the first of `total`).
    pub fn listing(mut tasks: Vec<TaskView>, total: usize) -> Self {
        tasks.truncate(LIST_PAGE);
        let total = total.max(tasks.len());
        ToolOutput::Tasks { tasks, total }
    }

    /// The JSON form recorded in actions and fed back to a model; bounded whatever the
    /// executor returned: a listing is `{"tasks": [at most LIST_PAGE], "total": n}`.
    pub fn to_json(&self) -> Value {
        match self {
            ToolOutput::Task(t) => json!(t),
            ToolOutput::Tasks { tasks, total } => {
                let shown: Vec<TaskView> = tasks
                    .iter()
                    .take(LIST_PAGE)
                    .map(|t| TaskView {
                        description: t
                            .description
                            .as_deref()
                            .map(|d| clip(d, LIST_DESCRIPTION_CHARS)),
                        ..t.clone()
                    })
                    .collect();
                json!({"tasks": shown, "total": (*total).max(shown.len())})
            }
            ToolOutput::Deleted { task_id } => json!({"deleted": true, "task_id": task_id}),
        }
    }
}

/// Why a tool call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The user has no task with this id (another user's task looks the same: not found).
    #[error("task {task_id} not found")]
    NotFound {
        /// The id that was asked for.
        task_id: i64,
    },
    /// The arguments were not valid for the tool.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// A per-user cap is reached (e.g. the most tasks one user may hold); nothing was written.
    #[error("{0}")]
    LimitReached(String),
    /// The model named a tool that does not exist.
    #[error("unknown tool {0:?}; available tools: add_task, list_tasks, complete_task, delete_task, update_task")]
    UnknownTool(String),
    /// Storage is unavailable; the whole request fails rather than pretending.
    #[error("task storage unavailable: {0}")]
    Unavailable(String),
}

impl ToolError {
    /// A stable snake_case code for the error.
    pub fn code(&self) -> &'static str {
        match self {
            ToolError::NotFound { .. } => "not_found",
            ToolError::InvalidArguments(_) => "invalid_arguments",
            ToolError::UnknownTool(_) => "unknown_tool",
            ToolError::LimitReached(_) => "limit_reached",
            ToolError::Unavailable(_) => "unavailable",
        }
    }

    /// The JSON form recorded in actions and fed back to a model.
    pub fn to_json(&self) -> Value {
        json!({"error": {"code": self.code(), "message": self.to_string()}})
    }
}

/// `text` cut to at most `max` characters, with `…` when cut.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Runs tools for ONE user: implementations are constructed per request with the
/// authenticated user bound, so no tool argument can select another user's data.
pub trait ToolExecutor: Send + Sync {
    /// Runs one validated tool call.
    fn execute(&self, tool: &Tool) -> impl Future<Output = Result<ToolOutput, ToolError>> + Send;

    /// All of the user's tasks, newest first (used to resolve references like "the milk one";
    /// bounded by the per-user task cap). `execute(ListTasks)` needs to return only the first
    /// [`LIST_PAGE`] of them and the count.
    fn list(&self) -> impl Future<Output = Result<Vec<TaskView>, ToolError>> + Send;
}
