//! values.yaml shows every setting the schema accepts (so a user reading it sees every knob), and the schema
//! is strict at every level: any object that is not a free-form string map forbids unknown keys.

use charts_tests::chart_dir;
use serde_json::Value;

fn load(chart: &str) -> (Value, Value) {
    let dir = chart_dir(chart);
    let schema = std::fs::read_to_string(dir.join("values.schema.json")).expect("read schema");
    let values = std::fs::read_to_string(dir.join("values.yaml")).expect("read values.yaml");
    (
        serde_json::from_str(&schema).expect("schema is JSON"),
        serde_yaml::from_str(&values).expect("values.yaml is YAML"),
    )
}

fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => root
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {r}")),
        None => node,
    }
}

/// Walks the schema beside the values: reports schema properties missing from values.yaml (unless
/// `items_only`: an array item's schema, whose properties values.yaml need not show), and objects whose
/// schema lets unknown keys through.
fn walk(
    root: &Value,
    schema: &Value,
    values: Option<&Value>,
    path: &str,
    items_only: bool,
    problems: &mut Vec<String>,
) {
    let schema = resolve(root, schema);
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        if schema.get("type") == Some(&Value::from("object")) {
            let extra = schema.get("additionalProperties");
            let string_map = extra.and_then(|e| e.get("type")) == Some(&Value::from("string"));
            if !string_map && path != ".global" {
                problems.push(format!(
                    "{path}: object without properties or a string-map rule"
                ));
            }
        }
        return;
    };
    if schema.get("additionalProperties") != Some(&Value::Bool(false)) {
        problems.push(format!("{path}: additionalProperties is not false"));
    }
    for (key, sub) in props {
        let at = format!("{path}.{key}");
        let value = values.and_then(|v| v.get(key));
        if value.is_none() && at != ".global" && !items_only {
            problems.push(format!("{at}: in the schema but not in values.yaml"));
        }
        walk(root, sub, value, &at, items_only, problems);
    }
}

#[test]
fn values_yaml_shows_every_setting_and_the_schema_is_strict_everywhere() {
    for chart in ["backend", "frontend"] {
        let (schema, values) = load(chart);
        let mut problems = Vec::new();
        walk(&schema, &schema, Some(&values), "", false, &mut problems);
        for item in ["imagePullSecrets", "tolerations"] {
            let items = resolve(&schema, &schema["properties"][item])
                .get("items")
                .cloned()
                .unwrap_or_default();
            // The item schema must be strict at every level too: its problems count.
            walk(
                &schema,
                &items,
                None,
                &format!(".{item}[]"),
                true,
                &mut problems,
            );
            if items.get("additionalProperties") != Some(&Value::Bool(false)) {
                problems.push(format!(".{item}[]: additionalProperties is not false"));
            }
        }
        assert!(problems.is_empty(), "{chart}: {problems:#?}");
    }
}

/// The walk reports what is wrong inside an array's item schema (it did not: those problems were dropped).
#[test]
fn problems_inside_item_schemas_are_reported() {
    let schema = serde_json::json!({
        "type": "object", "additionalProperties": false,
        "properties": {"tolerations": {"type": "array", "items": {
            "type": "object", "additionalProperties": false,
            "properties": {"key": {"type": "string"}, "extra": {"type": "object", "properties": {"a": {"type": "string"}}}}
        }}}
    });
    let items = schema["properties"]["tolerations"]["items"].clone();
    let mut problems = Vec::new();
    walk(&schema, &items, None, ".tolerations[]", true, &mut problems);
    assert_eq!(
        problems,
        [".tolerations[].extra: additionalProperties is not false"]
    );
}
