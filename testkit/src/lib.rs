//! Test support shared by the workspace tests. Never a dependency of product code.
