//! Both charts: pods keep serving for `config.shutdownDelaySeconds` after SIGTERM (the binaries'
//! SHUTDOWN_DELAY_SECS, since the distroless images cannot run an `exec` preStop hook), and the
//! grace period always covers that pause plus the drain. The backend's TRUSTED_PROXIES comes from
//! `config.trustedProxies`. With helm 3 and helm 4.

use charts_tests::checks::{self, EnvSource};
use charts_tests::helm::{Helm, Values};
use charts_tests::manifest::Rendered;
use charts_tests::{chart_dir, value_set, BACKEND_RELEASE, FRONTEND_RELEASE};

const CHARTS: [(&str, &str, &str); 2] = [
    ("backend", BACKEND_RELEASE, "backend"),
    ("frontend", FRONTEND_RELEASE, "frontend"),
];

fn render(helm: &Helm, chart: &str, release: &str, values: &Values) -> Rendered {
    helm.render(release, &chart_dir(chart), values)
}

fn grace_period(r: &Rendered, release: &str) -> Option<i64> {
    r.deployment(release)
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.termination_grace_period_seconds)
}

#[test]
fn the_shutdown_pause_is_configurable_and_the_grace_period_follows_it() {
    for helm in Helm::all() {
        for (chart, release, container) in CHARTS {
            for (delay, expected_grace) in [(None, 30), (Some("0"), 25), (Some("20"), 45)] {
                let values = match delay {
                    None => Values::tagged(),
                    Some(d) => Values::tagged().set("config.shutdownDelaySeconds", d),
                };
                let r = render(&helm, chart, release, &values);
                let c = r.container("Deployment", release, container);
                assert_eq!(
                    checks::env_source(&c, "SHUTDOWN_DELAY_SECS"),
                    EnvSource::ConfigMap {
                        name: release.into(),
                        key: "SHUTDOWN_DELAY_SECS".into()
                    },
                    "{helm} {chart}"
                );
                let config = r.config_map(release).data.clone().unwrap_or_default();
                assert_eq!(
                    config.get("SHUTDOWN_DELAY_SECS").map(String::as_str),
                    Some(delay.unwrap_or("5")),
                    "{helm} {chart}"
                );
                assert_eq!(
                    grace_period(&r, release),
                    Some(expected_grace),
                    "{helm} {chart} delay {delay:?}"
                );
                assert!(
                    c.lifecycle.is_none(),
                    "{helm} {chart}: no exec hook (the image has no shell)"
                );
            }
            let out = helm
                .template(
                    release,
                    &chart_dir(chart),
                    &Values::tagged().set("config.shutdownDelaySeconds", "121"),
                )
                .assert_failure();
            assert!(
                out.contains("shutdownDelaySeconds"),
                "{helm} {chart}: {out}"
            );
        }
    }
}

#[test]
fn the_backend_trusts_forwarded_for_only_from_the_configured_networks() {
    for helm in Helm::all() {
        let proxies = |values: Values| {
            let r = render(&helm, "backend", BACKEND_RELEASE, &values);
            r.config_map(BACKEND_RELEASE)
                .data
                .clone()
                .unwrap_or_default()
                .get("TRUSTED_PROXIES")
                .cloned()
        };
        assert_eq!(proxies(Values::tagged()).as_deref(), Some("10.244.0.0/16"));
        assert_eq!(
            proxies(Values::tagged().set("config.trustedProxies", "{10.0.0.0/8,fd00::/8}"))
                .as_deref(),
            Some("10.0.0.0/8,fd00::/8")
        );
        assert_eq!(
            proxies(Values::tagged().file(value_set("backend-no-trusted-proxies.yaml"))).as_deref(),
            Some("none"),
            "{helm}: no list, nobody trusted (not the binary's loopback default)"
        );
        let out = helm
            .template(
                BACKEND_RELEASE,
                &chart_dir("backend"),
                &Values::tagged().set("config.trustedProxies", "{frontend.todo.svc}"),
            )
            .assert_failure();
        assert!(out.contains("trustedProxies"), "{helm}: {out}");
    }
}
