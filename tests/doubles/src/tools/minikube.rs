//! minikube double (behaviour of kubernetes/minikube v1.38.1 unless noted): status (bitmask exit codes, 85 for a
//! missing profile, `null` when a node's status cannot be read), start, profile list, docker-env,
//! update-context, image ls/load/rm for the docker, containerd and cri-o runtimes. Output shapes from
//! xtask/tests/fixtures/minikube. Every argv is checked against minikube's flag set first (spec/minikube-*.flags).

use serde_json::{json, Value};

use crate::spec::Parsed;
use crate::{fixture, fixture_json, with_state, Reply};

/// The address `docker-env` hands out; the docker double treats it as the node's daemon.
pub const NODE_DOCKER_HOST: &str = "tcp://127.0.0.1:32842";

/// The kubeconfig endpoint of a profile whose kubeconfig entry is stale (status bit 4).
pub const STALE_ENDPOINT: &str = "127.0.0.1:32771";

/// Answers one minikube call.
pub fn run(argv: &[String]) -> Reply {
    let a = match crate::spec::minikube().parse(argv) {
        Ok(a) => a,
        Err(r) => return r.into(),
    };
    let profile = a.get("--profile").unwrap_or_else(|| "minikube".into());
    let words = a.words();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["version", ..] => version(&a),
        ["status", ..] => status(&a, &profile),
        ["start", ..] => with_state(|s| {
            if s.str("cluster") == "unreadable" {
                // What `minikube start` says when the docker driver does not answer
                // (pkg/minikube/registry/drvs/docker/docker.go: PROVIDER_DOCKER_NOT_RUNNING; exit 63 =
                // reason.ExProviderNotRunning, pkg/minikube/reason/exitcodes.go).
                return Reply::err(63, "❌  Exiting due to PROVIDER_DOCKER_NOT_RUNNING: \"docker version --format -\" exit status 1: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n💡  Suggestion: Start the Docker service\n");
            }
            s.0["cluster"] = json!("running");
            s.0["kubeconfig"] = json!("Configured");
            s.0["profile"] = json!(profile);
            // Without --keep-context, start makes the profile the current context.
            if !a.on("--keep-context") {
                s.0["current_context"] = json!(profile);
            }
            Reply::ok(format!("😄  [{profile}] minikube {}\n🏄  Done! kubectl is now configured to use \"{profile}\" cluster\n", s.str("minikube_version")))
        }),
        ["profile", "list", ..] => profile_list(&a),
        // cmd/minikube/cmd/delete.go: removes the node (a node that is already gone or a driver that does
        // not answer is only logged) and the profile's files; exit 0.
        ["delete"] => with_state(|s| {
            if s.str("cluster") == "missing" {
                return Reply::ok(format!("🤷  Profile \"{profile}\" not found. Run \"minikube profile list\" to view all profiles.\n"));
            }
            s.0["cluster"] = json!("missing");
            s.0["releases"] = json!({});
            s.0["objects"] = json!([]);
            s.0["namespaces"] = json!(["default", "kube-system"]);
            s.0["images"]["node"] = json!([]);
            Reply::ok(format!("🔥  Deleting \"{profile}\" in docker ...\n💀  Removed all traces of the \"{profile}\" cluster.\n"))
        }),
        ["docker-env", ..] => with_state(|s| {
            if s.str("cluster") != "running" {
                return not_running(&profile);
            }
            Reply::ok(format!(
                "export DOCKER_TLS_VERIFY=\"1\"\nexport DOCKER_HOST=\"{NODE_DOCKER_HOST}\"\nexport DOCKER_CERT_PATH=\"/certs\"\nexport MINIKUBE_ACTIVE_DOCKERD=\"{profile}\"\n\n# To point your shell to minikube's docker-daemon, run:\n# eval $(minikube -p {profile} docker-env)\n"
            ))
        }),
        // cmd/minikube/cmd/update-context.go: fixes the kubeconfig endpoint, then makes the profile the
        // current context (kubeconfig.SetCurrentContext), whatever it was.
        ["update-context"] => with_state(|s| {
            if s.str("cluster") != "running" {
                return not_running(&profile);
            }
            if s.0["kubeconfig_readonly"] == true {
                // kubeconfig.UpdateEndpoint failing: exit.Error(reason.HostKubeconfigUpdate, ...), exit 38
                // (reason.ExHostConfig).
                return Reply::err(38, "❌  Exiting due to HOST_KUBECONFIG_UPDATE: update config: write: open /root/.kube/config: permission denied\n");
            }
            let stale = s.str("kubeconfig") == "Misconfigured";
            s.0["kubeconfig"] = json!("Configured");
            s.0["current_context"] = json!(profile);
            let first = if stale {
                format!("🎉  \"{profile}\" context has been updated to point to 192.168.49.2:8443\n")
            } else {
                format!("🙄  No changes required for the \"{profile}\" context\n")
            };
            Reply::ok(format!("{first}💗  Current context is \"{profile}\"\n"))
        }),
        ["image", "ls", ..] => with_state(|s| {
            if s.str("cluster") != "running" {
                return not_running(&profile);
            }
            let format = a.get("--format").unwrap_or_else(|| "short".into());
            let runtime = s.str("runtime");
            let tags: Vec<String> = s.images("node").iter().map(|i| node_name(&runtime, i)).collect();
            match format.as_str() {
                // machine.ListImages (pkg/minikube/machine/cache_images.go): json.Marshal([]ListImage) + "\n";
                // id without sha256:, size a string of bytes. docker: repoDigests [] and tags through
                // AddDockerIO; containerd and cri-o: what `crictl images -o json` reports.
                "json" => {
                    let list: Vec<Value> = tags
                        .iter()
                        .enumerate()
                        .map(|(i, t)| json!({"id": format!("{:064x}", i + 1), "repoDigests": [], "repoTags": [t], "size": "104857600"}))
                        .collect();
                    Reply::ok(format!("{}\n", Value::Array(list)))
                }
                // The default `short` format: one tag per line, sorted in reverse.
                "short" => {
                    let mut t = tags;
                    t.sort();
                    t.reverse();
                    Reply::ok(format!("{}\n", t.join("\n")))
                }
                other => Reply::err(14, format!("❌  Exiting due to MK_USAGE: unsupported format {other:?} in the test double (short, json)\n")),
            }
        }),
        ["image", "load", image] => with_state(|s| {
            if s.str("cluster") != "running" {
                return not_running(&profile);
            }
            if !s.images("local").iter().any(|i| i == image) {
                // image.SaveToDir -> retrieveImage: neither the local daemon nor a registry has it
                // (cmd/minikube/cmd/image.go: exit.Error(reason.GuestImageLoad, ...), exit 80).
                return Reply::err(80, format!("\n❌  Exiting due to GUEST_IMAGE_LOAD: Failed to load image: save to dir: caching images: caching image \"{image}\": getting image \"{image}\": image not known\n"));
            }
            let repo = image.split(':').next().unwrap_or(image).to_string();
            let drops = s.0["image_load_drops"]
                .as_array()
                .is_some_and(|d| d.iter().any(|r| r == repo.as_str()));
            if drops {
                // machine.DoLoadImages (pkg/minikube/machine/cache_images.go, v1.30 to v1.38): a node the
                // image could not be transferred to or loaded into is only logged ("failed pushing to: ..."
                // in the log file) and the command still succeeds: "Live pushes are not considered a failure".
                crate::note("minikube-load-dropped", &[image.to_string()], json!({"profile": profile}));
                return Reply::ok("");
            }
            s.add_image("node", image);
            Reply::ok("")
        }),
        ["image", "load", ..] => Reply::err(14, "❌  Exiting due to MK_USAGE: Please provide an image in your local daemon to load into minikube via <minikube image load IMAGE_NAME>\n"),
        // `minikube image rm` (cmd/minikube/cmd/image.go): removes the tag from every node, prints nothing.
        ["image", "rm", images @ ..] if !images.is_empty() => with_state(|s| {
            if s.str("cluster") != "running" {
                return not_running(&profile);
            }
            let runtime = s.str("runtime");
            for image in images {
                let stored: Vec<String> = s
                    .images("node")
                    .into_iter()
                    .filter(|i| node_name(&runtime, i) == *image || i == image)
                    .collect();
                for i in stored {
                    s.remove_image("node", &i);
                }
            }
            Reply::ok("")
        }),
        _ => Reply::err(
            14,
            format!("Error: unknown command {:?} for \"minikube\"\nRun 'minikube --help' for usage.\n", words.first().unwrap_or(&"")),
        ),
    }
}

