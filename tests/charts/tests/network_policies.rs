//! The NetworkPolicies of both charts, rendered with helm 3 and helm 4 and parsed as typed objects, checked two
//! ways: each policy's podSelector and peer selectors select exactly the pods they are meant for (the labels
//! the charts really give those pods), and the whole set, evaluated like the API defines it (`netpol`), allows
//! exactly the intended connections between the release's pods, the cluster DNS, strangers and the internet.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use charts_tests::helm::{Helm, Values};
use charts_tests::manifest::Rendered;
use charts_tests::netpol::{self, Endpoint, NamedPort};
use charts_tests::{chart_dir, value_set, BACKEND_RELEASE, FRONTEND_RELEASE, NAMESPACE};
use k8s_openapi::api::networking::v1::NetworkPolicy;

/// The chart pods, by short name: (kind, object name, short name).
const CHART_PODS: [(&str, &str, &str); 5] = [
    ("Deployment", "todo-backend", "backend"),
    ("StatefulSet", "todo-backend-postgresql", "postgresql"),
    ("Pod", "todo-backend-test-health", "backend-test"),
    ("Deployment", "todo-frontend", "frontend"),
    ("Pod", "todo-frontend-test-health", "frontend-test"),
];

/// Where the internet is: an LLM or Neon-like host, and a second range for CIDR-restricted rules.
const INTERNET: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const NEON: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);

/// Both charts rendered into one namespace, plus the pods and hosts around them.
struct World {
    policies: Vec<NetworkPolicy>,
    endpoints: Vec<Endpoint>,
}

fn tcp(port: i32) -> NamedPort {
    NamedPort {
        name: None,
        port,
        protocol: "TCP".into(),
    }
}

fn world(helm: &Helm, backend: &Values, frontend: &Values) -> World {
    let b = helm.render(BACKEND_RELEASE, &chart_dir("backend"), backend);
    let f = helm.render(FRONTEND_RELEASE, &chart_dir("frontend"), frontend);
    let mut endpoints = Vec::new();
    let mut ip = 10;
    for r in [&b, &f] {
        for w in r.workloads() {
            let short = CHART_PODS
                .iter()
                .find(|(kind, name, _)| *kind == w.kind && *name == w.name)
                .map(|(_, _, short)| *short)
                .unwrap_or_else(|| panic!("{helm}: unexpected workload {} {}", w.kind, w.name));
            ip += 1;
            endpoints.push(Endpoint::of_workload(
                short,
                &w,
                NAMESPACE,
                Ipv4Addr::new(10, 244, 0, ip),
            ));
        }
    }
    let frontend_labels: Vec<(String, String)> = endpoints
        .iter()
        .find(|e| e.name == "frontend")
        .map(|e| e.labels.clone().into_iter().collect())
        .unwrap_or_default();
    let frontend_labels: Vec<(&str, &str)> = frontend_labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let dns = vec![
        NamedPort {
            name: Some("dns".into()),
            port: 53,
            protocol: "UDP".into(),
        },
        NamedPort {
            name: Some("dns-tcp".into()),
            port: 53,
            protocol: "TCP".into(),
        },
    ];
    endpoints.extend([
        Endpoint::pod(
            "kube-dns",
            "kube-system",
            &[("k8s-app", "kube-dns")],
            Ipv4Addr::new(10, 244, 0, 2),
            dns,
        ),
        // Some other workload of the namespace.
        Endpoint::pod(
            "stranger",
            NAMESPACE,
            &[("app", "other")],
            Ipv4Addr::new(10, 244, 0, 50),
            vec![tcp(8080)],
        ),
        // A pod of another namespace that copies the frontend's labels.
        Endpoint::pod(
            "impostor",
            "elsewhere",
            &frontend_labels,
            Ipv4Addr::new(10, 244, 1, 5),
            vec![tcp(3000)],
        ),
        Endpoint::external("internet", INTERNET),
        Endpoint::external("neon", NEON),
    ]);
    let policies = b
        .network_policies()
        .chain(f.network_policies())
        .cloned()
        .collect();
    World {
        policies,
        endpoints,
    }
}

