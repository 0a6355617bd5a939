#!/usr/bin/env bash
# CI/test only: creates local stand-ins for the base images that the product's Dockerfiles name,
# because no container registry is reachable here (see shared/DESIGN.md, "Environment facts").
# The product's Dockerfiles stay exactly what a user builds; only the base images are local.
#
#   rust:<host rustc major.minor>-slim-bookworm   builder: Debian bookworm minbase + gcc/libc6-dev +
#                                                 the host's Rust toolchain + the host CA bundle
#   gcr.io/distroless/cc-debian12:nonroot          runtime: libc6 + libgcc-s1 + CA certificates +
#                                                 passwd/group with `nonroot` (no shell, no apt)
#   postgres:15-bookworm                           Debian's postgresql-15 with an entrypoint honouring
#                                                 POSTGRES_USER/PASSWORD/DB and PGDATA, runs as UID 999
#
# Idempotent: an image that exists is kept (FORCE=1 rebuilds). The debootstrap rootfs tarballs are
# cached in ${STANDIN_CACHE:-/var/cache/todo-ci/standin}, so a repeat run takes seconds.
# Needs root, debootstrap and a running Docker engine. Prints one line per image it made or kept.
set -euo pipefail

docker=${DOCKER:-/usr/bin/docker}
cache=${STANDIN_CACHE:-/var/cache/todo-ci/standin}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
toolchain=$(rustc --print sysroot)
rust_full=$(rustc --version | awk '{print $2}')
rust_minor=$(echo "$rust_full" | cut -d. -f1,2)

rust_image="rust:${rust_minor}-slim-bookworm"
runtime_image="gcr.io/distroless/cc-debian12:nonroot"
postgres_image="postgres:15-bookworm"
label='org.opencontainers.image.description="todo-ci stand-in base image, not the real one"'

mkdir -p "$cache/debs"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

have_image() { [ "${FORCE:-0}" != 1 ] && "$docker" image inspect "$1" >/dev/null 2>&1; }

# rootfs <name> <comma-separated extra packages>: path of a cached tarball of a bookworm minbase rootfs.
rootfs() {
  local name=$1 include=$2 tarball="$cache/rootfs-$1.tar"
  if [ ! -s "$tarball" ]; then
    local dir="$work/rootfs-$name"
    echo "debootstrap bookworm minbase + $include (cached afterwards in $tarball)" >&2
    debootstrap --variant=minbase --include="$include" --cache-dir="$cache/debs" \
      bookworm "$dir" "$mirror" >"$work/debootstrap-$name.log" 2>&1 ||
      { tail -n 30 "$work/debootstrap-$name.log" >&2; exit 1; }
    # Apt lists and caches are not part of what an image needs.
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
    tar --numeric-owner -C "$dir" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$dir"
  fi
  echo "$tarball"
}

