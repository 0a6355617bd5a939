//! The built-in engine: a deterministic intent parser over the task tools.

mod intent;
mod reference;
mod render;
mod text;

pub use intent::{parse, Intent};
pub use reference::{parse_ref, resolve, Resolution, TaskRef};
pub(crate) use render::summary;

use crate::executor::{ToolError, ToolExecutor};
use crate::reply::{Action, AgentReply, EngineKind};
use crate::tools::Tool;

/// Answers one message with the built-in engine.
///
/// Only [`ToolError::Unavailable`] is returned as an error; every other tool error
/// becomes part of the reply.
pub async fn respond<E: ToolExecutor>(
    message: &str,
    executor: &E,
) -> Result<AgentReply, ToolError> {
    let mut turn = Turn {
        executor,
        actions: Vec::new(),
    };
    let reply = turn.answer(message, parse(message)).await?;
    Ok(AgentReply {
        reply,
        actions: turn.actions,
        engine: EngineKind::Builtin,
        fallback_reason: None,
    })
}

struct Turn<'e, E> {
    executor: &'e E,
    actions: Vec<Action>,
}

/// What to do with a resolved task.
enum Op {
    Complete,
    Delete,
    Rename(String),
    Describe(String),
}

impl Op {
    fn verb(&self) -> &'static str {
        match self {
            Op::Complete => "complete",
            Op::Delete => "delete",
            Op::Rename(_) => "rename",
            Op::Describe(_) => "update",
        }
    }
}

impl<E: ToolExecutor> Turn<'_, E> {
    async fn run(&mut self, tool: Tool) -> Result<Result<crate::ToolOutput, ToolError>, ToolError> {
        let outcome = self.executor.execute(&tool).await;
        if let Err(ToolError::Unavailable(why)) = &outcome {
            return Err(ToolError::Unavailable(why.clone()));
        }
        self.actions.push(Action {
            tool: tool.name(),
            arguments: tool.arguments(),
            result: match &outcome {
                Ok(out) => out.to_json(),
                Err(e) => e.to_json(),
            },
        });
        Ok(outcome)
    }

    async fn answer(&mut self, message: &str, intent: Intent) -> Result<String, ToolError> {
        use crate::executor::ToolOutput as Out;
        Ok(match intent {
            Intent::Greeting => format!("Hi! {}", render::HELP),
            Intent::Help => render::HELP.to_owned(),
            Intent::Thanks => "You're welcome! Anything else on your list?".to_owned(),
            Intent::Clarify(q) | Intent::Unsupported(q) => q,
            Intent::Unknown => render::unknown(message),
            Intent::Add { title, description } => {
                match self.run(Tool::AddTask { title, description }).await? {
                    Ok(Out::Task(t)) => format!("Added \"{}\" as task #{}.", t.title, t.id),
                    Ok(_) => "Added it.".to_owned(),
                    Err(e) => format!("I couldn't add that task: {e}."),
                }
            }
            Intent::List { status } => match self.run(Tool::ListTasks { status }).await? {
                Ok(Out::Tasks { tasks, total }) => render::listing(&tasks, total, status),
                Ok(_) => "Here are your tasks.".to_owned(),
                Err(e) => format!("I couldn't list your tasks: {e}."),
            },
            Intent::Complete { target } => self.on_task(target, Op::Complete).await?,
            Intent::Delete { target } => self.on_task(target, Op::Delete).await?,
            Intent::Rename { target, title } => self.on_task(target, Op::Rename(title)).await?,
            Intent::Describe {
                target,
                description,
            } => self.on_task(target, Op::Describe(description)).await?,
        })
    }

    async fn on_task(&mut self, target: Option<TaskRef>, op: Op) -> Result<String, ToolError> {
        use crate::executor::ToolOutput as Out;
        let verb = op.verb();
        let Some(target) = target else {
            return Ok(format!(
                "Which task do you want to {verb}? Tell me its number or some words of its title."
            ));
        };
        if target == TaskRef::All {
            return Ok(format!(
                "I can only {verb} one task at a time. Which one? Say \"what's on my list\" to see their numbers."
            ));
        }
        let tasks = self.executor.list().await.or_else(|e| match e {
            ToolError::Unavailable(_) => Err(e),
            _ => Ok(Vec::new()),
        })?;
        // Scoring every title is CPU work that grows with the list: keep it off the async threads.
        let prefer_pending = matches!(op, Op::Complete);
        let wanted = target.clone();
        let resolution =
            tokio::task::spawn_blocking(move || resolve(&wanted, &tasks, prefer_pending))
                .await
                .map_err(|e| ToolError::Unavailable(format!("matching tasks failed: {e}")))?;
        let task = match resolution {
            Resolution::Found(t) => t,
            Resolution::Ambiguous(candidates) => return Ok(render::which_one(verb, &candidates)),
            Resolution::NotFound => {
                return Ok(match &target {
                    TaskRef::Id(id) => format!("I couldn't find task #{id} on your list."),
                    TaskRef::Words(ws) => format!(
                        "I couldn't find a task matching \"{}\". Say \"what's on my list\" to see your tasks.",
                        ws.join(" ")
                    ),
                    TaskRef::All => "I couldn't find that task.".to_owned(),
                })
            }
        };
        if matches!(op, Op::Complete) && task.completed {
            return Ok(format!(
                "Task #{} \"{}\" is already done.",
                task.id, task.title
            ));
        }
        let (id, old_title) = (task.id, task.title);
        let (tool, done_text): (Tool, fn(&crate::TaskView) -> String) = match op {
            Op::Complete => (Tool::CompleteTask { task_id: id }, |t| {
                format!("Marked #{} \"{}\" as done.", t.id, t.title)
            }),
            Op::Delete => (Tool::DeleteTask { task_id: id }, |_| String::new()),
            Op::Rename(title) => (
                Tool::UpdateTask {
                    task_id: id,
                    title: Some(title),
                    description: None,
                },
                |t| format!("Renamed task #{} to \"{}\".", t.id, t.title),
            ),
            Op::Describe(d) => (
                Tool::UpdateTask {
                    task_id: id,
                    title: None,
                    description: Some(d),
                },
                |t| format!("Updated the description of #{} \"{}\".", t.id, t.title),
            ),
        };
        Ok(match self.run(tool).await? {
            Err(e) => format!("I couldn't {verb} task #{id}: {e}."),
            Ok(Out::Deleted { .. }) => format!("Deleted task #{id} \"{old_title}\"."),
            Ok(Out::Task(t)) => done_text(&t),
            Ok(Out::Tasks { .. }) => "Done.".to_owned(),
        })
    }
}
