//! The local end of a forward: the xtask itself listens on the user's port and relays each connection to the
//! current `kubectl port-forward` (on a private port). The user's URL never changes while the kubectl behind
//! it is replaced (a pod rolled, kubectl died); a connection that arrives meanwhile waits for the next one, up
//! to [`WAIT_FOR_UPSTREAM`], and then gets a `503` instead of hanging.
//!
//! Written on std (two `io::copy` threads per connection) rather than with a proxy crate: the xtask has no
//! async runtime, and this is all the relaying it needs.

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

/// How long a connection waits for an upstream before it is answered 503.
pub const WAIT_FOR_UPSTREAM: Duration = Duration::from_secs(30);

struct Shared {
    upstream: Mutex<Option<u16>>,
    changed: Condvar,
    stop: AtomicBool,
    wait: Duration,
}

/// A listening relay; stops listening when dropped.
pub struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Relay {
    /// Listens on `listener` (already bound to the user's port); no upstream yet. A connection waits up to
    /// `wait` for an upstream.
    pub fn start(listener: TcpListener, wait: Duration) -> Result<Self> {
        let addr = listener
            .local_addr()
            .context("reading the relay's address")?;
        let shared = Arc::new(Shared {
            upstream: Mutex::new(None),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            wait,
        });
        let s = Arc::clone(&shared);
        let acceptor = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let s = Arc::clone(&s);
                    std::thread::spawn(move || serve(&s, conn));
                }
            }
        });
        Ok(Self {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// Points new connections at `127.0.0.1:port` (None: hold them until there is one).
    pub fn set_upstream(&self, port: Option<u16>) {
        if let Ok(mut u) = self.shared.upstream.lock() {
            *u = port;
        }
        self.shared.changed.notify_all();
    }

    /// The current upstream port.
    #[cfg(test)]
    pub fn upstream(&self) -> Option<u16> {
        self.shared.upstream.lock().ok().and_then(|u| *u)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        // Wake the blocking accept so the acceptor sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

/// Waits for an upstream that accepts a connection, then relays both directions until either side closes.
fn serve(s: &Shared, client: TcpStream) {
    let deadline = Instant::now() + s.wait;
    let upstream = loop {
        if s.stop.load(Ordering::SeqCst) {
            return;
        }
        let port = s.upstream.lock().ok().and_then(|u| *u);
        if let Some(p) = port {
            let addr = SocketAddr::from(([127, 0, 0, 1], p));
            if let Ok(up) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                break Some(up);
            }
        }
        if Instant::now() >= deadline {
            break None;
        }
        // Woken by a new upstream, or looks again shortly (the current one may be coming up).
        if let Ok(guard) = s.upstream.lock() {
            let _ = s.changed.wait_timeout(guard, Duration::from_millis(200));
        }
    };
    match upstream {
        Some(up) => pump(client, up),
        None => unavailable(client),
    }
}

fn pump(client: TcpStream, upstream: TcpStream) {
    let (Ok(mut c_read), Ok(mut u_read)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let (mut c_write, mut u_write) = (client, upstream);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_read, &mut u_write);
        let _ = u_write.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut u_read, &mut c_write);
    let _ = c_write.shutdown(Shutdown::Write);
    let _ = up.join();
}

fn unavailable(mut client: TcpStream) {
    let body = "the port-forward is reconnecting to a ready pod; try again\n";
    let _ = write!(
        client,
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read};

    /// An HTTP server on a free port that answers every request with `name`.
    fn server(name: &'static str) -> (u16, JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
        let t = std::thread::spawn(move || {
            for mut c in l.incoming().flatten() {
                let mut line = String::new();
                let _ = BufReader::new(&c).read_line(&mut line);
                let _ = write!(
                    c,
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{name}",
                    name.len()
                );
            }
        });
        (port, t)
    }

    fn get(port: u16) -> String {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("{e}"));
        let _ = c.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n");
        let mut out = String::new();
        let _ = c.read_to_string(&mut out);
        out
    }

    #[test]
    fn the_local_port_stays_while_the_upstream_changes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let relay = Relay::start(listener, WAIT_FOR_UPSTREAM).unwrap_or_else(|e| panic!("{e:#}"));
        let (a, _ta) = server("pod-a");
        let (b, _tb) = server("pod-b");
        relay.set_upstream(Some(a));
        assert!(get(port).ends_with("pod-a"));
        relay.set_upstream(Some(b));
        assert!(get(port).ends_with("pod-b"));
        // Without an upstream a request waits, and is served as soon as one appears.
        relay.set_upstream(None);
        let waiting = std::thread::spawn(move || get(port));
        std::thread::sleep(Duration::from_millis(300));
        assert!(!waiting.is_finished(), "answered without an upstream");
        relay.set_upstream(Some(a));
        let answer = waiting.join().unwrap_or_default();
        assert!(answer.ends_with("pod-a"), "{answer}");
        assert_eq!(relay.upstream(), Some(a));
    }

    #[test]
    fn a_dead_upstream_is_waited_out_not_hung_on() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let relay = Relay::start(listener, WAIT_FOR_UPSTREAM).unwrap_or_else(|e| panic!("{e:#}"));
        // A port nobody listens on: connecting fails, the request waits for the next upstream.
        let dead = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        relay.set_upstream(Some(dead));
        let waiting = std::thread::spawn(move || get(port));
        std::thread::sleep(Duration::from_millis(300));
        assert!(!waiting.is_finished());
        let (b, _tb) = server("pod-b");
        relay.set_upstream(Some(b));
        assert!(waiting.join().unwrap_or_default().ends_with("pod-b"));
    }

    #[test]
    fn without_an_upstream_for_too_long_the_answer_is_503_not_a_hang() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let _relay =
            Relay::start(listener, Duration::from_millis(300)).unwrap_or_else(|e| panic!("{e:#}"));
        let answer = get(port);
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert!(answer.contains("retry-after: 1"), "{answer}");
    }
}
