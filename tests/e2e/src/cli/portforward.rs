//! `kubectl port-forward`: 127.0.0.1:L to a pod's IP on the namespace's Docker network, with kubectl's messages.

use super::Args;
use crate::state::{self, ContainerState};
use crate::view;
use anyhow::{bail, Context, Result};
use chrono::Utc;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16384];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Runs the forward until the pod goes away (then exits 1 like kubectl's "lost connection to pod").
pub fn run(a: &Args, target: &str, ports: &[&str]) -> Result<i32> {
    let ctx = a.get(&["--context"]);
    let dir = state::state_dir()?;
    let d = state::read_desired(&dir)?;
    match d.profile_for_context(ctx.as_deref()) {
        Some((_, p)) if p.host == state::HostState::Running => {}
        _ => bail!("The connection to the server 192.168.49.2:8443 was refused - did you specify the right host or port?"),
    }
    let ns = a
        .get(&["-n", "--namespace"])
        .unwrap_or_else(|| "default".into());
    let spec = ports
        .first()
        .context("error: TYPE/NAME and list of ports are required for port-forward")?;
    let (local, remote) = match spec.split_once(':') {
        Some((l, r)) => (
            l.parse::<u16>().unwrap_or(0),
            r.parse::<u16>().context("error: invalid port")?,
        ),
        None => {
            let p = spec.parse::<u16>().context("error: invalid port")?;
            (p, p)
        }
    };
    let obs = state::read_observed(&dir)?;
    let pod_name = super::kubectl::pick_pod(&dir, &obs, &ns, target, true)?;
    let pod = obs
        .pods
        .iter()
        .find(|p| p.namespace == ns && p.name == pod_name)
        .context("pod vanished")?
        .clone();
    if !matches!(pod.state, ContainerState::Running { .. }) {
        let phase = view::pod_json(&pod)
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("Pending")
            .to_string();
        bail!("error: unable to forward port because pod is not running. Current status={phase}");
    }
    // Service port -> target port -> container port.
    let objs = view::objects_by_namespace(&d)?;
    let o = objs.get(&ns).cloned().unwrap_or_default();
    let w = o
        .workloads
        .iter()
        .find(|w| w.kind == pod.owner_kind && w.meta.name == pod.owner_name);
    let container = w
        .and_then(|w| w.template.spec.containers.first().cloned())
        .unwrap_or_default();
    let mut target_port = remote;
    if let Some(svc_name) = target
        .strip_prefix("svc/")
        .or_else(|| target.strip_prefix("service/"))
    {
        let svc = o
            .services
            .iter()
            .find(|s| s.meta.name == svc_name)
            .with_context(|| {
                format!("Error from server (NotFound): services \"{svc_name}\" not found")
            })?;
        let sp = svc
            .ports
            .iter()
            .find(|p| p.port == remote)
            .with_context(|| {
                format!("error: Service {svc_name} does not have a service port {remote}")
            })?;
        let tp = if sp.target_port.is_null() {
            Value::from(sp.port)
        } else {
            sp.target_port.clone()
        };
        target_port = container.resolve_port(&tp).unwrap_or(remote);
    }
    let addr = a.get(&["--address"]).unwrap_or_else(|| "localhost".into());
    let v4 = TcpListener::bind(("127.0.0.1", local));
    let listener = match v4 {
        Ok(l) => l,
        Err(e) => {
            eprintln!("Unable to listen on port {local}: Listeners failed to create with the following errors: [unable to create listener: Error listen tcp4 127.0.0.1:{local}: bind: {}]", if e.kind() == std::io::ErrorKind::AddrInUse { "address already in use".to_string() } else { e.to_string() });
            eprintln!(
                "error: unable to listen on any of the requested ports: [{{{local} {remote}}}]"
            );
            return Ok(1);
        }
    };
    let local = listener.local_addr()?.port();
    let v6 = if addr == "localhost" {
        TcpListener::bind(("::1", local)).ok()
    } else {
        None
    };
    println!("Forwarding from 127.0.0.1:{local} -> {target_port}");
    if v6.is_some() {
        println!("Forwarding from [::1]:{local} -> {target_port}");
    }
    let ip = pod.ip.clone().context("pod has no IP")?;
    let cid = pod.container_id.clone();
    // Watch the pod: when its container goes away the stream to it is lost.
    {
        let dir = dir.clone();
        let ns = ns.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(500));
            let Ok(o) = state::read_observed(&dir) else {
                continue;
            };
            let alive = o.pods.iter().any(|p| {
                p.namespace == ns
                    && p.name == pod_name
                    && p.container_id == cid
                    && matches!(p.state, ContainerState::Running { .. })
            });
            if !alive {
                eprintln!(
                    "E{} portforward.go:404] \"Unhandled Error\" err=\"lost connection to pod\"",
                    Utc::now().format("%m%d %H:%M:%S%.6f")
                );
                eprintln!("error: lost connection to pod");
                std::process::exit(1);
            }
        });
    }
    let listeners: Vec<TcpListener> = std::iter::once(listener).chain(v6).collect();
    let mut handles = Vec::new();
    for l in listeners {
        let ip = ip.clone();
        handles.push(std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let _ = writeln!(std::io::stdout(), "Handling connection for {local}");
                let upstream = format!("{ip}:{target_port}").parse().map_err(std::io::Error::other).and_then(|sa| TcpStream::connect_timeout(&sa, Duration::from_secs(5)));
                match upstream {
                    Ok(up) => {
                        let (c2, u2) = (conn.try_clone(), up.try_clone());
                        if let (Ok(c2), Ok(u2)) = (c2, u2) {
                            std::thread::spawn(move || pump(c2, up));
                            std::thread::spawn(move || pump(u2, conn));
                        }
                    }
                    Err(e) => {
                        eprintln!("E{} portforward.go:424] \"Unhandled Error\" err=\"an error occurred forwarding {local} -> {target_port}: error forwarding port {target_port} to pod: dial tcp4 127.0.0.1:{target_port}: connect: {e}\"", Utc::now().format("%m%d %H:%M:%S%.6f"));
                    }
                }
            }
        }));
    }
    for h in handles {
        let _ = h.join();
    }
    Ok(0)
}
