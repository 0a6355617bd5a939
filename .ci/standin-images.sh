#!/usr/bin/env bash
# CI/test only: creates local stand-ins for the base images that the product's Dockerfiles name,
# because no container registry is reachable here (see shared/DESIGN.md, "Environment facts").
# The product's Dockerfiles stay exactly what a user builds; only the base images are local.
#
#   rust:<host rustc major.minor>-slim-bookworm   builder: Debian bookworm minbase + gcc/libc6-dev +
#                                                 the host's Rust toolchain + the host CA bundle
#   gcr.io/distroless/cc-debian12:nonroot          runtime: libc6 + libgcc-s1 + CA certificates +
#                                                 passwd/group with `nonroot` (no shell, no apt)
#   postgres:15-bookworm                           Debian's postgresql-15 built like the official image
#                                                 (user 999, gosu, nss_wrapper), with its docker-entrypoint.sh
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

# The postgres stand-in follows the official image's recipe (docker-library/postgres, 16/bookworm/Dockerfile at
# commit c9906f922d, the 16.4 release the backend chart pins) with Debian's postgresql-15: the `postgres` user and
# group at 999, gosu to step down from root, libnss-wrapper (so the entrypoint can initialise under any --user
# UID), xz/zstd for compressed init files, listen_addresses='*' in the sample config, /docker-entrypoint-initdb.d,
# /var/run/postgresql 3777, PGDATA 1777, and the official docker-entrypoint.sh itself, verbatim (below). Its
# revision label makes a cached image of an older recipe be rebuilt.
postgres_revision="todo-ci.standin-revision=postgres-official-entrypoint-1"

