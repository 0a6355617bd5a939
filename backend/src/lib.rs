//! Todo chatbot backend.
