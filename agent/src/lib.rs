//! The chat agent (being written).