/// Ports each destination is probed on.
fn probed_ports(e: &Endpoint) -> Vec<(i32, String)> {
    if e.namespace.is_none() {
        return [22, 80, 443, 5432, 6543, 11434]
            .into_iter()
            .map(|p| (p, "TCP".to_owned()))
            .collect();
    }
    let mut ports: Vec<(i32, String)> = e
        .ports
        .iter()
        .map(|p| (p.port, p.protocol.clone()))
        .collect();
    ports.push((9999, "TCP".into()));
    ports
}

type Flow = (&'static str, &'static str, i32, &'static str);

/// Checks every connection from or to a chart pod: allowed exactly when listed in `allowed`.
fn assert_connections(at: &str, w: &World, allowed: &[Flow]) {
    let chart: BTreeSet<&str> = CHART_PODS.iter().map(|(_, _, s)| *s).collect();
    let policies: Vec<&NetworkPolicy> = w.policies.iter().collect();
    let mut wrong = Vec::new();
    let mut allowed_seen = BTreeSet::new();
    for from in &w.endpoints {
        for to in &w.endpoints {
            let ours = chart.contains(from.name.as_str()) || chart.contains(to.name.as_str());
            if from.name == to.name || !ours {
                continue;
            }
            for (port, protocol) in probed_ports(to) {
                let got = netpol::allows(&policies, from, to, port, &protocol);
                let flow = allowed
                    .iter()
                    .find(|f| f.0 == from.name && f.1 == to.name && f.2 == port && f.3 == protocol);
                if let Some(f) = flow {
                    allowed_seen.insert(*f);
                }
                if got != flow.is_some() {
                    wrong.push(format!(
                        "{} -> {}:{port}/{protocol} is {}",
                        from.name,
                        to.name,
                        if got { "allowed" } else { "denied" }
                    ));
                }
            }
        }
    }
    let never_probed: Vec<&Flow> = allowed
        .iter()
        .filter(|f| !allowed_seen.contains(*f))
        .collect();
    assert!(
        never_probed.is_empty(),
        "{at}: expected flows between endpoints that do not exist: {never_probed:?}"
    );
    assert!(wrong.is_empty(), "{at}: {wrong:#?}");
}

/// What the issue asks for, with the bundled database and the default LLM endpoint (https, port 443).
fn intended(tests: bool, bundled: bool) -> Vec<Flow> {
    let mut flows: Vec<Flow> = vec![
        // The UI is the entry point: anyone may reach its port.
        ("stranger", "frontend", 3000, "TCP"),
        ("impostor", "frontend", 3000, "TCP"),
        ("internet", "frontend", 3000, "TCP"),
        ("neon", "frontend", 3000, "TCP"),
        ("kube-dns", "frontend", 3000, "TCP"),
        // The API: from the UI only; it reaches DNS, its database and the LLM.
        ("frontend", "backend", 8000, "TCP"),
        ("frontend", "kube-dns", 53, "UDP"),
        ("frontend", "kube-dns", 53, "TCP"),
        ("backend", "kube-dns", 53, "UDP"),
        ("backend", "kube-dns", 53, "TCP"),
        ("backend", "internet", 443, "TCP"),
        ("backend", "neon", 443, "TCP"),
    ];
    if bundled {
        flows.push(("backend", "postgresql", 5432, "TCP"));
    } else {
        flows.push(("backend", "internet", 5432, "TCP"));
        flows.push(("backend", "neon", 5432, "TCP"));
    }
    if tests {
        flows.extend([
            ("backend-test", "backend", 8000, "TCP"),
            ("backend-test", "kube-dns", 53, "UDP"),
            ("backend-test", "kube-dns", 53, "TCP"),
            ("frontend-test", "frontend", 3000, "TCP"),
            ("frontend-test", "kube-dns", 53, "UDP"),
            ("frontend-test", "kube-dns", 53, "TCP"),
        ]);
    }
    flows
}

fn policy<'a>(w: &'a World, name: &str) -> &'a NetworkPolicy {
    w.policies
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| {
            let names: Vec<_> = w.policies.iter().map(|p| p.metadata.name.clone()).collect();
            panic!("no NetworkPolicy {name}: {names:?}")
        })
}

