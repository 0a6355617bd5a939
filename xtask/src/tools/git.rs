//! `git`: the revision of the sources (image labels) and the files it tracks (image content hashes).

use std::path::Path;

use xshell::{cmd, Shell};

use crate::process::Call;

/// `git rev-parse --short=12 HEAD`.
pub fn head(sh: &Shell, root: &Path) -> Call {
    let _dir = sh.push_dir(root);
    Call::query(cmd!(sh, "git rev-parse --short=12 HEAD"))
}

/// `git status --porcelain` (empty when the tree is clean).
pub fn status(sh: &Shell, root: &Path) -> Call {
    let _dir = sh.push_dir(root);
    Call::query(cmd!(sh, "git status --porcelain"))
}

/// `git ls-files -z --cached --others --exclude-standard -- DIR`: tracked and untracked files, ignored ones left
/// out, NUL-separated.
pub fn ls_files(sh: &Shell, root: &Path, dir: &Path) -> Call {
    let _dir = sh.push_dir(root);
    Call::query(cmd!(
        sh,
        "git ls-files -z --cached --others --exclude-standard -- {dir}"
    ))
}