make_rust() {
  if have_image "$rust_image"; then echo "kept  $rust_image"; return; fi
  local tarball dir="$work/rust"
  tarball=$(rootfs builder "gcc,libc6-dev,ca-certificates")
  mkdir -p "$dir"
  tar -C "$dir" -xf "$tarball"
  # The official image keeps the toolchain in RUSTUP_HOME and rustup proxies in CARGO_HOME/bin;
  # here the binaries are linked there directly (rustup itself cannot download anything here).
  local tc="/usr/local/rustup/toolchains/${rust_full}-x86_64-unknown-linux-gnu"
  mkdir -p "$dir$tc" "$dir/usr/local/cargo/bin"
  cp -a "$toolchain/bin" "$toolchain/lib" "$dir$tc/"
  for bin in "$dir$tc"/bin/*; do ln -sf "$tc/bin/$(basename "$bin")" "$dir/usr/local/cargo/bin/"; done
  chmod -R a+w "$dir/usr/local/cargo"
  # CI-only: the host CA bundle lets cargo inside the builder reach crates.io from this machine.
  cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
  tar --numeric-owner -C "$dir" -c . | "$docker" import \
    --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV RUST_VERSION=$rust_full" \
    --change "LABEL $label" \
    --change 'CMD ["bash"]' \
    - "$rust_image" >/dev/null
  rm -rf "$dir"
  echo "made  $rust_image"
}

# files_of <rootfs dir> <package>: the package's files and symlinks, with their directories resolved
# through the merged-/usr symlinks (/lib -> usr/lib), relative to the rootfs.
files_of() {
  local dir=$1 pkg=$2 list
  list="$dir/var/lib/dpkg/info/$pkg:amd64.list"
  [ -f "$list" ] || list="$dir/var/lib/dpkg/info/$pkg.list"
  while IFS= read -r path; do
    [ -e "$dir$path" ] || [ -L "$dir$path" ] || continue
    if [ -d "$dir$path" ] && [ ! -L "$dir$path" ]; then continue; fi
    case "$path" in /usr/share/doc/* | /usr/share/lintian/* | /usr/share/man/* | /usr/share/locale/*) continue ;; esac
    local parent
    parent=$(cd "$dir$(dirname "$path")" && pwd -P)
    echo "${parent#"$dir"/}/$(basename "$path")"
  done <"$list"
}

make_runtime() {
  if have_image "$runtime_image"; then echo "kept  $runtime_image"; return; fi
  local tarball src="$work/runtime-src" dir="$work/runtime"
  tarball=$(rootfs builder "gcc,libc6-dev,ca-certificates")
  mkdir -p "$src" "$dir"
  tar -C "$src" -xf "$tarball"
  {
    files_of "$src" libc6
    files_of "$src" libgcc-s1
    echo etc/ssl/certs/ca-certificates.crt
  } >"$work/runtime.files"
  tar --numeric-owner -C "$src" --no-recursion -cf - -T "$work/runtime.files" | tar -C "$dir" -xf -
  # Merged-/usr layout, as in Debian 12.
  for link in bin lib lib64 sbin; do [ -L "$src/$link" ] && cp -a "$src/$link" "$dir/$link"; done
  mkdir -p "$dir/etc" "$dir/tmp" "$dir/home/nonroot" "$dir/root"
  chmod 1777 "$dir/tmp"
  chown 65532:65532 "$dir/home/nonroot"
  cat >"$dir/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat >"$dir/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
  echo 'hosts: files dns' >"$dir/etc/nsswitch.conf"
  tar --numeric-owner -C "$dir" -c . | "$docker" import \
    --change 'USER 65532' \
    --change 'WORKDIR /home/nonroot' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change "LABEL $label" \
    - "$runtime_image" >/dev/null
  rm -rf "$src" "$dir"
  echo "made  $runtime_image"
}

make_postgres() {
  if have_image "$postgres_image"; then echo "kept  $postgres_image"; return; fi
  local tarball dir="$work/postgres"
  tarball=$(rootfs postgres "postgresql-15")
  mkdir -p "$dir"
  tar -C "$dir" -xf "$tarball"
  # The Debian package made a cluster in /var/lib/postgresql/15/main: the entrypoint makes its own.
  rm -rf "$dir"/var/lib/postgresql/15 "$dir"/etc/postgresql/15
  mkdir -p "$dir/var/run/postgresql" "$dir/var/lib/postgresql/data"
  chroot "$dir" chown -R postgres:postgres /var/run/postgresql /var/lib/postgresql
  chmod 2777 "$dir/var/run/postgresql"
  cat >"$dir/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# Stand-in for the official postgres image's entrypoint: initialises PGDATA on first start with
# POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, then runs the server in the foreground.
set -eu
export PATH="/usr/lib/postgresql/15/bin:$PATH"
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [ "${1:-postgres}" != postgres ]; then exec "$@"; fi
shift || true
mkdir -p "$PGDATA"
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "POSTGRES_PASSWORD must be set" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    postgres --single -D "$PGDATA" -j postgres <<SQL >/dev/null
CREATE DATABASE "$POSTGRES_DB" OWNER "$POSTGRES_USER";
SQL
  fi
  echo "database initialised in $PGDATA"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
EOF
  chmod 755 "$dir/usr/local/bin/docker-entrypoint.sh"
  local pg_uid
  pg_uid=$(chroot "$dir" id -u postgres)
  tar --numeric-owner -C "$dir" -c . | "$docker" import \
    --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV PG_MAJOR=15' \
    --change 'ENV PGDATA=/var/lib/postgresql/data' \
    --change "USER $pg_uid" \
    --change 'EXPOSE 5432' \
    --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
    --change 'CMD ["postgres"]' \
    --change "LABEL $label" \
    - "$postgres_image" >/dev/null
  rm -rf "$dir"
  echo "made  $postgres_image"
}

"$docker" info >/dev/null 2>&1 || { echo "no Docker engine answers on $docker" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
make_rust
make_runtime
make_postgres
"$docker" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' |
  grep -E "^(rust:${rust_minor}-slim-bookworm|gcr.io/distroless/cc-debian12:nonroot|postgres:15-bookworm) " |
  sed 's/^/image /'
