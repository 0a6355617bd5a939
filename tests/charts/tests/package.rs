//! `helm package` produces both charts, and the packaged chart renders exactly what the source renders
//! (nothing the templates need is dropped by .helmignore).

use charts_tests::helm::{Helm, Values};
use charts_tests::manifest::Rendered;
use charts_tests::{chart_dir, chart_version, BACKEND_RELEASE, FRONTEND_RELEASE};

#[test]
fn both_charts_package_and_the_packages_render_like_the_sources() {
    for helm in Helm::all() {
        let dest = tempfile::tempdir().expect("temp dir");
        for (chart, release) in [("backend", BACKEND_RELEASE), ("frontend", FRONTEND_RELEASE)] {
            let out = helm
                .package(&chart_dir(chart), dest.path())
                .assert_success();
            let archive = dest
                .path()
                .join(format!("{chart}-{}.tgz", chart_version(chart)));
            assert!(
                out.stdout.contains(&*archive.to_string_lossy()),
                "{helm}: package output: {}",
                out.stdout
            );
            let size = std::fs::metadata(&archive).map(|m| m.len()).unwrap_or(0);
            assert!(size > 1000, "{helm}: {} is {size} bytes", archive.display());

            let values = Values::tagged().set("tests.image", "busybox:1.36.1");
            let from_source = helm.render(release, &chart_dir(chart), &values);
            let from_package = helm.template(release, &archive, &values).assert_success();
            let from_package =
                Rendered::parse(&from_package.stdout).expect("packaged chart output parses");
            assert_eq!(
                from_source.inventory(),
                from_package.inventory(),
                "{helm}: {chart} package differs"
            );
        }
    }
}
