//! Output encodings the real tools use: kubectl `-o json` (sorted keys, 4-space indent, List wrapper).

use serde::Serialize;
use serde_json::{Map, Value};

/// A copy of `v` with object keys sorted (independent of serde_json's `preserve_order` feature).
pub fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), sorted(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// kubectl's JSON printer: sorted keys, 4-space indent, trailing newline.
pub fn kubectl_json(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    // Serialising a Value into a Vec cannot fail.
    let _ = sorted(v).serialize(&mut ser);
    let mut s = String::from_utf8_lossy(&buf).into_owned();
    s.push('\n');
    s
}

/// kubectl's wrapper when a get returns a list.
pub fn kube_list(items: Vec<Value>) -> Value {
    serde_json::json!({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_json_sorts_and_indents_by_four() {
        let v = serde_json::json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"}});
        assert_eq!(
            kubectl_json(&v),
            "{\n    \"apiVersion\": \"v1\",\n    \"kind\": \"Pod\",\n    \"metadata\": {\n        \"name\": \"p\"\n    }\n}\n"
        );
    }
}
