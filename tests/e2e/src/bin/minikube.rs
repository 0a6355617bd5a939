//! Test double of `minikube` backed by the real Docker engine (see the e2e-tests crate docs).

fn main() {
    e2e_tests::cli::main_for("minikube", e2e_tests::cli::minikube::run)
}
