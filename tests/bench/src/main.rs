//! `cargo run --release -p bench -- <target>`: benchmarks that print figures.
//! Each target lives in its own module; `cargo xtask bench <target>` calls this binary.

mod abuse;
mod backend;
mod dev;
mod frontend;
mod images;
mod support;
mod xtask;

fn main() {
    let target = std::env::args().nth(1).unwrap_or_default();
    let result = match target.as_str() {
        "abuse" => abuse::run(),
        "backend" => backend::run(),
        "dev" => dev::run(),
        "frontend" => frontend::run(),
        "images" => images::run(),
        "xtask" => xtask::run(),
        _ => {
            eprintln!("usage: bench <abuse|backend|frontend|images|xtask|dev>");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("bench {target} failed: {e}");
        std::process::exit(1);
    }
}
