//! `minikube`: profiles, status bitmask, image load/ls against the real Docker engine, docker-env.

use super::Args;
use crate::engine;
use crate::state::{self, HostState, Profile};
use anyhow::Result;
use serde_json::json;

/// Reported minikube version.
pub const VERSION: &str = "v1.36.0";
/// Exit code of a missing profile (`reason.ExGuestNotFound`).
pub const EX_GUEST_NOT_FOUND: i32 = 85;

/// Runs one `minikube` invocation.
pub fn run(argv: &[String]) -> i32 {
    let a = match Args::parse(tool_doubles::spec::minikube(), argv) {
        Ok(a) => a,
        Err(r) => return super::refuse(r),
    };
    match dispatch(&a) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("X  Exiting due to GUEST_ERROR: {e:#}");
            80
        }
    }
}

fn profile_name(a: &Args) -> String {
    a.get(&["-p", "--profile"])
        .or_else(|| std::env::var("MINIKUBE_PROFILE").ok())
        .unwrap_or_else(|| "minikube".into())
}

fn not_found(name: &str, json_mode: bool) -> i32 {
    let lines = [
        format!(
            "Profile \"{name}\" not found. Run \"minikube profile list\" to view all profiles."
        ),
        format!("To start a cluster, run: \"minikube start -p {name}\""),
    ];
    if json_mode {
        for l in lines {
            let ev = json!({"data": {"message": format!("{l}\n")}, "datacontenttype": "application/json", "id": state::new_uid(),
                            "source": "https://minikube.sigs.k8s.io/", "specversion": "1.0", "type": "io.k8s.sigs.minikube.info"});
            println!("{}", crate::printer::sorted(&ev));
        }
    } else {
        println!("🤷  {}", lines[0]);
        println!("👉  {}", lines[1]);
    }
    EX_GUEST_NOT_FOUND
}