/// Names of the endpoints any of `peers` selects (in the policy's namespace).
fn peer_set(
    w: &World,
    p: &NetworkPolicy,
    peers: &Option<Vec<k8s_openapi::api::networking::v1::NetworkPolicyPeer>>,
) -> Vec<String> {
    let mut names: Vec<String> = w
        .endpoints
        .iter()
        .filter(|e| {
            peers
                .iter()
                .flatten()
                .any(|peer| netpol::peer_matches(peer, NAMESPACE, e))
        })
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(
        p.metadata.namespace.as_deref(),
        Some(NAMESPACE),
        "{:?}",
        p.metadata.name
    );
    names.sort();
    names
}

#[test]
fn each_policy_selects_the_pods_it_is_meant_for_and_no_others() {
    for helm in Helm::all() {
        let w = world(&helm, &Values::tagged(), &Values::tagged());
        let mut names: Vec<_> = w
            .policies
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "todo-backend",
                "todo-backend-postgresql",
                "todo-backend-test",
                "todo-frontend",
                "todo-frontend-test"
            ],
            "{helm}"
        );
        for (name, pods) in [
            ("todo-backend", "backend"),
            ("todo-backend-postgresql", "postgresql"),
            ("todo-backend-test", "backend-test"),
            ("todo-frontend", "frontend"),
            ("todo-frontend-test", "frontend-test"),
        ] {
            let p = policy(&w, name);
            assert_eq!(
                netpol::selected(p, &w.endpoints),
                vec![pods],
                "{helm}: {name} podSelector"
            );
            let spec = p.spec.clone().unwrap_or_default();
            assert_eq!(
                spec.policy_types.clone().unwrap_or_default(),
                ["Ingress", "Egress"],
                "{helm}: {name} isolates both directions"
            );
        }
        let ingress_peers = |name: &str| -> Vec<Vec<String>> {
            let p = policy(&w, name);
            let spec = p.spec.clone().unwrap_or_default();
            spec.ingress
                .iter()
                .flatten()
                .map(|r| peer_set(&w, p, &r.from))
                .collect()
        };
        let egress_peers = |name: &str| -> Vec<Vec<String>> {
            let p = policy(&w, name);
            let spec = p.spec.clone().unwrap_or_default();
            spec.egress
                .iter()
                .flatten()
                .map(|r| peer_set(&w, p, &r.to))
                .collect()
        };
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ingress_peers("todo-backend"),
            [names(&["backend-test", "frontend"])],
            "{helm}: who may call the API"
        );
        assert_eq!(
            ingress_peers("todo-backend-postgresql"),
            [names(&["backend"])],
            "{helm}: who may reach PostgreSQL"
        );
        assert!(ingress_peers("todo-backend-test").is_empty(), "{helm}");
        assert!(ingress_peers("todo-frontend-test").is_empty(), "{helm}");
        // The UI rule names no peers: every source (ipBlock rules match only outside addresses).
        let ui = policy(&w, "todo-frontend").spec.clone().unwrap_or_default();
        assert_eq!(
            ui.ingress
                .iter()
                .flatten()
                .map(|r| r.from.is_none())
                .collect::<Vec<_>>(),
            [true],
            "{helm}: the UI port is open to all"
        );
        // DNS, the database pods, then the LLM: an ipBlock, which selects outside addresses only.
        assert_eq!(
            egress_peers("todo-backend"),
            [
                names(&["kube-dns"]),
                names(&["postgresql"]),
                names(&["internet", "neon"])
            ],
            "{helm}: where the API may connect"
        );
        assert!(egress_peers("todo-backend-postgresql").is_empty(), "{helm}");
        assert_eq!(
            egress_peers("todo-frontend"),
            [names(&["kube-dns"]), names(&["backend"])],
            "{helm}: where the UI may connect"
        );
        assert_eq!(
            egress_peers("todo-backend-test"),
            [names(&["kube-dns"]), names(&["backend"])],
            "{helm}"
        );
        assert_eq!(
            egress_peers("todo-frontend-test"),
            [names(&["kube-dns"]), names(&["frontend"])],
            "{helm}"
        );
    }
}