# have_revision <image> <key=value>: the image exists and carries that label (FORCE=1: never).
have_revision() {
  [ "${FORCE:-0}" != 1 ] || return 1
  local key=${2%%=*} want=${2#*=} got
  got=$("$docker" image inspect --format "{{ index .Config.Labels \"$key\" }}" "$1" 2>/dev/null) || return 1
  [ "$got" = "$want" ]
}

make_postgres() {
  if have_revision "$postgres_image" "$postgres_revision"; then echo "kept  $postgres_image"; return; fi
  local tarball dir="$work/postgres" old_uid old_gid
  tarball=$(rootfs postgres-official "postgresql-15,libnss-wrapper,gosu,xz-utils,zstd")
  mkdir -p "$dir"
  tar -C "$dir" -xf "$tarball"
  # The Debian package made a cluster in /var/lib/postgresql/15/main: the entrypoint makes its own.
  rm -rf "$dir"/var/lib/postgresql/15 "$dir"/etc/postgresql/15
  # The official image's ids (groupadd -r postgres --gid=999; useradd -r -g postgres --uid=999).
  old_uid=$(chroot "$dir" id -u postgres)
  old_gid=$(chroot "$dir" id -g postgres)
  chroot "$dir" groupmod -g 999 postgres
  chroot "$dir" usermod -u 999 -g 999 postgres
  find "$dir" -xdev -uid "$old_uid" -exec chown -h 999 {} +
  find "$dir" -xdev -gid "$old_gid" -exec chgrp -h 999 {} +
  install -d -o 999 -g 999 -m 1777 "$dir/var/lib/postgresql"
  install -d -o 999 -g 999 -m 3777 "$dir/var/run/postgresql"
  install -d -o 999 -g 999 -m 1777 "$dir/var/lib/postgresql/data"
  mkdir -p "$dir/docker-entrypoint-initdb.d"
  local sample="$dir/usr/share/postgresql/15/postgresql.conf.sample"
  sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" "$sample"
  grep -qF "listen_addresses = '*'" "$sample"
  # Verbatim copy of docker-library/postgres 16/bookworm/docker-entrypoint.sh at commit c9906f922d (identical
  # to 15/bookworm's there). MIT License, Copyright (c) 2014, Docker PostgreSQL Authors.
  cat >"$dir/usr/local/bin/docker-entrypoint.sh" <<'OFFICIAL_ENTRYPOINT'
#!/usr/bin/env bash
set -Eeo pipefail
# TODO swap to -Eeuo pipefail above (after handling all potentially-unset variables)

# usage: file_env VAR [DEFAULT]
#    ie: file_env 'XYZ_DB_PASSWORD' 'example'
# (will allow for "$XYZ_DB_PASSWORD_FILE" to fill in the value of
#  "$XYZ_DB_PASSWORD" from a file, especially for Docker's secrets feature)
file_env() {
	local var="$1"
	local fileVar="${var}_FILE"
	local def="${2:-}"
	if [ "${!var:-}" ] && [ "${!fileVar:-}" ]; then
		printf >&2 'error: both %s and %s are set (but are exclusive)\n' "$var" "$fileVar"
		exit 1
	fi
	local val="$def"
	if [ "${!var:-}" ]; then
		val="${!var}"
	elif [ "${!fileVar:-}" ]; then
		val="$(< "${!fileVar}")"
	fi
	export "$var"="$val"
	unset "$fileVar"
}

# check to see if this file is being run or sourced from another script
_is_sourced() {
	# https://unix.stackexchange.com/a/215279
	[ "${#FUNCNAME[@]}" -ge 2 ] \
		&& [ "${FUNCNAME[0]}" = '_is_sourced' ] \
		&& [ "${FUNCNAME[1]}" = 'source' ]
}

# used to create initial postgres directories and if run as root, ensure ownership to the "postgres" user
docker_create_db_directories() {
	local user; user="$(id -u)"

	mkdir -p "$PGDATA"
	# ignore failure since there are cases where we can't chmod (and PostgreSQL might fail later anyhow - it's picky about permissions of this directory)
	chmod 00700 "$PGDATA" || :

	# ignore failure since it will be fine when using the image provided directory; see also https://github.com/docker-library/postgres/pull/289
	mkdir -p /var/run/postgresql || :
	chmod 03775 /var/run/postgresql || :

	# Create the transaction log directory before initdb is run so the directory is owned by the correct user
	if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
		mkdir -p "$POSTGRES_INITDB_WALDIR"
		if [ "$user" = '0' ]; then
			find "$POSTGRES_INITDB_WALDIR" \! -user postgres -exec chown postgres '{}' +
		fi
		chmod 700 "$POSTGRES_INITDB_WALDIR"
	fi

	# allow the container to be started with `--user`
	if [ "$user" = '0' ]; then
		find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
		find /var/run/postgresql \! -user postgres -exec chown postgres '{}' +
	fi
}

# initialize empty PGDATA directory with new database via 'initdb'
# arguments to `initdb` can be passed via POSTGRES_INITDB_ARGS or as arguments to this function
# `initdb` automatically creates the "postgres", "template0", and "template1" dbnames
# this is also where the database user is created, specified by `POSTGRES_USER` env
docker_init_database_dir() {
	# "initdb" is particular about the current user existing in "/etc/passwd", so we use "nss_wrapper" to fake that if necessary
	# see https://github.com/docker-library/postgres/pull/253, https://github.com/docker-library/postgres/issues/359, https://cwrap.org/nss_wrapper.html
	local uid; uid="$(id -u)"
	if ! getent passwd "$uid" &> /dev/null; then
		# see if we can find a suitable "libnss_wrapper.so" (https://salsa.debian.org/sssd-team/nss-wrapper/-/commit/b9925a653a54e24d09d9b498a2d913729f7abb15)
		local wrapper
		for wrapper in {/usr,}/lib{/*,}/libnss_wrapper.so; do
			if [ -s "$wrapper" ]; then
				NSS_WRAPPER_PASSWD="$(mktemp)"
				NSS_WRAPPER_GROUP="$(mktemp)"
				export LD_PRELOAD="$wrapper" NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
				local gid; gid="$(id -g)"
				printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$uid" "$gid" "$PGDATA" > "$NSS_WRAPPER_PASSWD"
				printf 'postgres:x:%s:\n' "$gid" > "$NSS_WRAPPER_GROUP"
				break
			fi
		done
	fi

	if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
		set -- --waldir "$POSTGRES_INITDB_WALDIR" "$@"
	fi

	# --pwfile refuses to handle a properly-empty file (hence the "\n"): https://github.com/docker-library/postgres/issues/1025
	eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"' "$@"'

	# unset/cleanup "nss_wrapper" bits
	if [[ "${LD_PRELOAD:-}" == */libnss_wrapper.so ]]; then
		rm -f "$NSS_WRAPPER_PASSWD" "$NSS_WRAPPER_GROUP"
		unset LD_PRELOAD NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
	fi
}

# print large warning if POSTGRES_PASSWORD is long
# error if both POSTGRES_PASSWORD is empty and POSTGRES_HOST_AUTH_METHOD is not 'trust'
# print large warning if POSTGRES_HOST_AUTH_METHOD is set to 'trust'
# assumes database is not set up, ie: [ -z "$DATABASE_ALREADY_EXISTS" ]
docker_verify_minimum_env() {
	case "${PG_MAJOR:-}" in
		12 | 13) # https://github.com/postgres/postgres/commit/67a472d71c98c3d2fa322a1b4013080b20720b98
			# check password first so we can output the warning before postgres
			# messes it up
			if [ "${#POSTGRES_PASSWORD}" -ge 100 ]; then
				cat >&2 <<-'EOWARN'

					WARNING: The supplied POSTGRES_PASSWORD is 100+ characters.

					  This will not work if used via PGPASSWORD with "psql".

					  https://www.postgresql.org/message-id/flat/E1Rqxp2-0004Qt-PL%40wrigleys.postgresql.org (BUG #6412)
					  https://github.com/docker-library/postgres/issues/507

				EOWARN
			fi
			;;
	esac
	if [ -z "$POSTGRES_PASSWORD" ] && [ 'trust' != "$POSTGRES_HOST_AUTH_METHOD" ]; then
		# The - option suppresses leading tabs but *not* spaces. :)
		cat >&2 <<-'EOE'
			Error: Database is uninitialized and superuser password is not specified.
			       You must specify POSTGRES_PASSWORD to a non-empty value for the
			       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

			       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
			       connections without a password. This is *not* recommended.

			       See PostgreSQL documentation about "trust":
			       https://www.postgresql.org/docs/current/auth-trust.html
		EOE
		exit 1
	fi
	if [ 'trust' = "$POSTGRES_HOST_AUTH_METHOD" ]; then
		cat >&2 <<-'EOWARN'
			********************************************************************************
			WARNING: POSTGRES_HOST_AUTH_METHOD has been set to "trust". This will allow
			         anyone with access to the Postgres port to access your database without
			         a password, even if POSTGRES_PASSWORD is set. See PostgreSQL
			         documentation about "trust":
			         https://www.postgresql.org/docs/current/auth-trust.html
			         In Docker's default configuration, this is effectively any other
			         container on the same system.

			         It is not recommended to use POSTGRES_HOST_AUTH_METHOD=trust. Replace
			         it with "-e POSTGRES_PASSWORD=password" instead to set a password in
			         "docker run".
			********************************************************************************
		EOWARN
	fi
}

