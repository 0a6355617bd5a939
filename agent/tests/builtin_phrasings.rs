//! The built-in engine turns each natural phrasing into exactly the expected tool call.

mod support;

use agent::{Agent, EngineKind, ToolName};
use serde_json::{json, Value};
use support::memory::Store;

/// User 1 has tasks 1..=5 (4 is completed); user 2 owns task 6.
fn seeded() -> Store {
    let store = Store::new();
    store.seed(1, "buy milk", false);
    store.seed(1, "call mom", false);
    store.seed(1, "write the quarterly report", false);
    store.seed(1, "pay rent", true);
    store.seed(1, "book dentist appointment", false);
    store.seed(2, "secret plans", false);
    store
}

const ADD: ToolName = ToolName::AddTask;
const LIST: ToolName = ToolName::ListTasks;
const DONE: ToolName = ToolName::CompleteTask;
const DEL: ToolName = ToolName::DeleteTask;
const UPD: ToolName = ToolName::UpdateTask;

fn table() -> Vec<(&'static str, ToolName, Value)> {
    vec![
        // add_task
        ("add buy milk", ADD, json!({"title": "buy milk"})),
        ("Add buy eggs", ADD, json!({"title": "buy eggs"})),
        (
            "remind me to call mom tomorrow",
            ADD,
            json!({"title": "call mom tomorrow"}),
        ),
        (
            "add a task to water the plants",
            ADD,
            json!({"title": "water the plants"}),
        ),
        (
            "create a task called renew passport",
            ADD,
            json!({"title": "renew passport"}),
        ),
        (
            "new task: clean the garage",
            ADD,
            json!({"title": "clean the garage"}),
        ),
        (
            "todo: pick up dry cleaning",
            ADD,
            json!({"title": "pick up dry cleaning"}),
        ),
        (
            "I need to finish the slides",
            ADD,
            json!({"title": "finish the slides"}),
        ),
        (
            "please add walk the dog to my list",
            ADD,
            json!({"title": "walk the dog"}),
        ),
        (
            "can you add \"buy bread\"?",
            ADD,
            json!({"title": "buy bread"}),
        ),
        (
            "add task: email Sarah about Friday",
            ADD,
            json!({"title": "email Sarah about Friday"}),
        ),
        (
            "put bake a cake on my list",
            ADD,
            json!({"title": "bake a cake"}),
        ),
        (
            "don't let me forget to feed the cat",
            ADD,
            json!({"title": "feed the cat"}),
        ),
        (
            "add buy milk with description 2 liters, skimmed",
            ADD,
            json!({"title": "buy milk", "description": "2 liters, skimmed"}),
        ),
        (
            "add pay taxes -- before April 15",
            ADD,
            json!({"title": "pay taxes", "description": "before April 15"}),
        ),
        (
            "jot down call the plumber",
            ADD,
            json!({"title": "call the plumber"}),
        ),
        (
            "remind me about the meeting at 3pm",
            ADD,
            json!({"title": "the meeting at 3pm"}),
        ),
        (
            "I have to renew my license",
            ADD,
            json!({"title": "renew my license"}),
        ),
        (
            "add a reminder to take out the trash.",
            ADD,
            json!({"title": "take out the trash"}),
        ),
        (
            "Hey, could you add order new glasses please",
            ADD,
            json!({"title": "order new glasses"}),
        ),
        (
            "set a reminder to call the bank",
            ADD,
            json!({"title": "call the bank"}),
        ),
        (
            "Add “Plan the trip to Zürich”",
            ADD,
            json!({"title": "Plan the trip to Zürich"}),
        ),
        // list_tasks
        ("what's on my list", LIST, json!({})),
        ("What’s on my list?", LIST, json!({})),
        ("show my tasks", LIST, json!({})),
        ("list", LIST, json!({})),
        ("my tasks", LIST, json!({})),
        ("how many tasks do I have", LIST, json!({})),
        ("Can you tell me what's on my todo list?", LIST, json!({})),
        ("show completed tasks", LIST, json!({"status": "completed"})),
        ("what have I done", LIST, json!({"status": "completed"})),
        (
            "list my finished tasks",
            LIST,
            json!({"status": "completed"}),
        ),
        ("what's left", LIST, json!({"status": "pending"})),
        ("show pending tasks", LIST, json!({"status": "pending"})),
        ("what do I need to do", LIST, json!({"status": "pending"})),
        (
            "which tasks are still open",
            LIST,
            json!({"status": "pending"}),
        ),
        ("show unfinished tasks", LIST, json!({"status": "pending"})),
        ("list all tasks", LIST, json!({"status": "all"})),
        ("show me everything", LIST, json!({"status": "all"})),
        ("is task 3 done?", LIST, json!({})),
        // complete_task
        ("mark 3 as done", DONE, json!({"task_id": 3})),
        ("I finished the milk one", DONE, json!({"task_id": 1})),
        ("complete task 2", DONE, json!({"task_id": 2})),
        ("mark task 5 complete", DONE, json!({"task_id": 5})),
        ("check off 1", DONE, json!({"task_id": 1})),
        ("done with the report", DONE, json!({"task_id": 3})),
        (
            "I just finished writing the report",
            DONE,
            json!({"task_id": 3}),
        ),
        ("task 2 is done", DONE, json!({"task_id": 2})),
        ("#1 done", DONE, json!({"task_id": 1})),
        (
            "tick off the dentist appointment",
            DONE,
            json!({"task_id": 5}),
        ),
        ("finished call mom", DONE, json!({"task_id": 2})),
        (
            "please mark the dentist one as completed",
            DONE,
            json!({"task_id": 5}),
        ),
        ("cross off buy milk", DONE, json!({"task_id": 1})),
        ("I've done the report!", DONE, json!({"task_id": 3})),
        ("the milk one is done", DONE, json!({"task_id": 1})),
        ("set task 2 to done", DONE, json!({"task_id": 2})),
        // delete_task
        ("delete task 2", DEL, json!({"task_id": 2})),
        ("remove the milk task", DEL, json!({"task_id": 1})),
        ("get rid of task 5", DEL, json!({"task_id": 5})),
        ("delete 3", DEL, json!({"task_id": 3})),
        ("remove buy milk from my list", DEL, json!({"task_id": 1})),
        ("cancel the dentist appointment", DEL, json!({"task_id": 5})),
        (
            "I don't need to call mom anymore",
            DEL,
            json!({"task_id": 2}),
        ),
        ("erase #4", DEL, json!({"task_id": 4})),
        ("Delete the rent task.", DEL, json!({"task_id": 4})),
        // update_task
        (
            "rename task 1 to buy oat milk",
            UPD,
            json!({"task_id": 1, "title": "buy oat milk"}),
        ),
        (
            "rename the milk one to buy almond milk",
            UPD,
            json!({"task_id": 1, "title": "buy almond milk"}),
        ),
        (
            "change task 2 to call dad",
            UPD,
            json!({"task_id": 2, "title": "call dad"}),
        ),
        (
            "update the title of 3 to write the annual report",
            UPD,
            json!({"task_id": 3, "title": "write the annual report"}),
        ),
        (
            "change the description of 2 to ask about the holidays",
            UPD,
            json!({"task_id": 2, "description": "ask about the holidays"}),
        ),
        (
            "set the description of task 3 to due Friday",
            UPD,
            json!({"task_id": 3, "description": "due Friday"}),
        ),
        (
            "add a note to task 5: bring insurance card",
            UPD,
            json!({"task_id": 5, "description": "bring insurance card"}),
        ),
        (
            "change the dentist task's description to Dr. Smith, room 4",
            UPD,
            json!({"task_id": 5, "description": "Dr. Smith, room 4"}),
        ),
        (
            "update task 2 description: call after 6pm",
            UPD,
            json!({"task_id": 2, "description": "call after 6pm"}),
        ),
        (
            "change task 1 title: buy bread",
            UPD,
            json!({"task_id": 1, "title": "buy bread"}),
        ),
        (
            "describe task 1 as 2 liters",
            UPD,
            json!({"task_id": 1, "description": "2 liters"}),
        ),
        (
            "rename 2 to \"call grandma\"",
            UPD,
            json!({"task_id": 2, "title": "call grandma"}),
        ),
    ]
}

