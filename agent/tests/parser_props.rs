//! No input text panics the parser or the built-in engine.

mod support;

use agent::builtin::parse;
use agent::Agent;
use proptest::prelude::*;
use support::memory::Store;

const WORDS: &[&str] = &[
    "add",
    "delete",
    "remove",
    "mark",
    "done",
    "as",
    "to",
    "rename",
    "task",
    "#",
    "1",
    "0",
    "-3",
    "99999999999999999999",
    "the",
    "milk",
    "one",
    "'",
    "\"",
    ":",
    "--",
    ";",
    "with description",
    "change",
    "description of",
    "is done",
    "what's",
    "list",
    "show",
    "completed",
    "İ",
    "ß",
    "é",
    "🙂",
    "\u{0301}",
    "  ",
    "\n",
    "remind me to",
    "i finished",
    "all",
    "everything",
    "of",
    "set",
];

fn phrase() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(WORDS), 0..12).prop_map(|w| w.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_panics_on_arbitrary_text(s in "\\PC{0,300}") {
        let _ = parse(&s);
    }

    #[test]
    fn parse_never_panics_on_keyword_soup(s in phrase()) {
        let _ = parse(&s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_engine_answers_every_message(s in prop_oneof![phrase(), "\\PC{1,200}"]) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let store = Store::new();
        store.seed(1, "buy milk", false);
        store.seed(1, "milk the cow", true);
        store.seed(2, "other user's task", false);
        let result = rt.block_on(Agent::builtin().respond(&[], &s, &store.executor(1)));
        if s.trim().is_empty() {
            prop_assert!(result.is_err());
        } else {
            let reply = result.unwrap();
            prop_assert!(!reply.reply.is_empty());
            prop_assert!(reply.actions.len() <= 1);
            prop_assert_eq!(store.tasks_of(2).len(), 1);
        }
    }
}
