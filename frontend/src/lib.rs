//! Todo chatbot frontend server.
