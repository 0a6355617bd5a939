//! End-to-end tests with the Docker-backed cluster double (being written).
