//! HTTP clients (reqwest, blocking, rustls): one for the local checks through a port-forward (probes and the
//! smoke test), one for remote HTTPS endpoints (`diagnose --explain`).

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context as _, Result};
use reqwest::blocking::Client;

/// The client for `http://127.0.0.1:PORT`: no proxy (a proxy from the environment must not intercept a
/// local port-forward), no redirects, no trust store to load (nothing local speaks TLS).
pub fn local() -> Result<&'static Client> {
    static LOCAL: OnceLock<Client> = OnceLock::new();
    if let Some(c) = LOCAL.get() {
        return Ok(c);
    }
    let c = Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .tls_built_in_root_certs(false)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .context("building the local HTTP client")?;
    Ok(LOCAL.get_or_init(|| c))
}

/// A client for a remote endpoint: the platform's trust store (and `SSL_CERT_FILE`), proxies from the
/// environment, an overall `timeout`, and a connect timeout of at most 10 s so an unreachable host fails fast.
pub fn remote(timeout: Duration) -> Result<Client> {
    Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .build()
        .context("building the HTTP client")
}

/// True when something answers HTTP at `url` within 2 s (any status: the forward itself works).
pub fn answers(url: &str) -> bool {
    local().is_ok_and(|c| c.get(url).timeout(Duration::from_secs(2)).send().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn answers_sees_http_of_any_status_and_not_closed_ports() {
        let l = TcpListener::bind(("127.0.0.1", 0)).unwrap_or_else(|e| panic!("{e}"));
        let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut b = [0u8; 1024];
                let _ = s.read(&mut b);
                let _ = s.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        assert!(answers(&format!("http://127.0.0.1:{port}/x")));
        let dead = TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        assert!(!answers(&format!("http://127.0.0.1:{dead}/x")));
    }
}
