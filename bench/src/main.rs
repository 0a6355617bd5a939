//! `cargo run --release -p bench -- <target>`: benchmarks that print figures.
//! Each target lives in its own module; `cargo xtask bench <target>` calls this binary.

fn main() {
    let target = std::env::args().nth(1).unwrap_or_default();
    match target.as_str() {
        _ => {
            eprintln!("usage: bench <backend|frontend|images|xtask>");
            std::process::exit(2);
        }
    }
}