/// The name a node's runtime lists for an image loaded as `name:tag`.
///
/// docker: `AddDockerIO` (pkg/minikube/cruntime/docker.go) gives `docker.io/library/name:tag`. containerd:
/// `ctr images import` stores the normalised docker name, the same. cri-o: minikube loads with
/// `sudo podman load -i` (pkg/minikube/cruntime/crio.go LoadImage); podman names a docker-archive's short
/// RepoTag `localhost/name:tag` (containers/common libimage/normalize.go NormalizeName, called from
/// libimage/pull.go storageReferencesReferencesFromArchiveReader), and minikube lists what
/// `crictl images --output json` reports (cruntime/cri.go listCRIImages) without adding a prefix. The archive's
/// RepoTag is the short name as given: go-containerregistry v0.20 `tarball.Write` writes `tag.String()`,
/// the original input (pkg/minikube/image/cache.go writeImage).
pub fn node_name(runtime: &str, image: &str) -> String {
    if image.contains('/') {
        return image.to_string();
    }
    if runtime == "crio" {
        format!("localhost/{image}")
    } else {
        format!("docker.io/library/{image}")
    }
}

fn version(a: &Parsed) -> Reply {
    let v = with_state(|s| s.str("minikube_version"));
    // cmd/minikube/cmd/version.go: `-o json` prints {"commit","minikubeVersion"} + "\n" (fixture version.json).
    let mut j = fixture_json("minikube/version.json");
    j["minikubeVersion"] = json!(v);
    match a.get("--output").as_deref() {
        Some("json") => Reply::ok(format!("{j}\n")),
        _ if a.on("--short") => Reply::ok(format!("{v}\n")),
        Some("") | None => Reply::ok(format!(
            "minikube version: {v}\ncommit: {}\n",
            j["commit"].as_str().unwrap_or_default()
        )),
        Some(other) => Reply::err(14, format!("❌  Exiting due to MK_USAGE: Invalid output format: {other}. Valid values: 'json', 'yaml'\n")),
    }
}