fn dispatch(a: &Args) -> Result<i32> {
    let dir = state::state_dir()?;
    let cmd: Vec<&str> = a.pos.iter().map(String::as_str).collect();
    let name = profile_name(a);
    let json_out = matches!(
        a.get(&["-o", "--output", "--format"]).as_deref(),
        Some("json")
    );
    match cmd.as_slice() {
        ["version", ..] => {
            if a.has(&["--short"]) {
                println!("{VERSION}");
            } else if json_out {
                println!(
                    "{}",
                    json!({"commit": "f8f52f5de11fc6ad8244afac475e1d0f96841df1", "minikubeVersion": VERSION})
                );
            } else {
                println!(
                    "minikube version: {VERSION}\ncommit: f8f52f5de11fc6ad8244afac475e1d0f96841df1"
                );
            }
            Ok(0)
        }
        ["status", ..] => {
            let d = state::read_desired(&dir)?;
            let Some(p) = d.profiles.get(&name) else {
                return Ok(not_found(&name, json_out));
            };
            let up = p.host == HostState::Running;
            let s = if up { "Running" } else { "Stopped" };
            let kc = if up { "Configured" } else { "Stopped" };
            if json_out {
                print!(
                    "{}",
                    json!({"Name": name, "Host": s, "Kubelet": s, "APIServer": s, "Kubeconfig": kc, "Worker": false})
                );
            } else {
                println!("{name}\ntype: Control Plane\nhost: {s}\nkubelet: {s}\napiserver: {s}\nkubeconfig: {kc}\n");
            }
            Ok(if up { 0 } else { 7 })
        }
        ["start", ..] => {
            let runtime = a
                .get(&["--container-runtime"])
                .or_else(|| std::env::var("TODO_CLUSTER_DOUBLE_RUNTIME").ok())
                .unwrap_or_else(|| "docker".into());
            let cpus = a.get(&["--cpus"]).and_then(|c| c.parse().ok()).unwrap_or(2);
            let memory_mb = a
                .get(&["--memory"])
                .and_then(|m| parse_mb(&m))
                .unwrap_or(4000);
            let k8s = a
                .get(&["--kubernetes-version"])
                .unwrap_or_else(|| "v1.33.1".into());
            let keep = a.has(&["--keep-context"]);
            println!("😄  [{name}] minikube {VERSION} on Debian 12");
            state::update_desired(&dir, |d| {
                let existed = d.profiles.contains_key(&name);
                let p = d.profiles.entry(name.clone()).or_insert_with(|| Profile {
                    host: HostState::Stopped,
                    runtime: runtime.clone(),
                    cpus,
                    memory_mb,
                    kubernetes_version: k8s.clone(),
                    loaded_images: Default::default(),
                });
                p.host = HostState::Running;
                if !keep {
                    d.current_context = Some(name.clone());
                }
                d.generation += 1;
                println!(
                    "{}",
                    if existed {
                        "🏃  Updating the running docker \"minikube\" container ..."
                    } else {
                        "✨  Using the docker driver based on user configuration"
                    }
                );
                Ok(())
            })?;
            println!("🏄  Done! kubectl is now configured to use \"{name}\" cluster and \"default\" namespace by default");
            Ok(0)
        }
        ["stop", ..] => {
            let found = state::update_desired(&dir, |d| {
                Ok(d.profiles.get_mut(&name).map(|p| {
                    p.host = HostState::Stopped;
                    d.generation += 1;
                }))
            })?;
            if found.is_none() {
                return Ok(not_found(&name, false));
            }
            println!("✋  Stopping node \"{name}\"  ...\n🛑  1 node stopped.");
            Ok(0)
        }
        ["delete", ..] => {
            state::update_desired(&dir, |d| {
                d.profiles.remove(&name);
                d.releases.clear();
                d.namespaces.clear();
                d.generation += 1;
                Ok(())
            })?;
            println!("🔥  Deleting \"{name}\" in docker ...\n💀  Removed all traces of the \"{name}\" cluster.");
            Ok(0)
        }
        ["ip", ..] => {
            println!("192.168.49.2");
            Ok(0)
        }
        ["profile", "list", ..] => {
            let d = state::read_desired(&dir)?;
            let valid: Vec<_> = d
                .profiles
                .iter()
                .map(|(n, p)| {
                    let node = json!({"Name": "", "IP": "192.168.49.2", "Port": 8443, "KubernetesVersion": p.kubernetes_version,
                                      "ContainerRuntime": p.runtime, "ControlPlane": true, "Worker": true});
                    json!({"Name": n, "Status": if p.host == HostState::Running {"OK"} else {"Stopped"},
                           "Config": {"Name": n, "Driver": "docker", "Memory": p.memory_mb, "CPUs": p.cpus,
                                      "KubernetesConfig": {"KubernetesVersion": p.kubernetes_version, "ClusterName": n,
                                                           "ContainerRuntime": p.runtime, "Namespace": "default"},
                                      "Nodes": [node]},
                           "Active": false, "ActiveKubeContext": d.current_context.as_deref() == Some(n.as_str())})
                })
                .collect();
            if json_out {
                print!("{}", json!({"invalid": [], "valid": valid}));
            } else {
                for v in &valid {
                    println!(
                        "{} docker {} {}",
                        v["Name"], v["Config"]["KubernetesConfig"]["ContainerRuntime"], v["Status"]
                    );
                }
            }
            Ok(0)
        }
        ["image", "load", images @ ..] => {
            let d = state::read_desired(&dir)?;
            if !d
                .profiles
                .get(&name)
                .is_some_and(|p| p.host == HostState::Running)
            {
                return Ok(not_found(&name, false));
            }
            for img in images {
                if engine::image_inspect(img).is_none() {
                    eprintln!("\n❌  Exiting due to GUEST_IMAGE_LOAD: Failed to load image: save to dir: caching images: caching image \"{img}\": getting image \"{img}\": pull access denied, repository does not exist or may require authorization");
                    return Ok(80);
                }
            }
            state::update_desired(&dir, |d| {
                if let Some(p) = d.profiles.get_mut(&name) {
                    p.loaded_images
                        .extend(images.iter().map(|i| engine::normalise_image(i)));
                }
                d.generation += 1;
                Ok(())
            })?;
            Ok(0)
        }
        ["image", "rm", images @ ..] => {
            state::update_desired(&dir, |d| {
                if let Some(p) = d.profiles.get_mut(&name) {
                    for i in images.iter() {
                        // A cri-o node lists (and removes) podman's `localhost/` name of a loaded short name.
                        let i = if p.runtime == "crio" {
                            i.strip_prefix("localhost/").unwrap_or(i)
                        } else {
                            i
                        };
                        p.loaded_images.remove(&engine::normalise_image(i));
                    }
                }
                Ok(())
            })?;
            Ok(0)
        }
        ["image", "ls", ..] | ["image", "list", ..] => {
            let d = state::read_desired(&dir)?;
            let Some(p) = d
                .profiles
                .get(&name)
                .filter(|p| p.host == HostState::Running)
            else {
                return Ok(not_found(&name, false));
            };
            let refs: Vec<String> = if p.runtime == "docker" {
                engine::image_refs()?.into_iter().collect()
            } else {
                p.loaded_images
                    .iter()
                    .filter(|i| engine::image_inspect(i).is_some())
                    .cloned()
                    .collect()
            };
            let format = a.get(&["--format"]).unwrap_or_else(|| "short".into());
            let mut items = Vec::new();
            for r in &refs {
                let info = engine::image_inspect(r);
                let id = info
                    .as_ref()
                    .and_then(|v| v["Id"].as_str())
                    .unwrap_or("")
                    .trim_start_matches("sha256:")
                    .to_string();
                let size = info.as_ref().and_then(|v| v["Size"].as_u64()).unwrap_or(0);
                // What the runtime lists for a loaded `name:tag` (see tool_doubles::tools::minikube::node_name):
                // cri-o loads with podman, which names a short docker-archive tag `localhost/name:tag`.
                let tag = tool_doubles::tools::minikube::node_name(&p.runtime, r);
                items.push(json!({"id": id, "repoDigests": [], "repoTags": [tag], "size": size.to_string()}));
            }
            if format == "json" {
                println!("{}", serde_json::Value::from(items));
            } else {
                for i in items {
                    println!("{}", i["repoTags"][0].as_str().unwrap_or_default());
                }
            }
            Ok(0)
        }
        ["docker-env", ..] => {
            let d = state::read_desired(&dir)?;
            let Some(p) = d
                .profiles
                .get(&name)
                .filter(|p| p.host == HostState::Running)
            else {
                return Ok(not_found(&name, false));
            };
            if p.runtime != "docker" {
                eprintln!("\n❌  Exiting due to MK_USAGE: The docker-env command is only compatible with the \"docker\" runtime, but this cluster was configured to use the \"{}\" runtime.", p.runtime);
                return Ok(14);
            }
            let host = std::env::var("DOCKER_HOST")
                .unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
            if a.has(&["-u", "--unset"]) {
                println!("unset DOCKER_TLS_VERIFY;\nunset DOCKER_HOST;\nunset DOCKER_CERT_PATH;\nunset MINIKUBE_ACTIVE_DOCKERD;");
            } else {
                println!("export DOCKER_HOST=\"{host}\"\nexport MINIKUBE_ACTIVE_DOCKERD=\"{name}\"\n\n# To point your shell to minikube's docker-daemon, run:\n# eval $(minikube -p {name} docker-env)");
            }
            Ok(0)
        }
        other => {
            eprintln!("Error: unknown command {:?} for \"minikube\" (not implemented by the cluster double)", other.first().unwrap_or(&""));
            Ok(64)
        }
    }
}

fn parse_mb(s: &str) -> Option<u64> {
    let l = s.to_ascii_lowercase();
    if let Some(g) = l.strip_suffix("gb").or_else(|| l.strip_suffix('g')) {
        return g.parse::<u64>().ok().map(|g| g * 1024);
    }
    l.trim_end_matches("mb").trim_end_matches('m').parse().ok()
}
