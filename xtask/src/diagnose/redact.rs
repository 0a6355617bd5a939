//! Anonymises text before it leaves the machine: tokens, credentials in URLs, secret-looking assignments, IPs.

/// Words that mark the value after them as secret.
const SECRET_WORDS: [&str; 8] = [
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "bearer",
];

/// Replaces everything that looks like a credential with `[REDACTED]` and IPv4 addresses with `<ip>`.
pub fn redact(text: &str) -> String {
    text.lines().map(redact_line).collect::<Vec<_>>().join("\n")
}

fn redact_line(line: &str) -> String {
    let line = url_credentials(line);
    let mut out: Vec<String> = Vec::new();
    let mut hide_next = false;
    for word in line.split(' ') {
        let lower = word.to_ascii_lowercase();
        if hide_next && (lower == "bearer" || lower == "basic") {
            out.push(word.to_string());
            continue;
        }
        if hide_next && !word.is_empty() {
            out.push("[REDACTED]".into());
            hide_next = false;
            continue;
        }
        let is_secret_word = SECRET_WORDS.iter().any(|w| lower.contains(w));
        if let Some((key, _)) = word.split_once(['=', ':']).filter(|(k, v)| {
            !v.is_empty()
                && SECRET_WORDS
                    .iter()
                    .any(|w| k.to_ascii_lowercase().contains(w))
        }) {
            let sep = &word[key.len()..=key.len()];
            out.push(format!("{key}{sep}[REDACTED]"));
            continue;
        }
        if is_secret_word && (lower.ends_with(':') || lower.ends_with('=') || lower == "bearer") {
            hide_next = true;
            out.push(word.to_string());
            continue;
        }
        if looks_like_token(word) {
            out.push("[REDACTED]".into());
            continue;
        }
        out.push(ipv4(word));
    }
    out.join(" ")
}

/// `scheme://user:pass@host` -> `scheme://[REDACTED]@host`.
fn url_credentials(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '/' || c == '"')
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("[REDACTED]");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// Long high-entropy-looking words: API keys (`sk-...`), JWTs, hex or base64 secrets.
fn looks_like_token(word: &str) -> bool {
    let w = word.trim_matches(|c: char| "\"'`,;()[]{}".contains(c));
    if (w.starts_with("sk-") && w.len() > 12) || (w.starts_with("eyJ") && w.len() > 20) {
        return true;
    }
    if w.len() < 32 || w.contains("://") || w.contains('/') && !w.contains('+') {
        return false;
    }
    let charset = w
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+/=_-.".contains(c));
    let digits = w.chars().filter(char::is_ascii_digit).count();
    let letters = w.chars().filter(char::is_ascii_alphabetic).count();
    // sha256 image IDs and container IDs are long hex too, but they are not secrets: keep `sha256:`/`docker://` forms.
    charset && digits >= 4 && letters >= 4 && !w.contains(':') && !w.contains('.')
}

fn ipv4(word: &str) -> String {
    let mut out = String::new();
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() == 4
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.parse::<u8>().is_ok())
        {
            out.push_str("<ip>");
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for c in word.chars() {
        if c.is_ascii_digit() || c == '.' {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn hides_credentials_tokens_and_ips() {
        let text = "DATABASE_URL=postgres://todo:hunter2@db:5432/todo\n\
                    Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc\n\
                    key sk-proj-AbCdEf0123456789xyz used\n\
                    connect to postgres://app:s3cr3t@10.96.0.12:5432 failed\n\
                    password: hunter2 and api_key=abc123\n\
                    Get \"http://10.244.0.12:8000/ready\": dial tcp 10.244.0.12:8000: connect: connection refused";
        let r = redact(text);
        for secret in [
            "hunter2",
            "s3cr3t",
            "sk-proj",
            "eyJhbGci",
            "abc123",
            "10.244.0.12",
            "10.96.0.12",
        ] {
            assert!(!r.contains(secret), "{secret} leaked in:\n{r}");
        }
        assert!(r.contains("postgres://[REDACTED]@db:5432/todo"), "{r}");
        assert!(r.contains("connection refused"), "{r}");
        assert!(r.contains("http://<ip>:8000/ready"), "{r}");
    }

    #[test]
    fn keeps_ordinary_findings_readable() {
        let text =
            "Pod/todo-backend-6d8f9c7b5d-k2x9q: image todo-backend:3f9a1c2b7d4e is not loaded";
        assert_eq!(redact(text), text);
    }
}
