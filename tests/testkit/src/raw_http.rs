//! HTTP over a bare socket, for what a client library would not send (slow heads, half bodies, floods)
//! and for seeing exactly what the server answered or that it closed.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// What a raw connection saw: an HTTP response (status and the whole text) or the server closing it.
#[derive(Debug)]
pub enum Seen {
    /// The server answered.
    Response(u16, String),
    /// The server closed the connection (or reset it) without an answer.
    Closed,
}

/// Reads from `stream` until the server has sent a complete response (its body by Content-Length; one
/// without a length ends when the server closes) or closed; panics after `deadline`.
pub async fn read_answer(stream: &mut TcpStream, deadline: Duration) -> Seen {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(seen) = complete_response(&buf) {
            return seen;
        }
        match tokio::time::timeout_at(until, stream.read(&mut chunk)).await {
            Err(_) => panic!(
                "no answer and no close within {deadline:?}; got so far: {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => {
                let text = String::from_utf8_lossy(&buf).into_owned();
                return if text.is_empty() {
                    Seen::Closed
                } else {
                    Seen::Response(status_of(&text), text)
                };
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn status_of(text: &str) -> u16 {
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A whole response in `buf`: the head, and the body its Content-Length announces (none for 1xx, 204
/// and 304). Without a length the response is complete only when the server closes.
fn complete_response(buf: &[u8]) -> Option<Seen> {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = status_of(head);
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())
            .flatten()
    });
    let length = match length {
        Some(n) => n,
        None if (100..200).contains(&status) || status == 204 || status == 304 => 0,
        None => return None,
    };
    (body.len() >= length).then(|| Seen::Response(status, text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_complete_when_its_announced_body_is_there() {
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n";
        assert!(complete_response(format!("{head}ab").as_bytes()).is_none());
        assert!(matches!(
            complete_response(format!("{head}abcd").as_bytes()),
            Some(Seen::Response(200, _))
        ));
        assert!(matches!(
            complete_response(b"HTTP/1.1 204 No Content\r\n\r\n"),
            Some(Seen::Response(204, _))
        ));
        // Streamed (no length): only the close ends it.
        assert!(complete_response(b"HTTP/1.1 200 OK\r\n\r\npartial").is_none());
    }
}