#[tokio::test]
async fn every_phrasing_produces_its_tool_call() {
    let cases = table();
    assert!(
        cases.len() >= 60,
        "table has only {} phrasings",
        cases.len()
    );
    let agent = Agent::builtin();
    let mut failures = Vec::new();
    for (phrase, tool, args) in &cases {
        let store = seeded();
        let reply = agent
            .respond(&[], phrase, &store.executor(1))
            .await
            .unwrap_or_else(|e| panic!("{phrase:?}: {e}"));
        assert_eq!(reply.engine, EngineKind::Builtin);
        assert_eq!(reply.fallback_reason, None);
        let got: Vec<(ToolName, &Value)> = reply
            .actions
            .iter()
            .map(|a| (a.tool, &a.arguments))
            .collect();
        if got != vec![(*tool, args)] {
            failures.push(format!(
                "{phrase:?}: expected {tool} {args}, got {got:?} / {:?}",
                reply.reply
            ));
            continue;
        }
        if reply.actions[0].result.get("error").is_some() {
            failures.push(format!(
                "{phrase:?}: tool failed: {}",
                reply.actions[0].result
            ));
        }
        assert!(!reply.reply.is_empty());
        // The user's other data is never touched.
        assert_eq!(store.tasks_of(2).len(), 1, "{phrase:?} touched user 2");
        assert!(store.calls().iter().all(|(user, _)| *user == 1));
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn tool_results_show_in_the_reply() {
    let store = seeded();
    let agent = Agent::builtin();
    let added = agent
        .respond(&[], "add buy stamps", &store.executor(1))
        .await
        .unwrap();
    assert_eq!(added.reply, "Added \"buy stamps\" as task #7.");
    let listed = agent
        .respond(&[], "what's left", &store.executor(1))
        .await
        .unwrap();
    assert!(
        listed.reply.starts_with("You have 5 pending tasks:"),
        "{}",
        listed.reply
    );
    assert!(
        listed.reply.contains("[ ] #7 buy stamps"),
        "{}",
        listed.reply
    );
    assert!(!listed.reply.contains("pay rent"), "{}", listed.reply);
    assert!(!listed.reply.contains("secret plans"), "{}", listed.reply);
    let done = agent
        .respond(&[], "I finished the milk one", &store.executor(1))
        .await
        .unwrap();
    assert_eq!(done.reply, "Marked #1 \"buy milk\" as done.");
    assert_eq!(done.actions[0].result["completed"], json!(true));
    let deleted = agent
        .respond(&[], "delete task 2", &store.executor(1))
        .await
        .unwrap();
    assert_eq!(deleted.reply, "Deleted task #2 \"call mom\".");
    assert_eq!(
        deleted.actions[0].result,
        json!({"deleted": true, "task_id": 2})
    );
    let renamed = agent
        .respond(&[], "rename 3 to write it", &store.executor(1))
        .await
        .unwrap();
    assert_eq!(renamed.reply, "Renamed task #3 to \"write it\".");
}
