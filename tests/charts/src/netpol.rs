//! Who may connect to whom under a set of NetworkPolicies, evaluated as the networking.k8s.io/v1 API defines it,
//! so the chart tests can check rendered policies as behaviour (a connection matrix) without a cluster:
//!
//! - a pod is isolated for ingress (egress) when a policy of its namespace selects it and has `Ingress` (`Egress`)
//!   in its `policyTypes` (default: `Ingress`, plus `Egress` when the policy has an `egress` section);
//! - a connection is allowed when the source's egress and the destination's ingress both allow it: not isolated,
//!   or some rule of a selecting policy matches the peer and the port (empty peers / ports match all; a named port
//!   is looked up on the destination's containers; `endPort` makes a range);
//! - a `podSelector` peer without `namespaceSelector` means pods of the policy's namespace;
//! - `ipBlock` peers match addresses outside the cluster only: whether they also match pod IPs differs between
//!   CNIs, so no check relies on it.
//!
//! Traffic from a pod's own node (kubelet probes) is always allowed in Kubernetes and is not modelled.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::manifest::Workload;

/// A named container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPort {
    /// Port name (`http`), if any.
    pub name: Option<String>,
    /// Number.
    pub port: i32,
    /// TCP, UDP or SCTP.
    pub protocol: String,
}

/// One end of a connection: a pod of the cluster, or an address outside it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Short name used in expectations and failure messages (`frontend`, `internet`).
    pub name: String,
    /// The pod's namespace; `None` for an address outside the cluster.
    pub namespace: Option<String>,
    /// Labels of the pod's namespace.
    pub namespace_labels: BTreeMap<String, String>,
    /// Labels of the pod.
    pub labels: BTreeMap<String, String>,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Its containers' ports.
    pub ports: Vec<NamedPort>,
}

impl Endpoint {
    /// A pod in `namespace` (whose only namespace label is `kubernetes.io/metadata.name`, as the API server sets it).
    pub fn pod(
        name: &str,
        namespace: &str,
        labels: &[(&str, &str)],
        ip: Ipv4Addr,
        ports: Vec<NamedPort>,
    ) -> Endpoint {
        Endpoint {
            name: name.to_owned(),
            namespace: Some(namespace.to_owned()),
            namespace_labels: [(
                "kubernetes.io/metadata.name".to_owned(),
                namespace.to_owned(),
            )]
            .into_iter()
            .collect(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ip,
            ports,
        }
    }

    /// The pods of a rendered workload, in `namespace`.
    pub fn of_workload(name: &str, w: &Workload, namespace: &str, ip: Ipv4Addr) -> Endpoint {
        let mut e = Endpoint::pod(name, namespace, &[], ip, Vec::new());
        e.labels = w.pod_labels.clone();
        e.ports = w
            .spec
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .map(|p| NamedPort {
                name: p.name.clone(),
                port: p.container_port,
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
            })
            .collect();
        e
    }

    /// An address outside the cluster.
    pub fn external(name: &str, ip: Ipv4Addr) -> Endpoint {
        Endpoint {
            name: name.to_owned(),
            namespace: None,
            namespace_labels: BTreeMap::new(),
            labels: BTreeMap::new(),
            ip,
            ports: Vec::new(),
        }
    }
}

/// True when `selector` selects `labels` (an empty selector selects everything).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => panic!("unknown label selector operator {other:?}"),
        }
    });
    by_labels && by_expressions
}

fn parse_cidr(cidr: &str) -> Option<(u32, u32)> {
    let (addr, bits) = cidr.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let bits: u32 = bits.parse().ok()?;
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX.checked_shl(32 - bits)?
    };
    Some((u32::from(addr) & mask, mask))
}

/// True when `ip` lies in the IPv4 `cidr` (an IPv6 CIDR never contains an IPv4 address).
pub fn cidr_contains(cidr: &str, ip: Ipv4Addr) -> bool {
    parse_cidr(cidr).is_some_and(|(net, mask)| u32::from(ip) & mask == net)
}

fn namespace_of(policy: &NetworkPolicy) -> &str {
    policy.metadata.namespace.as_deref().unwrap_or("default")
}

fn selects(policy: &NetworkPolicy, pod: &Endpoint) -> bool {
    let spec = policy.spec.clone().unwrap_or_default();
    pod.namespace.as_deref() == Some(namespace_of(policy))
        && selector_matches(&spec.pod_selector, &pod.labels)
}

