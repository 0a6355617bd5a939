//! The agent's tools over task storage, bound to one authenticated user.

use agent::{TaskView, Tool, ToolError, ToolExecutor, ToolOutput};
use sqlx::PgPool;

use crate::domain::task::{Description, NewTask, StatusFilter, TaskPatch, Title};
use crate::storage::tasks::{self, PageRequest, Task};

/// Runs tools for `user_id` only; built per request from the token's user.
pub struct DbExecutor<'a> {
    pool: &'a PgPool,
    user_id: i64,
    task_cap: i64,
}

impl<'a> DbExecutor<'a> {
    /// An executor acting for `user_id`, who may hold at most `task_cap` tasks.
    pub fn new(pool: &'a PgPool, user_id: i64, task_cap: i64) -> Self {
        Self {
            pool,
            user_id,
            task_cap,
        }
    }

    async fn run(&self, tool: &Tool) -> Result<ToolOutput, ToolError> {
        let (pool, user) = (self.pool, self.user_id);
        match tool {
            Tool::AddTask { title, description } => {
                let new = NewTask::parse(title, description.as_deref()).map_err(invalid)?;
                let task = tasks::create(pool, user, &new, self.task_cap)
                    .await
                    .map_err(db)?
                    .map_err(|e| ToolError::LimitReached(e.to_string()))?;
                Ok(ToolOutput::Task(view(task)))
            }
            Tool::ListTasks { status } => {
                let filter = match status {
                    None | Some(agent::StatusFilter::All) => StatusFilter::All,
                    Some(agent::StatusFilter::Pending) => StatusFilter::Pending,
                    Some(agent::StatusFilter::Completed) => StatusFilter::Completed,
                };
                let first = PageRequest {
                    limit: agent::LIST_PAGE as i64,
                    after: None,
                };
                let page = tasks::page(pool, user, filter, &first).await.map_err(db)?;
                let total = tasks::count(pool, user, filter).await.map_err(db)?;
                Ok(ToolOutput::listing(
                    page.items.into_iter().map(view).collect(),
                    usize::try_from(total).unwrap_or(usize::MAX),
                ))
            }
            Tool::CompleteTask { task_id } => tasks::complete(pool, user, *task_id)
                .await
                .map_err(db)?
                .map(|t| ToolOutput::Task(view(t)))
                .ok_or(ToolError::NotFound { task_id: *task_id }),
            Tool::DeleteTask { task_id } => {
                if tasks::delete(pool, user, *task_id).await.map_err(db)? {
                    Ok(ToolOutput::Deleted { task_id: *task_id })
                } else {
                    Err(ToolError::NotFound { task_id: *task_id })
                }
            }
            Tool::UpdateTask {
                task_id,
                title,
                description,
            } => {
                let patch = TaskPatch {
                    title: title
                        .as_deref()
                        .map(Title::parse)
                        .transpose()
                        .map_err(invalid)?,
                    description: description
                        .as_deref()
                        .map(Description::parse)
                        .transpose()
                        .map_err(invalid)?,
                    completed: None,
                };
                tasks::update(pool, user, *task_id, &patch)
                    .await
                    .map_err(db)?
                    .map(|t| ToolOutput::Task(view(t)))
                    .ok_or(ToolError::NotFound { task_id: *task_id })
            }
        }
    }
}

fn view(t: Task) -> TaskView {
    TaskView {
        id: t.id,
        title: t.title,
        description: t.description,
        completed: t.completed,
    }
}

fn invalid(e: crate::domain::ValidationError) -> ToolError {
    ToolError::InvalidArguments(e.0)
}

fn db(e: sqlx::Error) -> ToolError {
    tracing::warn!(error = %e, "chat tool: database error");
    ToolError::Unavailable("the database is unavailable, retry later".into())
}

impl ToolExecutor for DbExecutor<'_> {
    async fn execute(&self, tool: &Tool) -> Result<ToolOutput, ToolError> {
        self.run(tool).await
    }

    async fn list(&self) -> Result<Vec<TaskView>, ToolError> {
        let list = tasks::all(self.pool, self.user_id).await.map_err(db)?;
        Ok(list.into_iter().map(view).collect())
    }
}
