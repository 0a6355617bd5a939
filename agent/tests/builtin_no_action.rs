//! Ambiguous, unknown and impossible requests get a helpful reply and run no tool.

mod support;

use agent::{Agent, AgentError, MAX_MESSAGE_CHARS};
use support::memory::Store;

fn seeded() -> Store {
    let store = Store::new();
    store.seed(1, "buy milk", false); // 1
    store.seed(1, "milk the cow", false); // 2
    store.seed(1, "pay rent", true); // 3
    store.seed(2, "secret plans", false); // 4
    store
}

async fn no_action(phrase: &str, expected_in_reply: &str) {
    let store = seeded();
    let reply = Agent::builtin()
        .respond(&[], phrase, &store.executor(1))
        .await
        .unwrap_or_else(|e| panic!("{phrase:?}: {e}"));
    assert!(
        reply.actions.is_empty(),
        "{phrase:?} ran {:?}",
        reply.actions
    );
    assert!(
        store.calls().is_empty(),
        "{phrase:?} executed {:?}",
        store.calls()
    );
    assert!(
        reply.reply.contains(expected_in_reply),
        "{phrase:?}: reply {:?} lacks {expected_in_reply:?}",
        reply.reply
    );
}

#[tokio::test]
async fn ambiguous_references_ask_which_task() {
    no_action(
        "I finished the milk one",
        "Which task do you want to complete: #1 \"buy milk\", #2 \"milk the cow\"",
    )
    .await;
    no_action("delete the milk task", "Which task do you want to delete").await;
    no_action(
        "rename milk to oat milk",
        "Which task do you want to rename",
    )
    .await;
    no_action("delete", "Which task do you want to delete?").await;
    no_action("mark as done", "Which task do you want to complete?").await;
}

#[tokio::test]
async fn unknown_input_gets_help_and_no_action() {
    for phrase in [
        "asdfgh qwerty",
        "what is the weather like",
        "sing me a song",
        "42 + 17 = ?",
        "🙂🙂🙂",
    ] {
        no_action(phrase, "add buy milk").await;
    }
}

#[tokio::test]
async fn a_bare_statement_gets_an_add_hint() {
    no_action("buy bread", "If it is a task, say \"add buy bread\"").await;
    no_action("Call the bank", "say \"add Call the bank\"").await;
}

#[tokio::test]
async fn small_talk_gets_a_friendly_reply() {
    no_action("hello", "Hi!").await;
    no_action("Good morning!", "Hi!").await;
    no_action("help", "I can manage your tasks").await;
    no_action("what can you do?", "I can manage your tasks").await;
    no_action("thanks!", "You're welcome").await;
}

#[tokio::test]
async fn impossible_requests_are_explained() {
    no_action("delete task 42", "couldn't find task #42").await;
    no_action("complete task 4", "couldn't find task #4").await; // user 2's task
    no_action(
        "delete the secret plans",
        "couldn't find a task matching \"secret plans\"",
    )
    .await;
    no_action("mark the rent as done", "already done").await;
    no_action("delete everything", "one task at a time").await;
    no_action("rename 1", "What should the new name be").await;
    no_action("add", "What should the task say").await;
    no_action("7", "What should I do with task #7").await;
    no_action("mark 1 as not done", "can't reopen").await;
}

#[tokio::test]
async fn messages_are_bounded_and_not_empty() {
    let store = seeded();
    let agent = Agent::builtin();
    let too_long = "a".repeat(MAX_MESSAGE_CHARS + 1);
    match agent.respond(&[], &too_long, &store.executor(1)).await {
        Err(AgentError::MessageTooLong { chars, max }) => {
            assert_eq!((chars, max), (4001, 4000))
        }
        other => panic!("expected MessageTooLong, got {other:?}"),
    }
    // The limit counts characters, not bytes.
    let long_ok = format!("add {}", "é".repeat(MAX_MESSAGE_CHARS - 4));
    let reply = agent
        .respond(&[], &long_ok, &store.executor(1))
        .await
        .unwrap();
    assert_eq!(reply.actions.len(), 1);
    for empty in ["", "   ", "\n\t"] {
        assert!(matches!(
            agent.respond(&[], empty, &store.executor(1)).await,
            Err(AgentError::EmptyMessage)
        ));
    }
    assert!(store.calls().len() == 1);
}

#[tokio::test]
async fn completing_prefers_the_open_task_among_equal_matches() {
    let store = Store::new();
    store.seed(1, "buy milk", true);
    let open = store.seed(1, "buy milk", false);
    let reply = Agent::builtin()
        .respond(&[], "I finished buying milk", &store.executor(1))
        .await
        .unwrap();
    assert_eq!(reply.actions.len(), 1, "{}", reply.reply);
    assert_eq!(reply.actions[0].arguments["task_id"], open);
}
