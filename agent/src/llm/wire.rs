//! The Chat Completions wire format (the subset the engine uses).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::tools::ToolName;

/// A request body for `POST /chat/completions`.
#[derive(Debug, Serialize)]
pub(crate) struct ChatRequest<'a> {
    pub model: &'a str,
    pub messages: &'a [Message],
    pub tools: Vec<Value>,
    pub tool_choice: &'static str,
    pub temperature: f32,
}

/// A message of the conversation sent to the model.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Message {
    pub role: &'static str,
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<WireToolCall>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    pub fn text(role: &'static str, content: impl Into<String>) -> Self {
        Message {
            role,
            content: Some(content.into()),
            tool_calls: None,
            tool_call_id: None,
        }
    }

    pub fn tool_result(id: &str, content: String) -> Self {
        Message {
            role: "tool",
            content: Some(content),
            tool_calls: None,
            tool_call_id: Some(id.to_owned()),
        }
    }
}

/// A tool call as the model sends it (arguments are a JSON-encoded string).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WireToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function_kind")]
    pub kind: String,
    pub function: WireFunction,
}

fn function_kind() -> String {
    "function".to_owned()
}

/// The function part of a tool call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WireFunction {
    pub name: String,
    #[serde(default)]
    pub arguments: String,
}

/// A response body.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatResponse {
    pub choices: Vec<Choice>,
}

/// One choice of a response.
#[derive(Debug, Deserialize)]
pub(crate) struct Choice {
    pub message: ResponseMessage,
    #[serde(default)]
    #[allow(dead_code)] // kept for logs and to document the shape; tool_calls drive the loop
    pub finish_reason: Option<String>,
}

/// The assistant message of a choice.
#[derive(Debug, Deserialize)]
pub(crate) struct ResponseMessage {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<WireToolCall>>,
}

/// The tool definitions offered to the model.
pub(crate) fn tool_definitions() -> Vec<Value> {
    ToolName::ALL
        .into_iter()
        .map(|t| {
            let (description, parameters) = match t {
                ToolName::AddTask => (
                    "Create a new task for the user.",
                    json!({"type": "object", "properties": {
                        "title": {"type": "string", "description": "Short title of the task"},
                        "description": {"type": "string", "description": "Optional details"}
                    }, "required": ["title"], "additionalProperties": false}),
                ),
                ToolName::ListTasks => (
                    "List the user's tasks, newest first.",
                    json!({"type": "object", "properties": {
                        "status": {"type": "string", "enum": ["all", "pending", "completed"]}
                    }, "additionalProperties": false}),
                ),
                ToolName::CompleteTask => (
                    "Mark one of the user's tasks as completed.",
                    json!({"type": "object", "properties": {
                        "task_id": {"type": "integer", "description": "The task's id"}
                    }, "required": ["task_id"], "additionalProperties": false}),
                ),
                ToolName::DeleteTask => (
                    "Delete one of the user's tasks.",
                    json!({"type": "object", "properties": {
                        "task_id": {"type": "integer", "description": "The task's id"}
                    }, "required": ["task_id"], "additionalProperties": false}),
                ),
                ToolName::UpdateTask => (
                    "Change the title and/or description of one of the user's tasks.",
                    json!({"type": "object", "properties": {
                        "task_id": {"type": "integer"},
                        "title": {"type": "string"},
                        "description": {"type": "string"}
                    }, "required": ["task_id"], "additionalProperties": false}),
                ),
            };
            json!({"type": "function", "function": {
                "name": t.as_str(), "description": description, "parameters": parameters
            }})
        })
        .collect()
}
