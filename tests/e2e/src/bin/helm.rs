//! Test double of `helm` backed by the real Docker engine (see the e2e-tests crate docs).

fn main() {
    e2e_tests::cli::main_for("helm", e2e_tests::cli::helm::run)
}