#[test]
fn the_policies_allow_exactly_the_intended_connections() {
    for helm in Helm::all() {
        for (label, backend, frontend, bundled) in [
            ("defaults", Values::tagged(), Values::tagged(), true),
            (
                "values-dev.yaml",
                Values::tagged().file(chart_dir("backend").join("values-dev.yaml")),
                Values::tagged().file(chart_dir("frontend").join("values-dev.yaml")),
                true,
            ),
            (
                "external database",
                Values::tagged().file(value_set("backend-external-db.yaml")),
                Values::tagged(),
                false,
            ),
            (
                "3 replicas",
                Values::tagged().file(value_set("backend-replicas-3.yaml")),
                Values::tagged().file(value_set("frontend-replicas-3.yaml")),
                true,
            ),
        ] {
            let w = world(&helm, &backend, &frontend);
            assert_connections(&format!("{helm} {label}"), &w, &intended(true, bundled));
        }
        let w = world(
            &helm,
            &Values::tagged().set("tests.enabled", "false"),
            &Values::tagged().set("tests.enabled", "false"),
        );
        assert!(
            !w.endpoints.iter().any(|e| e.name.ends_with("-test")),
            "{helm}"
        );
        assert_connections(&format!("{helm} no tests"), &w, &intended(false, true));
    }
}

#[test]
fn database_and_llm_egress_follow_their_urls_and_cidrs() {
    for helm in Helm::all() {
        let backend = Values::tagged()
            .set(
                "externalDatabase.url",
                "postgres://u:p@db.example:6543/todo",
            )
            .set("networkPolicy.externalDatabase.cidrs", "{198.51.100.0/24}")
            .set("config.openaiBaseUrl", "http://llm.example:11434/v1")
            .set("networkPolicy.llm.cidrs", "{203.0.113.10/32}");
        let w = world(&helm, &backend, &Values::tagged());
        let mut flows = intended(true, false);
        flows.retain(|f| f.0 != "backend" || (f.1 != "internet" && f.1 != "neon"));
        flows.push(("backend", "neon", 6543, "TCP"));
        flows.push(("backend", "internet", 11434, "TCP"));
        assert_connections(&format!("{helm} custom urls and cidrs"), &w, &flows);

        // The UI reaches the backend on the port of backendUrl.
        let w = world(
            &helm,
            &Values::tagged().set("service.port", "8080").set(
                "networkPolicy.frontend.podLabels.app\\.kubernetes\\.io/instance",
                "ui",
            ),
            &Values::tagged().set("backendUrl", "http://todo-backend:8080"),
        );
        let p = policy(&w, "todo-frontend");
        let ports: Vec<_> = p
            .spec
            .clone()
            .unwrap_or_default()
            .egress
            .unwrap_or_default()
            .iter()
            .flat_map(|r| r.ports.clone().unwrap_or_default())
            .filter_map(|p| p.port)
            .collect();
        assert!(
            ports.contains(&k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080)),
            "{helm}: {ports:?}"
        );
        // A frontend with other labels is no longer admitted to the API.
        let api = policy(&w, "todo-backend");
        let from = w
            .endpoints
            .iter()
            .find(|e| e.name == "frontend")
            .expect("frontend");
        let to = w
            .endpoints
            .iter()
            .find(|e| e.name == "backend")
            .expect("backend");
        assert!(!netpol::allows(&[api], from, to, 8080, "TCP"), "{helm}");
    }
}

#[test]
fn policies_can_be_turned_off_and_bad_selectors_are_refused() {
    for helm in Helm::all() {
        for (chart, release) in [("backend", BACKEND_RELEASE), ("frontend", FRONTEND_RELEASE)] {
            let r: Rendered = helm.render(
                release,
                &chart_dir(chart),
                &Values::tagged().set("networkPolicy.enabled", "false"),
            );
            assert_eq!(r.network_policies().count(), 0, "{helm} {chart}");
        }
        for (chart, release, key) in [
            (
                "backend",
                BACKEND_RELEASE,
                "networkPolicy.frontend.podLabels",
            ),
            (
                "frontend",
                FRONTEND_RELEASE,
                "networkPolicy.backend.podLabels",
            ),
        ] {
            let out = helm
                .template(
                    release,
                    &chart_dir(chart),
                    &Values::tagged().set(key, "null"),
                )
                .assert_failure();
            assert!(out.contains("podLabels"), "{helm} {chart}: {out}");
        }
        let out = helm
            .template(
                BACKEND_RELEASE,
                &chart_dir("backend"),
                &Values::tagged().set("networkPolicy.llm.cidrs", "{api.openai.com}"),
            )
            .assert_failure();
        assert!(out.contains("cidrs"), "{helm}: {out}");
    }
}
