//! Test double of `kubectl` backed by the real Docker engine (see the e2e-tests crate docs).

fn main() {
    e2e_tests::cli::main_for("kubectl", e2e_tests::cli::kubectl::run)
}