fn policy_types(policy: &NetworkPolicy) -> Vec<String> {
    let spec = policy.spec.clone().unwrap_or_default();
    spec.policy_types.unwrap_or_else(|| {
        let mut types = vec!["Ingress".to_owned()];
        if spec.egress.is_some() {
            types.push("Egress".to_owned());
        }
        types
    })
}

/// True when `peer` (of a policy in `policy_namespace`) matches `other`.
pub fn peer_matches(peer: &NetworkPolicyPeer, policy_namespace: &str, other: &Endpoint) -> bool {
    if let Some(block) = &peer.ip_block {
        return other.namespace.is_none()
            && cidr_contains(&block.cidr, other.ip)
            && !block
                .except
                .iter()
                .flatten()
                .any(|e| cidr_contains(e, other.ip));
    }
    let Some(namespace) = other.namespace.as_deref() else {
        return false;
    };
    let namespace_ok = match &peer.namespace_selector {
        Some(selector) => selector_matches(selector, &other.namespace_labels),
        None => namespace == policy_namespace,
    };
    let pod_ok = peer
        .pod_selector
        .as_ref()
        .is_none_or(|selector| selector_matches(selector, &other.labels));
    namespace_ok && pod_ok
}

fn port_matches(
    rule: &NetworkPolicyPort,
    destination: &Endpoint,
    port: i32,
    protocol: &str,
) -> bool {
    if rule.protocol.as_deref().unwrap_or("TCP") != protocol {
        return false;
    }
    let first = match &rule.port {
        None => return true,
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(name)) => {
            match destination
                .ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name) && p.protocol == protocol)
            {
                Some(p) => p.port,
                None => return false,
            }
        }
    };
    let last = rule.end_port.unwrap_or(first);
    (first..=last).contains(&port)
}

fn rule_allows(
    peers: &Option<Vec<NetworkPolicyPeer>>,
    ports: &Option<Vec<NetworkPolicyPort>>,
    policy_namespace: &str,
    peer: &Endpoint,
    destination: &Endpoint,
    port: i32,
    protocol: &str,
) -> bool {
    let peer_ok = match peers.as_deref() {
        None | Some([]) => true,
        Some(list) => list.iter().any(|p| peer_matches(p, policy_namespace, peer)),
    };
    let port_ok = match ports.as_deref() {
        None | Some([]) => true,
        Some(list) => list
            .iter()
            .any(|p| port_matches(p, destination, port, protocol)),
    };
    peer_ok && port_ok
}

/// Whether `from` may open a connection to `to` on `port`/`protocol` under `policies`.
pub fn allows(
    policies: &[&NetworkPolicy],
    from: &Endpoint,
    to: &Endpoint,
    port: i32,
    protocol: &str,
) -> bool {
    let egress: Vec<&&NetworkPolicy> = policies
        .iter()
        .filter(|p| selects(p, from) && policy_types(p).iter().any(|t| t == "Egress"))
        .collect();
    let egress_ok = egress.is_empty()
        || egress.iter().any(|p| {
            let spec = p.spec.clone().unwrap_or_default();
            spec.egress.iter().flatten().any(|rule| {
                rule_allows(
                    &rule.to,
                    &rule.ports,
                    namespace_of(p),
                    to,
                    to,
                    port,
                    protocol,
                )
            })
        });
    let ingress: Vec<&&NetworkPolicy> = policies
        .iter()
        .filter(|p| selects(p, to) && policy_types(p).iter().any(|t| t == "Ingress"))
        .collect();
    let ingress_ok = ingress.is_empty()
        || ingress.iter().any(|p| {
            let spec = p.spec.clone().unwrap_or_default();
            spec.ingress.iter().flatten().any(|rule| {
                rule_allows(
                    &rule.from,
                    &rule.ports,
                    namespace_of(p),
                    from,
                    to,
                    port,
                    protocol,
                )
            })
        });
    egress_ok && ingress_ok
}