# usage: docker_process_init_files [file [file [...]]]
#    ie: docker_process_init_files /always-initdb.d/*
# process initializer files, based on file extensions and permissions
docker_process_init_files() {
	# psql here for backwards compatibility "${psql[@]}"
	psql=( docker_process_sql )

	printf '\n'
	local f
	for f; do
		case "$f" in
			*.sh)
				# https://github.com/docker-library/postgres/issues/450#issuecomment-393167936
				# https://github.com/docker-library/postgres/pull/452
				if [ -x "$f" ]; then
					printf '%s: running %s\n' "$0" "$f"
					"$f"
				else
					printf '%s: sourcing %s\n' "$0" "$f"
					. "$f"
				fi
				;;
			*.sql)     printf '%s: running %s\n' "$0" "$f"; docker_process_sql -f "$f"; printf '\n' ;;
			*.sql.gz)  printf '%s: running %s\n' "$0" "$f"; gunzip -c "$f" | docker_process_sql; printf '\n' ;;
			*.sql.xz)  printf '%s: running %s\n' "$0" "$f"; xzcat "$f" | docker_process_sql; printf '\n' ;;
			*.sql.zst) printf '%s: running %s\n' "$0" "$f"; zstd -dc "$f" | docker_process_sql; printf '\n' ;;
			*)         printf '%s: ignoring %s\n' "$0" "$f" ;;
		esac
		printf '\n'
	done
}

