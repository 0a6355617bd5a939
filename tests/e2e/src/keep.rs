//! `helm.sh/resource-policy: keep`, as helm honours it: an object so marked is not deleted when its release is
//! uninstalled (or an upgrade stops rendering it); it stays in the namespace with helm's ownership metadata, and a
//! later install of the same release adopts it, while an install of another release refuses it.

use crate::manifest;
use crate::state::Desired;
use anyhow::{bail, Result};
use serde_json::{json, Value};

const POLICY: &str = "/metadata/annotations/helm.sh~1resource-policy";

/// True when helm keeps `doc` on uninstall.
pub fn is_kept(doc: &Value) -> bool {
    doc.pointer(POLICY).and_then(Value::as_str) == Some("keep")
}

fn kind_name(doc: &Value) -> (String, String) {
    let s = |p: &str| {
        doc.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (s("/kind"), s("/metadata/name"))
}

/// The object as helm left it in the cluster: in its namespace, with the ownership metadata helm sets.
fn as_left(doc: &Value, release: &str, ns: &str) -> Value {
    let mut doc = doc.clone();
    if let Some(m) = doc.get_mut("metadata").and_then(Value::as_object_mut) {
        m.entry("namespace").or_insert_with(|| Value::from(ns));
        let labels = m.entry("labels").or_insert_with(|| json!({}));
        labels["app.kubernetes.io/managed-by"] = Value::from("Helm");
        let annotations = m.entry("annotations").or_insert_with(|| json!({}));
        annotations["meta.helm.sh/release-name"] = Value::from(release);
        annotations["meta.helm.sh/release-namespace"] = Value::from(ns);
    }
    doc
}

fn namespace_of(doc: &Value, default: &str) -> String {
    doc.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or(default)
        .to_string()
}

/// Records, as left in the cluster, the objects of `manifest` (release `release` in `ns`) that carry the keep
/// policy and are not in `still_rendered`. Returns their `[Kind] name` lines, as `helm uninstall` lists them.
pub fn leave_behind(
    d: &mut Desired,
    release: &str,
    ns: &str,
    manifest: &str,
    still_rendered: &[Value],
) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for doc in manifest::parse_docs(manifest)? {
        if !is_kept(&doc)
            || still_rendered
                .iter()
                .any(|r| kind_name(r) == kind_name(&doc))
        {
            continue;
        }
        let left = as_left(&doc, release, ns);
        let target = namespace_of(&left, ns);
        let list = d.kept.entry(target).or_default();
        list.retain(|k| kind_name(k) != kind_name(&left));
        let (kind, name) = kind_name(&left);
        lines.push(format!("[{kind}] {name}"));
        list.push(left);
    }
    Ok(lines)
}

/// Before release `release` is installed into `ns` with `rendered`: the kept objects it renders again become its own
/// (adopted) when their ownership metadata names it; one that names another release stops the install with helm's
/// error.
pub fn adopt(d: &mut Desired, release: &str, ns: &str, rendered: &[Value]) -> Result<()> {
    for doc in rendered {
        let target = namespace_of(doc, ns);
        let Some(list) = d.kept.get_mut(&target) else {
            continue;
        };
        let Some(at) = list.iter().position(|k| kind_name(k) == kind_name(doc)) else {
            continue;
        };
        let owner = list[at]
            .pointer("/metadata/annotations/meta.helm.sh~1release-name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if owner != release {
            let (kind, name) = kind_name(doc);
            bail!(
                "Unable to continue with install: {kind} \"{name}\" in namespace \"{target}\" exists and cannot be \
                 imported into the current release: invalid ownership metadata; annotation validation error: key \
                 \"meta.helm.sh/release-name\" must equal \"{release}\": current value is \"{owner}\""
            );
        }
        list.remove(at);
    }
    d.kept.retain(|_, list| !list.is_empty());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  annotations:\n    helm.sh/resource-policy: keep\ndata: {P: eA==}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n";

    #[test]
    fn kept_objects_stay_with_their_owner_and_only_it_adopts_them() {
        let mut d = Desired::default();
        let lines = leave_behind(&mut d, "rel", "ns", MANIFEST, &[]).unwrap();
        assert_eq!(lines, ["[Secret] db"]);
        let kept = &d.kept["ns"][0];
        assert_eq!(
            kept["metadata"]["annotations"]["meta.helm.sh/release-name"],
            "rel"
        );
        assert_eq!(
            kept["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "Helm"
        );
        let rendered = manifest::parse_docs(MANIFEST).unwrap();
        let err = adopt(&mut d.clone(), "other", "ns", &rendered).unwrap_err();
        assert!(err.to_string().contains("cannot be imported"), "{err}");
        adopt(&mut d, "rel", "ns", &rendered).unwrap();
        assert!(d.kept.is_empty());
        // An upgrade that still renders it keeps nothing aside.
        leave_behind(&mut d, "rel", "ns", MANIFEST, &rendered).unwrap();
        assert!(d.kept.is_empty());
    }
}