/// Names of the endpoints (pods) `policy` selects.
pub fn selected<'a>(policy: &NetworkPolicy, endpoints: &'a [Endpoint]) -> Vec<&'a str> {
    endpoints
        .iter()
        .filter(|e| selects(policy, e))
        .map(|e| e.name.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> NetworkPolicy {
        serde_yaml::from_str(yaml).expect("policy parses")
    }

    fn http(name: &str, labels: &[(&str, &str)], last: u8) -> Endpoint {
        Endpoint::pod(
            name,
            "app",
            labels,
            Ipv4Addr::new(10, 0, 0, last),
            vec![NamedPort {
                name: Some("http".into()),
                port: 8000,
                protocol: "TCP".into(),
            }],
        )
    }

    const API: &str = r#"
metadata: {name: api, namespace: app}
spec:
  podSelector: {matchLabels: {role: api}}
  policyTypes: [Ingress, Egress]
  ingress:
    - from: [{podSelector: {matchLabels: {role: web}}}]
      ports: [{port: http}]
  egress:
    - to: [{ipBlock: {cidr: 203.0.113.0/24, except: [203.0.113.128/25]}}]
      ports: [{port: 443}]
"#;

    #[test]
    fn ingress_follows_peer_selectors_and_named_ports() {
        let p = policy(API);
        let api = http("api", &[("role", "api")], 1);
        let web = http("web", &[("role", "web")], 2);
        let other = http("other", &[("role", "other")], 3);
        let mut elsewhere = http("elsewhere", &[("role", "web")], 4);
        elsewhere.namespace = Some("other-ns".into());
        let all = [&p];
        assert!(allows(&all, &web, &api, 8000, "TCP"));
        assert!(!allows(&all, &web, &api, 8001, "TCP"), "port");
        assert!(!allows(&all, &web, &api, 8000, "UDP"), "protocol");
        assert!(!allows(&all, &other, &api, 8000, "TCP"), "labels");
        assert!(
            !allows(&all, &elsewhere, &api, 8000, "TCP"),
            "a podSelector peer is same-namespace only"
        );
        // Unselected pods are not isolated; api is, for egress too.
        assert!(allows(&all, &other, &web, 9, "TCP"));
        assert!(!allows(&all, &api, &web, 8000, "TCP"));
        assert_eq!(selected(&p, &[api, web, other]), vec!["api"]);
    }

    #[test]
    fn egress_ip_blocks_honour_except_and_never_match_pods() {
        let p = policy(API);
        let all = [&p];
        let api = http("api", &[("role", "api")], 1);
        let inside = Endpoint::external("in", Ipv4Addr::new(203, 0, 113, 5));
        let excepted = Endpoint::external("except", Ipv4Addr::new(203, 0, 113, 200));
        let pod_in_range = Endpoint::pod("pod", "x", &[], Ipv4Addr::new(203, 0, 113, 6), vec![]);
        assert!(allows(&all, &api, &inside, 443, "TCP"));
        assert!(!allows(&all, &api, &inside, 80, "TCP"));
        assert!(!allows(&all, &api, &excepted, 443, "TCP"));
        assert!(!allows(&all, &api, &pod_in_range, 443, "TCP"));
    }

    #[test]
    fn namespace_selectors_expressions_defaults_and_deny_all() {
        let dns = policy(
            r#"
metadata: {name: dns, namespace: app}
spec:
  podSelector: {}
  egress:
    - to:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
          podSelector: {matchExpressions: [{key: k8s-app, operator: In, values: [kube-dns]}]}
      ports: [{port: 50, endPort: 60, protocol: UDP}]
"#,
        );
        assert_eq!(policy_types(&dns), vec!["Ingress", "Egress"]);
        let a = http("a", &[], 1);
        let b = http("b", &[], 2);
        let coredns = Endpoint::pod(
            "coredns",
            "kube-system",
            &[("k8s-app", "kube-dns")],
            Ipv4Addr::new(10, 0, 1, 1),
            vec![],
        );
        let fake = Endpoint::pod(
            "fake",
            "app",
            &[("k8s-app", "kube-dns")],
            Ipv4Addr::new(10, 0, 0, 9),
            vec![],
        );
        let all = [&dns];
        assert!(allows(&all, &a, &coredns, 53, "UDP"));
        assert!(!allows(&all, &a, &coredns, 53, "TCP"));
        assert!(!allows(&all, &a, &coredns, 61, "UDP"));
        assert!(!allows(&all, &a, &fake, 53, "UDP"), "namespace selector");
        assert!(
            !allows(&all, &a, &b, 8000, "TCP"),
            "ingress isolated with no ingress rules: deny all"
        );
    }

    #[test]
    fn cidrs() {
        assert!(cidr_contains("0.0.0.0/0", Ipv4Addr::new(8, 8, 8, 8)));
        assert!(cidr_contains("10.0.0.0/8", Ipv4Addr::new(10, 2, 3, 4)));
        assert!(!cidr_contains("10.0.0.0/8", Ipv4Addr::new(11, 0, 0, 1)));
        assert!(cidr_contains("192.0.2.7/32", Ipv4Addr::new(192, 0, 2, 7)));
        assert!(!cidr_contains("::/0", Ipv4Addr::new(192, 0, 2, 7)));
    }
}
