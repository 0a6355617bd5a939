//! Probes run the way the kubelet runs them: HTTP GET on the pod IP, TCP connect, or exec in the container.

use crate::manifest::{Container, Probe};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A probe's result, with the kubelet's wording on failure.
#[derive(Debug, Clone)]
pub struct ProbeOutcome {
    /// Passed.
    pub ok: bool,
    /// Failure text.
    pub message: String,
}

fn fail(message: String) -> ProbeOutcome {
    ProbeOutcome { ok: false, message }
}

/// Runs one probe against a container.
pub fn run(pr: &Probe, c: &Container, ip: Option<&str>, cid: &str) -> ProbeOutcome {
    let timeout = Duration::from_secs(pr.timeout_seconds.max(1));
    if let Some(h) = &pr.http_get {
        let Some(port) = c.resolve_port(&h.port) else {
            return fail(format!("unknown port {}", h.port));
        };
        let Some(ip) = ip else {
            return fail("pod has no IP yet".into());
        };
        return http_get(ip, port, h.path.as_deref().unwrap_or("/"), timeout);
    }
    if let Some(t) = &pr.tcp_socket {
        let Some(port) = c.resolve_port(&t.port) else {
            return fail(format!("unknown port {}", t.port));
        };
        let Some(ip) = ip else {
            return fail("pod has no IP yet".into());
        };
        let Ok(addr) = format!("{ip}:{port}").parse::<SocketAddr>() else {
            return fail("bad address".into());
        };
        return match TcpStream::connect_timeout(&addr, timeout) {
            Ok(_) => ProbeOutcome {
                ok: true,
                message: String::new(),
            },
            Err(e) => fail(format!("dial tcp {addr}: connect: {e}")),
        };
    }
    if let Some(e) = &pr.exec {
        return exec(cid, &e.command, timeout);
    }
    ProbeOutcome {
        ok: true,
        message: String::new(),
    }
}

/// HTTP GET as the kubelet does it (2xx and 3xx pass).
pub fn http_get(ip: &str, port: u16, path: &str, timeout: Duration) -> ProbeOutcome {
    let url = format!("http://{ip}:{port}{path}");
    let Ok(addr) = format!("{ip}:{port}").parse::<SocketAddr>() else {
        return fail(format!("bad address {ip}:{port}"));
    };
    let mut s = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => s,
        Err(e) => {
            let why = if e.kind() == std::io::ErrorKind::ConnectionRefused {
                "connection refused".to_string()
            } else {
                e.to_string()
            };
            return fail(format!("Get \"{url}\": dial tcp {addr}: connect: {why}"));
        }
    };
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {ip}:{port}\r\nUser-Agent: kube-probe/1.31\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    if let Err(e) = s.write_all(req.as_bytes()) {
        return fail(format!("Get \"{url}\": {e}"));
    }
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while !got.windows(2).any(|w| w == b"\r\n") {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {
                return fail(format!(
                    "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
                ))
            }
        }
    }
    let line = String::from_utf8_lossy(&got);
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if (200..400).contains(&code) {
        ProbeOutcome {
            ok: true,
            message: String::new(),
        }
    } else {
        fail(format!("HTTP probe failed with statuscode: {code}"))
    }
}

/// `docker exec` with a deadline.
pub fn exec(cid: &str, cmd: &[String], timeout: Duration) -> ProbeOutcome {
    let child = crate::engine::docker()
        .arg("exec")
        .arg(cid)
        .args(cmd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return fail(format!("exec failed: {e}")),
    };
    let deadline = Instant::now() + timeout + Duration::from_millis(500);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut out = String::new();
                if let Some(mut o) = child.stdout.take() {
                    let _ = o.read_to_string(&mut out);
                }
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut out);
                }
                return if status.success() {
                    ProbeOutcome {
                        ok: true,
                        message: String::new(),
                    }
                } else {
                    fail(out.trim().to_string())
                };
            }
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return fail(format!("command {:?} timed out", cmd.join(" ")));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return fail(format!("exec failed: {e}")),
        }
    }
}
