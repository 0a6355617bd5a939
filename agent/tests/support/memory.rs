//! An in-memory task store shared by several users, and an executor bound to one of them.

use std::sync::{Arc, Mutex};

use agent::{StatusFilter, TaskView, Tool, ToolError, ToolExecutor, ToolOutput};

#[derive(Debug, Clone)]
pub struct Row {
    pub owner: i64,
    pub task: TaskView,
}

/// Tasks of all users, with ids unique across users (like a database sequence).
#[derive(Debug, Default, Clone)]
pub struct Store {
    rows: Arc<Mutex<Vec<Row>>>,
    calls: Arc<Mutex<Vec<(i64, Tool)>>>,
}

impl Store {
    pub fn new() -> Self {
        Self::default()
    }

    /// Seeds a task for `owner`; returns its id.
    pub fn seed(&self, owner: i64, title: &str, completed: bool) -> i64 {
        let mut rows = self.rows.lock().unwrap();
        let id = rows.iter().map(|r| r.task.id).max().unwrap_or(0) + 1;
        rows.push(Row {
            owner,
            task: TaskView {
                id,
                title: title.to_owned(),
                description: None,
                completed,
            },
        });
        id
    }

    pub fn tasks_of(&self, owner: i64) -> Vec<TaskView> {
        let rows = self.rows.lock().unwrap();
        let mut v: Vec<TaskView> = rows
            .iter()
            .filter(|r| r.owner == owner)
            .map(|r| r.task.clone())
            .collect();
        v.reverse();
        v
    }

    /// Every tool call executed, with the user it ran for.
    pub fn calls(&self) -> Vec<(i64, Tool)> {
        self.calls.lock().unwrap().clone()
    }

    pub fn executor(&self, user: i64) -> MemoryExecutor {
        MemoryExecutor {
            store: self.clone(),
            user,
        }
    }
}

/// Runs tools for one user against the shared [`Store`].
pub struct MemoryExecutor {
    store: Store,
    user: i64,
}

impl MemoryExecutor {
    fn run(&self, tool: &Tool) -> Result<ToolOutput, ToolError> {
        self.store
            .calls
            .lock()
            .unwrap()
            .push((self.user, tool.clone()));
        let mut rows = self.store.rows.lock().unwrap();
        let user = self.user;
        let find = |rows: &mut Vec<Row>, id: i64| -> Result<usize, ToolError> {
            rows.iter()
                .position(|r| r.owner == user && r.task.id == id)
                .ok_or(ToolError::NotFound { task_id: id })
        };
        match tool {
            Tool::AddTask { title, description } => {
                let id = rows.iter().map(|r| r.task.id).max().unwrap_or(0) + 1;
                let task = TaskView {
                    id,
                    title: title.clone(),
                    description: description.clone(),
                    completed: false,
                };
                rows.push(Row {
                    owner: user,
                    task: task.clone(),
                });
                Ok(ToolOutput::Task(task))
            }
            Tool::ListTasks { status } => {
                let mut v: Vec<TaskView> = rows
                    .iter()
                    .filter(|r| r.owner == user)
                    .filter(|r| match status {
                        Some(StatusFilter::Pending) => !r.task.completed,
                        Some(StatusFilter::Completed) => r.task.completed,
                        _ => true,
                    })
                    .map(|r| r.task.clone())
                    .collect();
                v.reverse();
                let total = v.len();
                Ok(ToolOutput::listing(v, total))
            }
            Tool::CompleteTask { task_id } => {
                let i = find(&mut rows, *task_id)?;
                rows[i].task.completed = true;
                Ok(ToolOutput::Task(rows[i].task.clone()))
            }
            Tool::DeleteTask { task_id } => {
                let i = find(&mut rows, *task_id)?;
                rows.remove(i);
                Ok(ToolOutput::Deleted { task_id: *task_id })
            }
            Tool::UpdateTask {
                task_id,
                title,
                description,
            } => {
                let i = find(&mut rows, *task_id)?;
                if let Some(t) = title {
                    rows[i].task.title = t.clone();
                }
                if let Some(d) = description {
                    rows[i].task.description = Some(d.clone());
                }
                Ok(ToolOutput::Task(rows[i].task.clone()))
            }
        }
    }
}

impl ToolExecutor for MemoryExecutor {
    async fn execute(&self, tool: &Tool) -> Result<ToolOutput, ToolError> {
        self.run(tool)
    }

    async fn list(&self) -> Result<Vec<TaskView>, ToolError> {
        Ok(self.store.tasks_of(self.user))
    }
}
