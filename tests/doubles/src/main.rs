//! `tool-double`: answers as minikube, helm, kubectl or docker depending on the name it was called by.

use std::io::Write;

fn main() {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_default();
    let argv: Vec<String> = args.collect();
    let tool = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Err(e) = tool_doubles::record(&tool, &argv, serde_json::Value::Null) {
        // EX_IOERR: the test's log is broken; a call that cannot be recorded must not look like a success.
        eprintln!("{e}");
        std::process::exit(74);
    }
    let reply = match tool.as_str() {
        "minikube" => tool_doubles::tools::minikube::run(&argv),
        "helm" => tool_doubles::tools::helm::run(&argv),
        "kubectl" => tool_doubles::tools::kubectl::run(&argv),
        "docker" => tool_doubles::tools::docker::run(&argv),
        other => tool_doubles::Reply::err(2, format!("tool-double: unknown tool name {other:?}\n")),
    };
    let _ = std::io::stdout().write_all(reply.stdout.as_bytes());
    let _ = std::io::stderr().write_all(reply.stderr.as_bytes());
    std::process::exit(reply.code);
}