# Execute sql script, passed via stdin (or -f flag of pqsl)
# usage: docker_process_sql [psql-cli-args]
#    ie: docker_process_sql --dbname=mydb <<<'INSERT ...'
#    ie: docker_process_sql -f my-file.sql
#    ie: docker_process_sql <my-file.sql
docker_process_sql() {
	local query_runner=( psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc )
	if [ -n "$POSTGRES_DB" ]; then
		query_runner+=( --dbname "$POSTGRES_DB" )
	fi

	PGHOST= PGHOSTADDR= "${query_runner[@]}" "$@"
}

# create initial database
# uses environment variables for input: POSTGRES_DB
docker_setup_db() {
	local dbAlreadyExists
	dbAlreadyExists="$(
		POSTGRES_DB= docker_process_sql --dbname postgres --set db="$POSTGRES_DB" --tuples-only <<-'EOSQL'
			SELECT 1 FROM pg_database WHERE datname = :'db' ;
		EOSQL
	)"
	if [ -z "$dbAlreadyExists" ]; then
		POSTGRES_DB= docker_process_sql --dbname postgres --set db="$POSTGRES_DB" <<-'EOSQL'
			CREATE DATABASE :"db" ;
		EOSQL
		printf '\n'
	fi
}

# Loads various settings that are used elsewhere in the script
# This should be called before any other functions
docker_setup_env() {
	file_env 'POSTGRES_PASSWORD'

	file_env 'POSTGRES_USER' 'postgres'
	file_env 'POSTGRES_DB' "$POSTGRES_USER"
	file_env 'POSTGRES_INITDB_ARGS'
	: "${POSTGRES_HOST_AUTH_METHOD:=}"

	declare -g DATABASE_ALREADY_EXISTS
	: "${DATABASE_ALREADY_EXISTS:=}"
	# look specifically for PG_VERSION, as it is expected in the DB dir
	if [ -s "$PGDATA/PG_VERSION" ]; then
		DATABASE_ALREADY_EXISTS='true'
	fi
}

# append POSTGRES_HOST_AUTH_METHOD to pg_hba.conf for "host" connections
# all arguments will be passed along as arguments to `postgres` for getting the value of 'password_encryption'
pg_setup_hba_conf() {
	# default authentication method is md5 on versions before 14
	# https://www.postgresql.org/about/news/postgresql-14-released-2318/
	if [ "$1" = 'postgres' ]; then
		shift
	fi
	local auth
	# check the default/configured encryption and use that as the auth method
	auth="$(postgres -C password_encryption "$@")"
	: "${POSTGRES_HOST_AUTH_METHOD:=$auth}"
	{
		printf '\n'
		if [ 'trust' = "$POSTGRES_HOST_AUTH_METHOD" ]; then
			printf '# warning trust is enabled for all connections\n'
			printf '# see https://www.postgresql.org/docs/12/auth-trust.html\n'
		fi
		printf 'host all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD"
	} >> "$PGDATA/pg_hba.conf"
}