fn not_running(profile: &str) -> Reply {
    Reply::err(
        89,
        format!("❌  Exiting due to GUEST_STATUS: state: unknown state \"{profile}\": docker container inspect {profile}: exit status 1\n"),
    )
}

/// The `minor` of `v1.MINOR.PATCH`.
fn minor(version: &str) -> u32 {
    version
        .trim_start_matches('v')
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(38)
}

fn status(a: &Parsed, profile: &str) -> Reply {
    let json_out = match a.get("--output").unwrap_or_else(|| "text".into()).to_lowercase().as_str() {
        "json" => true,
        "text" => false,
        other => {
            return Reply::err(14, format!("❌  Exiting due to MK_USAGE: invalid output format: {other}. Valid values: 'text', 'json'\n"))
        }
    };
    with_state(|s| {
        let cluster = s.str("cluster");
        let node = match cluster.as_str() {
            "running" => {
                let mut v = fixture_json("minikube/status-running.json");
                // pkg/minikube/cluster/status.go NodeStatus: kubeconfig.VerifyEndpoint fails for a kubeconfig
                // entry that is missing or points at an old endpoint: Kubeconfig "Misconfigured".
                v["Kubeconfig"] = json!(s.str("kubeconfig"));
                v
            }
            "stopped" => fixture_json("minikube/status-stopped.DERIVED-FROM-SOURCE.json"),
            "unreadable" => Value::Null,
            _ => {
                // mustload.Partial: no such profile, exit 85 (reason.ExGuestNotFound) before any status; in JSON
                // mode each message is a CloudEvent line (pkg/minikube/out/register), text mode prints them.
                let lines = [
                    format!("Profile \"{profile}\" not found. Run \"minikube profile list\" to view all profiles."),
                    format!("To start a cluster, run: \"minikube start -p {profile}\""),
                ];
                let stdout = if json_out {
                    lines
                        .iter()
                        .enumerate()
                        .map(|(i, l)| format!("{}\n", json!({"data": {"message": format!("{l}\n")}, "datacontenttype": "application/json", "id": format!("00000000-0000-4000-8000-00000000000{i}"), "source": "https://minikube.sigs.k8s.io/", "specversion": "1.0", "type": "io.k8s.sigs.minikube.info"})))
                        .collect()
                } else {
                    format!("🤷  {}\n👉  {}\n", lines[0], lines[1])
                };
                return Reply {
                    code: 85,
                    stdout,
                    stderr: String::new(),
                };
            }
        };
        if node.is_null() {
            // cmd/minikube/cmd/status.go + pkg/minikube/cluster/status.go GetStatus (v1.35.0+): a node whose
            // host status errors (the docker driver's daemon down) or is Nonexistent makes GetStatus return
            // no statuses; statusJSON marshals the nil slice as `null`. exitCode(): 0 for an empty list up to
            // v1.37, 7 (all three bits) since v1.38.0 (commit cbaaddbf "return non-zero exit code when status
            // unavailable"). Text mode prints nothing.
            let code = if minor(&s.str("minikube_version")) >= 38 {
                7
            } else {
                0
            };
            let stdout = if json_out {
                "null".to_string()
            } else {
                String::new()
            };
            return Reply {
                code,
                stdout,
                stderr: String::new(),
            };
        }
        let mut node = node;
        node["Name"] = json!(profile);
        let text = |k: &str| node[k].as_str().unwrap_or_default().to_string();
        // exitCode(): 1 host not Running, 2 kubelet or apiserver not Running, 4 kubeconfig not Configured.
        let mut code = 0;
        if text("Host") != "Running" {
            code |= 1;
        }
        if text("Kubelet") != "Running" || text("APIServer") != "Running" {
            code |= 2;
        }
        if text("Kubeconfig") != "Configured" {
            code |= 4;
        }
        let stdout = if json_out {
            // statusJSON: json.Marshal of the one node, no newline.
            node.to_string()
        } else {
            // defaultStatusFormat + statusText's warning for a misconfigured kubeconfig.
            let mut t =
                format!(
                "{}\ntype: Control Plane\nhost: {}\nkubelet: {}\napiserver: {}\nkubeconfig: {}\n\n",
                text("Name"), text("Host"), text("Kubelet"), text("APIServer"), text("Kubeconfig")
            );
            if text("Kubeconfig") == "Misconfigured" {
                t.push_str("\nWARNING: Your kubectl is pointing to stale minikube-vm.\nTo fix the kubectl context, run `minikube update-context`\n");
            }
            t
        };
        Reply {
            code,
            stdout,
            stderr: String::new(),
        }
    })
}

