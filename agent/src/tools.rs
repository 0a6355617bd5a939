//! The tools the agent may call, as raw calls (name + JSON) and as validated values.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::executor::ToolError;

/// The name of one of the task tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolName {
    /// Create a task.
    AddTask,
    /// List tasks, optionally filtered by status.
    ListTasks,
    /// Mark a task as completed.
    CompleteTask,
    /// Delete a task.
    DeleteTask,
    /// Change a task's title and/or description.
    UpdateTask,
}

impl ToolName {
    /// Every tool, in the order they are offered to a model.
    pub const ALL: [ToolName; 5] = [
        ToolName::AddTask,
        ToolName::ListTasks,
        ToolName::CompleteTask,
        ToolName::DeleteTask,
        ToolName::UpdateTask,
    ];

    /// The wire name (`add_task`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ToolName::AddTask => "add_task",
            ToolName::ListTasks => "list_tasks",
            ToolName::CompleteTask => "complete_task",
            ToolName::DeleteTask => "delete_task",
            ToolName::UpdateTask => "update_task",
        }
    }

    /// Looks a tool up by its wire name.
    pub fn from_name(name: &str) -> Option<ToolName> {
        ToolName::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for ToolName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which tasks `list_tasks` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusFilter {
    /// Every task.
    All,
    /// Tasks not completed yet.
    Pending,
    /// Completed tasks.
    Completed,
}

impl StatusFilter {
    /// The wire name (`all`, `pending`, `completed`).
    pub fn as_str(self) -> &'static str {
        match self {
            StatusFilter::All => "all",
            StatusFilter::Pending => "pending",
            StatusFilter::Completed => "completed",
        }
    }
}

/// A tool call as a model or the parser produced it: a tool name and its JSON arguments.
///
/// There is deliberately no user id here: the executor is bound to the request's user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Which tool to run.
    pub tool: ToolName,
    /// The arguments object.
    pub arguments: Value,
}

/// A validated tool call with typed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tool {
    /// `add_task(title, description?)`
    AddTask {
        /// Non-empty title.
        title: String,
        /// Optional longer text.
        description: Option<String>,
    },
    /// `list_tasks(status?)`
    ListTasks {
        /// Filter; `None` means all.
        status: Option<StatusFilter>,
    },
    /// `complete_task(task_id)`
    CompleteTask {
        /// The task's id.
        task_id: i64,
    },
    /// `delete_task(task_id)`
    DeleteTask {
        /// The task's id.
        task_id: i64,
    },
    /// `update_task(task_id, title?, description?)`
    UpdateTask {
        /// The task's id.
        task_id: i64,
        /// New title, if it changes.
        title: Option<String>,
        /// New description, if it changes.
        description: Option<String>,
    },
}

impl Tool {
    /// The tool's name.
    pub fn name(&self) -> ToolName {
        match self {
            Tool::AddTask { .. } => ToolName::AddTask,
            Tool::ListTasks { .. } => ToolName::ListTasks,
            Tool::CompleteTask { .. } => ToolName::CompleteTask,
            Tool::DeleteTask { .. } => ToolName::DeleteTask,
            Tool::UpdateTask { .. } => ToolName::UpdateTask,
        }
    }

    /// The canonical JSON arguments (absent optionals are omitted).
    pub fn arguments(&self) -> Value {
        let mut args = serde_json::Map::new();
        let mut put = |k: &str, v: Value| {
            args.insert(k.to_owned(), v);
        };
        match self {
            Tool::AddTask { title, description } => {
                put("title", json!(title));
                if let Some(d) = description {
                    put("description", json!(d));
                }
            }
            Tool::ListTasks { status } => {
                if let Some(s) = status {
                    put("status", json!(s.as_str()));
                }
            }
            Tool::CompleteTask { task_id } | Tool::DeleteTask { task_id } => {
                put("task_id", json!(task_id));
            }
            Tool::UpdateTask {
                task_id,
                title,
                description,
            } => {
                put("task_id", json!(task_id));
                if let Some(t) = title {
                    put("title", json!(t));
                }
                if let Some(d) = description {
                    put("description", json!(d));
                }
            }
        }
        Value::Object(args)
    }

    /// The raw call form of this tool.
    pub fn to_call(&self) -> ToolCall {
        ToolCall {
            tool: self.name(),
            arguments: self.arguments(),
        }
    }
}

impl TryFrom<&ToolCall> for Tool {
    type Error = ToolError;

    fn try_from(call: &ToolCall) -> Result<Self, ToolError> {
        let empty = serde_json::Map::new();
        let args = match &call.arguments {
            Value::Object(map) => map,
            Value::Null => &empty,
            other => {
                return Err(ToolError::InvalidArguments(format!(
                    "{}: arguments must be a JSON object, got {}",
                    call.tool,
                    json_kind(other)
                )))
            }
        };
        let tool = call.tool;
        Ok(match tool {
            ToolName::AddTask => Tool::AddTask {
                title: required_text(tool, args, "title")?,
                description: optional_text(tool, args, "description")?,
            },
            ToolName::ListTasks => Tool::ListTasks {
                status: match args.get("status") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(serde_json::from_value(v.clone()).map_err(|_| {
                        ToolError::InvalidArguments(format!(
                            "{tool}: status must be one of all, pending, completed"
                        ))
                    })?),
                },
            },
            ToolName::CompleteTask => Tool::CompleteTask {
                task_id: task_id(tool, args)?,
            },
            ToolName::DeleteTask => Tool::DeleteTask {
                task_id: task_id(tool, args)?,
            },
            ToolName::UpdateTask => {
                let task_id = task_id(tool, args)?;
                let title = optional_text(tool, args, "title")?;
                let description = optional_text(tool, args, "description")?;
                if title.as_deref().is_some_and(str::is_empty) {
                    return Err(ToolError::InvalidArguments(format!(
                        "{tool}: title must not be empty"
                    )));
                }
                if title.is_none() && description.is_none() {
                    return Err(ToolError::InvalidArguments(format!(
                        "{tool}: give a title or a description to change"
                    )));
                }
                Tool::UpdateTask {
                    task_id,
                    title,
                    description,
                }
            }
        })
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn required_text(
    tool: ToolName,
    args: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<String, ToolError> {
    match optional_text(tool, args, key)? {
        Some(t) if !t.is_empty() => Ok(t),
        _ => Err(ToolError::InvalidArguments(format!(
            "{tool}: {key} is required and must be a non-empty string"
        ))),
    }
}

fn optional_text(
    tool: ToolName,
    args: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<String>, ToolError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(other) => Err(ToolError::InvalidArguments(format!(
            "{tool}: {key} must be a string, got {}",
            json_kind(other)
        ))),
    }
}

fn task_id(tool: ToolName, args: &serde_json::Map<String, Value>) -> Result<i64, ToolError> {
    // Models sometimes send ids as numeric strings; accept those, reject anything else.
    let id = match args.get("task_id") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().trim_start_matches('#').parse().ok(),
        _ => None,
    };
    match id {
        Some(id) if id > 0 => Ok(id),
        _ => Err(ToolError::InvalidArguments(format!(
            "{tool}: task_id must be a positive integer"
        ))),
    }
}