# start socket-only postgresql server for setting up or running scripts
# all arguments will be passed along as arguments to `postgres` (via pg_ctl)
docker_temp_server_start() {
	if [ "$1" = 'postgres' ]; then
		shift
	fi

	# internal start of server in order to allow setup using psql client
	# does not listen on external TCP/IP and waits until start finishes
	set -- "$@" -c listen_addresses='' -p "${PGPORT:-5432}"

	PGUSER="${PGUSER:-$POSTGRES_USER}" \
	pg_ctl -D "$PGDATA" \
		-o "$(printf '%q ' "$@")" \
		-w start
}

# stop postgresql server after done setting up user and running scripts
docker_temp_server_stop() {
	PGUSER="${PGUSER:-postgres}" \
	pg_ctl -D "$PGDATA" -m fast -w stop
}

# check arguments for an option that would cause postgres to stop
# return true if there is one
_pg_want_help() {
	local arg
	for arg; do
		case "$arg" in
			# postgres --help | grep 'then exit'
			# leaving out -C on purpose since it always fails and is unhelpful:
			# postgres: could not access the server configuration file "/var/lib/postgresql/data/postgresql.conf": No such file or directory
			-'?'|--help|--describe-config|-V|--version)
				return 0
				;;
		esac
	done
	return 1
}

_main() {
	# if first arg looks like a flag, assume we want to run postgres server
	if [ "${1:0:1}" = '-' ]; then
		set -- postgres "$@"
	fi

	if [ "$1" = 'postgres' ] && ! _pg_want_help "$@"; then
		docker_setup_env
		# setup data directories and permissions (when run as root)
		docker_create_db_directories
		if [ "$(id -u)" = '0' ]; then
			# then restart script as postgres user
			exec gosu postgres "$BASH_SOURCE" "$@"
		fi

		# only run initialization on an empty data directory
		if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
			docker_verify_minimum_env

			# check dir permissions to reduce likelihood of half-initialized database
			ls /docker-entrypoint-initdb.d/ > /dev/null

			docker_init_database_dir
			pg_setup_hba_conf "$@"

			# PGPASSWORD is required for psql when authentication is required for 'local' connections via pg_hba.conf and is otherwise harmless
			# e.g. when '--auth=md5' or '--auth-local=md5' is used in POSTGRES_INITDB_ARGS
			export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
			docker_temp_server_start "$@"

			docker_setup_db
			docker_process_init_files /docker-entrypoint-initdb.d/*

			docker_temp_server_stop
			unset PGPASSWORD

			cat <<-'EOM'

				PostgreSQL init process complete; ready for start up.

			EOM
		else
			cat <<-'EOM'

				PostgreSQL Database directory appears to contain a database; Skipping initialization

			EOM
		fi
	fi

	exec "$@"
}

if ! _is_sourced; then
	_main "$@"
fi
OFFICIAL_ENTRYPOINT
  chmod 755 "$dir/usr/local/bin/docker-entrypoint.sh"
  # No USER: like the official image it starts as root and the entrypoint steps down to postgres with gosu;
  # under `--user <uid>` (as the chart runs it) it initialises as that UID.
  tar --numeric-owner -C "$dir" -c . | "$docker" import \
    --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV PG_MAJOR=15' \
    --change 'ENV PGDATA=/var/lib/postgresql/data' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'VOLUME /var/lib/postgresql/data' \
    --change 'EXPOSE 5432' \
    --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
    --change 'CMD ["postgres"]' \
    --change "LABEL $label" \
    --change "LABEL $postgres_revision" \
    - "$postgres_image-import" >/dev/null
  # `docker import` takes no STOPSIGNAL: one build step adds it (SIGINT, PostgreSQL's fast shutdown, as the
  # official image sets it). The classic builder uses the local image, nothing is pulled.
  printf 'FROM %s\nSTOPSIGNAL SIGINT\n' "$postgres_image-import" |
    DOCKER_BUILDKIT=0 "$docker" build -q -t "$postgres_image" - >/dev/null
  "$docker" rmi "$postgres_image-import" >/dev/null
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
