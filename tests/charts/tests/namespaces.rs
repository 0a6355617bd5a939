//! Every object both charts render (hooks and test Pods included) carries `metadata.namespace`, the release's
//! namespace, for every value set, with helm 3 and helm 4: `helm template | kubectl apply -f -` and GitOps
//! tools then put nothing into whatever namespace the current context happens to use.

use charts_tests::checks;
use charts_tests::helm::Helm;
use charts_tests::{chart_dir, value_sets, BACKEND_RELEASE, FRONTEND_RELEASE, NAMESPACE};

#[test]
fn every_object_names_the_release_namespace() {
    for helm in Helm::all() {
        for (chart, release) in [("backend", BACKEND_RELEASE), ("frontend", FRONTEND_RELEASE)] {
            for (label, values) in value_sets(chart) {
                // The contract namespace, and another one: the namespace follows the release, never a literal.
                for namespace in [NAMESPACE, "team-b"] {
                    let r = helm.render_in(namespace, release, &chart_dir(chart), &values);
                    let hooks = r
                        .objects
                        .iter()
                        .filter(|o| {
                            o.meta()
                                .1
                                .annotations
                                .as_ref()
                                .is_some_and(|a| a.contains_key("helm.sh/hook"))
                        })
                        .count();
                    assert!(
                        hooks > 0,
                        "{helm} {chart} {label}: the test hook is checked too"
                    );
                    checks::assert_namespaced(&r, namespace);
                }
            }
        }
    }
}
