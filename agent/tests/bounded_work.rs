//! A user with thousands of tasks: listings answer with the first page and "and N more", what
//! an action records is bounded, and matching a reference against every title runs off the
//! async threads (a busy runtime thread would stall every other request it serves).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use agent::{Agent, TaskView, Tool, ToolError, ToolExecutor, ToolOutput, LIST_PAGE};
use support::memory::Store;

#[tokio::test]
async fn whats_on_my_list_with_5000_tasks_answers_one_page_and_and_n_more() {
    let store = Store::new();
    for i in 0..5000 {
        store.seed(1, &format!("errand number {i}"), false);
    }
    let reply = Agent::builtin()
        .respond(&[], "what's on my list", &store.executor(1))
        .await
        .unwrap();
    assert!(
        reply.reply.starts_with("You have 5000 tasks:"),
        "{}",
        &reply.reply[..80]
    );
    assert!(
        reply
            .reply
            .contains(&format!("and {} more", 5000 - LIST_PAGE)),
        "{}",
        reply.reply
    );
    assert_eq!(
        reply.reply.lines().count(),
        LIST_PAGE + 2,
        "{}",
        reply.reply
    );
    assert!(
        reply.reply.len() < 4 * 1024,
        "reply of {} bytes",
        reply.reply.len()
    );
    let recorded = reply.actions[0].result.to_string();
    assert!(
        recorded.len() < 16 * 1024,
        "action result of {} bytes",
        recorded.len()
    );
    assert_eq!(reply.actions[0].result["total"], 5000);
}

#[tokio::test]
async fn long_descriptions_are_clipped_in_listings() {
    let store = Store::new();
    let id = store.seed(1, "write the report", false);
    store
        .executor(1)
        .execute(&Tool::UpdateTask {
            task_id: id,
            title: None,
            description: Some("d".repeat(2000)),
        })
        .await
        .unwrap();
    let reply = Agent::builtin()
        .respond(&[], "show my tasks", &store.executor(1))
        .await
        .unwrap();
    assert!(reply.reply.len() < 400, "{}", reply.reply);
    let listed = reply.actions[0].result["tasks"][0]["description"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(listed.chars().count() <= agent::LIST_DESCRIPTION_CHARS + 1);
}

/// Wraps the store's executor and records, when `list()` hands over the tasks, how often a
/// concurrent task on the same single-threaded runtime had run so far.
struct Observed {
    inner: support::memory::MemoryExecutor,
    ticks: Arc<AtomicUsize>,
    at_list: Arc<AtomicUsize>,
}

impl ToolExecutor for Observed {
    async fn execute(&self, tool: &Tool) -> Result<ToolOutput, ToolError> {
        self.inner.execute(tool).await
    }

    async fn list(&self) -> Result<Vec<TaskView>, ToolError> {
        let tasks = self.inner.list().await;
        self.at_list
            .store(self.ticks.load(Ordering::SeqCst), Ordering::SeqCst);
        tasks
    }
}

#[tokio::test(flavor = "current_thread")]
async fn matching_a_reference_yields_the_runtime_thread() {
    let store = Store::new();
    for i in 0..5000 {
        store.seed(1, &format!("errand number {i} at the shop"), false);
    }
    store.seed(1, "water the plants", false);
    let ticks = Arc::new(AtomicUsize::new(0));
    let at_list = Arc::new(AtomicUsize::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                ticks.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        })
    };
    let executor = Observed {
        inner: store.executor(1),
        ticks: ticks.clone(),
        at_list: at_list.clone(),
    };
    let reply = Agent::builtin()
        .respond(&[], "mark the plants one as done", &executor)
        .await
        .unwrap();
    let after = ticks.load(Ordering::SeqCst);
    ticker.abort();
    assert!(reply.reply.starts_with("Marked #"), "{}", reply.reply);
    // On one thread, the ticker can only have run in between if matching awaited (ran elsewhere).
    // Matching inline would leave no await point between list() and the complete_task call.
    assert!(
        after > at_list.load(Ordering::SeqCst),
        "the runtime thread never got free while 5000 titles were matched"
    );
}