fn profile_list(a: &Parsed) -> Reply {
    // cmd/minikube/cmd/config/profile_list.go: `-o json` (default table).
    if a.get("--output").as_deref() != Some("json") {
        return Reply::err(
            14,
            "❌  Exiting due to MK_USAGE: the test double answers `profile list -o json` only\n",
        );
    }
    with_state(|s| {
        // printProfilesJSON: os.Stdout.Write(json.Marshal(body)), keys sorted, no newline.
        let mut v: Value =
            serde_json::from_str(&fixture("minikube/profile-list.v1.36.0.compact.json"))
                .unwrap_or_else(|e| panic!("profile-list fixture: {e}"));
        if s.str("cluster") == "missing" {
            return Reply::ok(r#"{"invalid":[],"valid":[]}"#);
        }
        let name = s.0["profile"].as_str().unwrap_or("todo").to_string();
        let runtime = s.str("runtime");
        if let Some(p) = v["valid"].get_mut(0) {
            p["Name"] = json!(name);
            // profileStatus: GetStatus failing (the driver does not answer) gives the state "Unknown" (520).
            p["Status"] = json!(match s.str("cluster").as_str() {
                "running" => "OK",
                "unreadable" => "Unknown",
                _ => "Stopped",
            });
            p["Config"]["Name"] = json!(name);
            p["Config"]["KubernetesConfig"]["ContainerRuntime"] = json!(runtime);
            p["Config"]["KubernetesConfig"]["ClusterName"] = json!(name);
            p["Config"]["Nodes"][0]["ContainerRuntime"] = json!(runtime);
        }
        Reply::ok(v.to_string())
    })
}
