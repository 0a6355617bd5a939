//! Benchmark: xtask (being written).

/// Runs the benchmark and prints its figures.
pub fn run() -> Result<(), String> {
    Err("not written yet".into())
}
