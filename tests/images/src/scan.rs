//! Looks for secrets in images: known secret shapes in text (history, config) and bytes (layers),
//! and exact values handed to containers at run time.

use std::path::Path;
use std::process::Command;

use testkit::docker;

/// Byte offsets of every occurrence of `needle` in `hay`.
fn find_all<'a>(hay: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let first = needle.first().copied();
    (0..hay.len().saturating_sub(needle.len()).saturating_add(1)).filter(move |&i| {
        Some(hay[i]) == first && !needle.is_empty() && hay[i..].starts_with(needle)
    })
}

/// True when `hay` contains `needle`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find_all(hay, needle).next().is_some()
}

fn run_len(bytes: &[u8], ok: impl Fn(u8) -> bool) -> usize {
    bytes.iter().take_while(|b| ok(**b)).count()
}

/// Known secret shapes found in `bytes` (binary-safe): PEM private keys, OpenAI-style keys,
/// AWS access key ids, GitHub tokens. Returns a short description of each hit.
pub fn secret_shapes(bytes: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for at in find_all(bytes, b"PRIVATE KEY-----") {
        let before = &bytes[at.saturating_sub(30)..at];
        let after = &bytes[at + 16..];
        let body = after.strip_prefix(b"\n").unwrap_or(after);
        let base64 = run_len(body, |b| {
            b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
        });
        if contains(before, b"-----BEGIN") && base64 >= 40 {
            hits.push(format!("PEM private key block at byte {at}"));
        }
    }
    let token = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    for at in find_all(bytes, b"sk-") {
        if run_len(&bytes[at + 3..], token) >= 32 && (at == 0 || !token(bytes[at - 1])) {
            hits.push(format!("OpenAI-style key at byte {at}"));
        }
    }
    for at in find_all(bytes, b"AKIA") {
        let n = run_len(&bytes[at + 4..], |b| {
            b.is_ascii_uppercase() || b.is_ascii_digit()
        });
        if n == 16 {
            hits.push(format!("AWS access key id at byte {at}"));
        }
    }
    for at in find_all(bytes, b"ghp_") {
        if run_len(&bytes[at + 4..], |b| b.is_ascii_alphanumeric()) >= 36 {
            hits.push(format!("GitHub token at byte {at}"));
        }
    }
    hits
}

/// Secret shapes in text meant for humans or config (history, labels, env): the byte shapes plus
/// database URLs with a password and `*PASSWORD*=`, `*SECRET*=`, `*TOKEN*=`, `*API_KEY*=` settings.
pub fn secret_shapes_in_text(text: &str) -> Vec<String> {
    let mut hits = secret_shapes(text.as_bytes());
    for scheme in ["postgres://", "postgresql://", "mysql://", "redis://"] {
        for (at, _) in text.match_indices(scheme) {
            let rest = &text[at + scheme.len()..];
            let authority = rest.split(['/', ' ', '"', '\n']).next().unwrap_or("");
            if let Some((userinfo, _)) = authority.rsplit_once('@') {
                if userinfo.contains(':') {
                    hits.push(format!("{scheme} URL with a password"));
                }
            }
        }
    }
    for word in
        text.split(|c: char| c.is_whitespace() || c == '"' || c == ',' || c == '[' || c == ']')
    {
        if let Some((name, value)) = word.split_once('=') {
            let upper = name.to_ascii_uppercase();
            let secret_name = ["PASSWORD", "SECRET", "TOKEN", "API_KEY", "APIKEY"]
                .iter()
                .any(|s| upper.contains(s));
            if secret_name && !value.is_empty() && !value.starts_with('$') {
                hits.push(format!("setting {name}=<value>"));
            }
        }
    }
    hits
}

/// What `docker save` of an image holds.
pub struct ImageScan {
    /// Paths of every file in every layer.
    pub files: Vec<String>,
    /// Secret shapes or run-time secret values found in the layers or the image JSON.
    pub hits: Vec<String>,
    /// Number of layers scanned.
    pub layers: usize,
}

/// Saves `image`, lists every layer's files and scans every byte of the archive (layers, config,
/// manifest) for secret shapes and for each of `values`.
pub fn scan_image(image: &str, values: &[&str]) -> Result<ImageScan, String> {
    let dir = tempfile::Builder::new()
        .prefix("todo-image-scan-")
        .tempdir()
        .map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let archive = dir.path().join("image.tar");
    let archive_arg = archive.to_string_lossy().into_owned();
    docker::run(&["save", "-o", &archive_arg, image])?;
    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir_all(&unpacked)
        .map_err(|e| format!("cannot create {}: {e}", unpacked.display()))?;
    tar(&["-xf", &archive_arg, "-C", &unpacked.to_string_lossy()])?;
    let mut scan = ImageScan {
        files: Vec::new(),
        hits: Vec::new(),
        layers: 0,
    };
    scan_dir(&unpacked, values, &mut scan)?;
    Ok(scan)
}

fn scan_dir(dir: &Path, values: &[&str], scan: &mut ImageScan) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
            .path();
        if path.is_dir() {
            scan_dir(&path, values, scan)?;
            continue;
        }
        let bytes =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == "layer.tar" {
            scan.layers += 1;
            let listing = tar(&["-tf", &path.to_string_lossy()])?;
            scan.files.extend(listing.lines().map(str::to_string));
        }
        for hit in secret_shapes(&bytes) {
            scan.hits.push(format!("{}: {hit}", path.display()));
        }
        for value in values {
            if contains(&bytes, value.as_bytes()) {
                scan.hits
                    .push(format!("{}: a run-time secret value", path.display()));
            }
        }
    }
    Ok(())
}

fn tar(args: &[&str]) -> Result<String, String> {
    let out = Command::new("tar")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "tar {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_shapes_it_claims_to_find() {
        let key = format!("-----BEGIN RSA PRIVATE KEY-----\n{}\n", "A".repeat(64));
        assert_eq!(secret_shapes(key.as_bytes()).len(), 1);
        assert_eq!(
            secret_shapes(format!("x sk-proj-{}", "a1".repeat(20)).as_bytes()).len(),
            1
        );
        assert_eq!(secret_shapes(b"AKIAABCDEFGHIJKLMNOP ").len(), 1);
        assert_eq!(
            secret_shapes(format!("ghp_{}", "x".repeat(36)).as_bytes()).len(),
            1
        );
        assert_eq!(
            secret_shapes_in_text("DATABASE_URL=postgres://u:pw@db/x").len(),
            1
        );
        assert_eq!(secret_shapes_in_text("ENV AUTH_SECRET=abc").len(), 1);
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        assert!(secret_shapes(b"-----BEGIN CERTIFICATE-----\nMIIB").is_empty());
        assert!(secret_shapes(b"task-sk-1 AKIA short").is_empty());
        assert!(
            secret_shapes_in_text("PORT=8000 PATH=/usr/bin postgres://db:5432/x SECRET=")
                .is_empty()
        );
    }
}
