#!/usr/bin/env bash
# Idempotently set up a local PostgreSQL 15 + pgvector 0.8 test database for KyroDB
# on Debian bookworm (CI runs this as root).
#
#   1. install postgresql-15 if missing
#   2. build + install pgvector 0.8.x from Debian trixie's *source* package if missing
#      (bookworm ships no pgvector; only a deb-src entry is added, never trixie binaries)
#   3. start cluster "15 main" (create it if needed) and wait for pg_isready
#   4. create role kyro/kyro (LOGIN SUPERUSER), database kyro_test, extension vector
#   5. verify over TCP with password auth and print KYRO_TEST_DATABASE_URL
#
# Every action prints a "==> ..." line; steps already done are skipped, so a
# second run only performs a handful of cheap checks.
#
# Environment overrides:
#   PG_READY_TIMEOUT   seconds to wait for pg_isready (default 30)
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
# Connection settings from the caller's environment must not redirect our psql calls.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE PGSERVICE PGSERVICEFILE PGOPTIONS

PG_MAJOR=15
PG_CLUSTER=main
PG_PORT=5432
PG_BIN="/usr/lib/postgresql/${PG_MAJOR}/bin"
PG_CONFIG="${PG_BIN}/pg_config"
VECTOR_CONTROL="/usr/share/postgresql/${PG_MAJOR}/extension/vector.control"
VECTOR_SO="/usr/lib/postgresql/${PG_MAJOR}/lib/vector.so"
PGVECTOR_SERIES="0.8"
TRIXIE_SRC_LIST="/etc/apt/sources.list.d/kyrodb-trixie-src.sources"
ARCHIVE_KEYRING="/usr/share/keyrings/debian-archive-keyring.gpg"

DB_USER=kyro
DB_PASS=kyro
DB_NAME=kyro_test
DB_URL="postgres://${DB_USER}:${DB_PASS}@127.0.0.1:${PG_PORT}/${DB_NAME}"
ADMIN_URL="postgres://${DB_USER}:${DB_PASS}@127.0.0.1:${PG_PORT}/postgres"
READY_TIMEOUT="${PG_READY_TIMEOUT:-30}"

START_TS=$(date +%s)
APT_UPDATED=0
WORKDIR=""

say()  { printf '==> %s\n' "$*"; }
skip() { printf '==> %s (already done, skipping)\n' "$*"; }
die()  { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

cleanup() { if [[ -n "$WORKDIR" && -d "$WORKDIR" ]]; then rm -rf "$WORKDIR"; fi; }
trap cleanup EXIT

is_root() { [[ "$(id -u)" -eq 0 ]]; }

need_root() {
    is_root || die "$1 requires root, but this script is running as '$(id -un)'. Re-run it as root (e.g. 'sudo $0')."
}

apt_update_once() {
    if [[ "$APT_UPDATED" -eq 0 ]]; then
        say "apt-get update"
        apt-get update -q || return 1
        APT_UPDATED=1
    fi
}

apt_install() {
    apt_update_once
    say "apt-get install $*"
    apt-get install -y -q --no-install-recommends "$@"
}

pkg_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

# Install only the packages that are missing, so already installed ones are not
# upgraded as a side effect. Arguments may carry "=version".
apt_install_missing() {
    local pkg missing=()
    for pkg in "$@"; do
        pkg_installed "${pkg%%=*}" || missing+=("$pkg")
    done
    if (( ${#missing[@]} )); then
        apt_install "${missing[@]}"
    else
        skip "build dependencies ($*) are installed"
    fi
}

# postgresql-server-dev-15 pinned to the installed server's version when the
# mirror still has it, so installing the headers does not upgrade the server.
server_dev_pkg() {
    local pkg="postgresql-server-dev-${PG_MAJOR}" ver available
    ver=$(dpkg-query -W -f='${Version}' "postgresql-${PG_MAJOR}" 2>/dev/null || true)
    available=$(apt-cache madison "$pkg" 2>/dev/null | awk -F' *[|] *' '{print $2}' || true)
    if [[ -n "$ver" ]] && grep -qxF -- "$ver" <<<"$available"; then
        printf '%s=%s\n' "$pkg" "$ver"
    else
        printf '%s\n' "$pkg"
    fi
}

# The plain psql client, never reading ~/.psqlrc, quiet, unaligned, tuples only.
psql_url() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

# Superuser psql: as the postgres OS user (peer auth over the unix socket) when
# root; otherwise through the kyro superuser over TCP (only works once step 4 ran).
admin_psql() {
    if is_root; then
        (cd / && runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres "$@")
    else
        psql_url "$ADMIN_URL" "$@"
    fi
}

sql_quote() { printf "'%s'" "${1//\'/\'\'}"; }

# First URI of an enabled binary ("deb") source for the given suite, from deb822
# *.sources files or the one-line sources.list format. Falls back to deb.debian.org.
detect_debian_mirror() {
    local codename="$1" uri="" f
    shopt -s nullglob
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ "$f" == "$TRIXIE_SRC_LIST" ]] && continue
        uri=$(awk -v suite="$codename" '
            function flush() {
                if (types ~ /(^|[ \t])deb([ \t]|$)/ && (" " suites " ") ~ ("[ \t]" suite "[ \t]") \
                    && tolower(enabled) != "no" && uris != "" && !found) {
                    split(uris, u, /[ \t]+/); print u[1]; found = 1
                }
                types = ""; suites = ""; uris = ""; enabled = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            {
                line = $0
                key = tolower(line); sub(/:.*/, "", key); gsub(/[ \t]/, "", key)
                val = line; sub(/^[^:]*:[ \t]*/, "", val); sub(/[ \t]+$/, "", val)
                if (key == "types") types = val
                else if (key == "suites") suites = val
                else if (key == "uris") uris = val
                else if (key == "enabled") enabled = val
            }
            END { flush() }
        ' "$f")
        [[ -n "$uri" ]] && break
    done
    if [[ -z "$uri" ]]; then
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [[ -r "$f" ]] || continue
            uri=$(awk -v suite="$codename" '
                $1 == "deb" {
                    i = 2
                    if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                    if ($(i + 1) == suite) { print $i; exit }
                }' "$f")
            [[ -n "$uri" ]] && break
        done
    fi
    shopt -u nullglob
    case "$uri" in
        http://*|https://*|ftp://*|file:*|mirror*) printf '%s\n' "${uri%/}" ;;
        *) printf '%s\n' "http://deb.debian.org/debian" ;;
    esac
}

installed_vector_version() {
    [[ -f "$VECTOR_CONTROL" && -f "$VECTOR_SO" ]] || return 0
    sed -n "s/^[[:space:]]*default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" "$VECTOR_CONTROL" | head -n1
}

# --------------------------------------------------------------------------
# 1. PostgreSQL 15
# --------------------------------------------------------------------------
step_install_postgres() {
    if [[ -x "$PG_BIN/postgres" ]] && command -v pg_ctlcluster >/dev/null \
        && command -v psql >/dev/null && command -v pg_isready >/dev/null; then
        skip "PostgreSQL ${PG_MAJOR} is installed"
        return
    fi
    need_root "Installing postgresql-${PG_MAJOR}"
    apt_install "postgresql-${PG_MAJOR}" "postgresql-client-${PG_MAJOR}" postgresql-common
    [[ -x "$PG_BIN/postgres" ]] || die "postgresql-${PG_MAJOR} installed but $PG_BIN/postgres is missing"
}

# --------------------------------------------------------------------------
# 2. pgvector 0.8.x, built from Debian trixie's source package
# --------------------------------------------------------------------------
write_trixie_src_list() {
    local mirror="$1" content
    content="# Added by KyroDB scripts/setup-postgres.sh to build pgvector from Debian's
# source package. Source only (deb-src): no trixie binary packages can be
# installed from this entry.
Types: deb-src
URIs: ${mirror}
Suites: trixie
Components: main
Signed-By: ${ARCHIVE_KEYRING}
"
    if [[ -f "$TRIXIE_SRC_LIST" ]] && [[ "$(cat "$TRIXIE_SRC_LIST")"$'\n' == "$content" ]]; then
        skip "deb-src trixie entry $TRIXIE_SRC_LIST"
        return 1
    fi
    say "adding deb-src trixie main (${mirror}) as $TRIXIE_SRC_LIST"
    printf '%s' "$content" > "$TRIXIE_SRC_LIST"
    chmod 0644 "$TRIXIE_SRC_LIST"
    return 0
}

trixie_sources_indexed() {
    local versions
    versions=$(apt-cache showsrc pgvector 2>/dev/null | sed -n 's/^Version: //p')
    grep -q "^${PGVECTOR_SERIES//./\\.}\." <<<"$versions"
}

step_install_pgvector() {
    local have
    have=$(installed_vector_version)
    if [[ "$have" == ${PGVECTOR_SERIES}.* ]]; then
        skip "pgvector ${have} is installed for PostgreSQL ${PG_MAJOR}"
        return
    fi
    if [[ -n "$have" ]]; then
        say "pgvector ${have} found, but ${PGVECTOR_SERIES}.x is required: rebuilding"
    fi
    need_root "Building and installing pgvector"

    [[ -f "$ARCHIVE_KEYRING" ]] || apt_install debian-archive-keyring

    local mirror
    mirror=$(detect_debian_mirror bookworm)
    if write_trixie_src_list "$mirror" || ! trixie_sources_indexed; then
        APT_UPDATED=0   # the new deb-src entry must be fetched
        if ! apt_update_once; then
            # An outdated keyring may not know the keys trixie's Release is signed
            # with: bookworm's debian-archive-keyring (>= 2023.3+deb12u1) does.
            local kr_installed kr_candidate kr_upgraded=0
            kr_installed=$(dpkg-query -W -f='${Version}' debian-archive-keyring 2>/dev/null || true)
            kr_candidate=$(apt-cache policy debian-archive-keyring 2>/dev/null | awk '/Candidate:/ { print $2 }' || true)
            if [[ -n "$kr_candidate" && "$kr_candidate" != "(none)" && "$kr_candidate" != "$kr_installed" ]]; then
                say "apt-get update failed; upgrading debian-archive-keyring ${kr_installed:-none} -> ${kr_candidate} (bookworm) and retrying"
                apt-get install -y -q --no-install-recommends --only-upgrade debian-archive-keyring || true
                kr_upgraded=1
            fi
            if (( ! kr_upgraded )) || ! apt_update_once; then
                # Do not leave a source behind that breaks every later apt-get update.
                rm -f "$TRIXIE_SRC_LIST"
                die "apt-get update failed with the trixie deb-src entry (see the apt errors above; NO_PUBKEY means ${ARCHIVE_KEYRING} lacks the keys trixie is signed with); removed $TRIXIE_SRC_LIST again"
            fi
        fi
    fi
    trixie_sources_indexed \
        || die "no pgvector ${PGVECTOR_SERIES}.x source package found in trixie (apt-cache showsrc pgvector)"

    apt_install_missing "$(server_dev_pkg)" build-essential dpkg-dev xz-utils

    WORKDIR=$(mktemp -d /tmp/kyrodb-pgvector.XXXXXX)
    chmod 0755 "$WORKDIR"
    # Let apt download as its unprivileged _apt user instead of warning about it.
    if id _apt >/dev/null 2>&1; then chown _apt "$WORKDIR"; fi

    say "apt-get source pgvector/trixie (in $WORKDIR)"
    if ! (cd "$WORKDIR" && apt-get source -q pgvector/trixie); then
        # A stale trixie Sources index can point at files the mirror no longer has.
        APT_UPDATED=0
        apt_update_once
        say "retrying apt-get source pgvector/trixie"
        (cd "$WORKDIR" && apt-get source -q pgvector/trixie)
    fi

    local srcdir version
    srcdir=$(find "$WORKDIR" -mindepth 1 -maxdepth 1 -type d -name "pgvector-${PGVECTOR_SERIES}.*" | head -n1)
    [[ -n "$srcdir" ]] || die "apt-get source did not produce a pgvector-${PGVECTOR_SERIES}.* directory in $WORKDIR"
    version=${srcdir##*/pgvector-}

    # OPTFLAGS= : no -march=native, so the build is portable (same as Debian's packaging).
    say "building pgvector ${version} against $PG_CONFIG"
    make -C "$srcdir" -j"$(nproc)" PG_CONFIG="$PG_CONFIG" OPTFLAGS=
    say "installing pgvector ${version}"
    make -C "$srcdir" install PG_CONFIG="$PG_CONFIG" OPTFLAGS=

    have=$(installed_vector_version)
    [[ "$have" == ${PGVECTOR_SERIES}.* ]] \
        || die "pgvector install finished but $VECTOR_CONTROL/$VECTOR_SO do not report ${PGVECTOR_SERIES}.x (got '${have}')"
    rm -rf "$WORKDIR"; WORKDIR=""
}

# --------------------------------------------------------------------------
# 3. Cluster up
# --------------------------------------------------------------------------
cluster_field() { # $1 = column index of pg_lsclusters -h (3 = port, 4 = status)
    pg_lsclusters -h 2>/dev/null | awk -v v="$PG_MAJOR" -v c="$PG_CLUSTER" -v f="$1" '$1 == v && $2 == c { print $f }'
}

step_start_cluster() {
    local status port
    status=$(cluster_field 4)
    if [[ -z "$status" ]]; then
        need_root "Creating cluster ${PG_MAJOR}/${PG_CLUSTER}"
        say "creating and starting cluster ${PG_MAJOR}/${PG_CLUSTER} (port ${PG_PORT})"
        pg_createcluster "$PG_MAJOR" "$PG_CLUSTER" --port="$PG_PORT" --start
    else
        port=$(cluster_field 3)
        [[ "$port" == "$PG_PORT" ]] \
            || die "cluster ${PG_MAJOR}/${PG_CLUSTER} is configured for port ${port}, expected ${PG_PORT} (see /etc/postgresql/${PG_MAJOR}/${PG_CLUSTER}/postgresql.conf)"
        if [[ "$status" == online* ]]; then
            skip "cluster ${PG_MAJOR}/${PG_CLUSTER} is running"
        else
            need_root "Starting cluster ${PG_MAJOR}/${PG_CLUSTER}"
            say "starting cluster ${PG_MAJOR}/${PG_CLUSTER}"
            pg_ctlcluster "$PG_MAJOR" "$PG_CLUSTER" start
        fi
    fi

    local waited=0
    until pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; do
        if (( waited >= READY_TIMEOUT )); then
            pg_isready -h 127.0.0.1 -p "$PG_PORT" >&2 || true
            die "PostgreSQL did not accept connections on 127.0.0.1:${PG_PORT} within ${READY_TIMEOUT}s; check /var/log/postgresql/postgresql-${PG_MAJOR}-${PG_CLUSTER}.log"
        fi
        if (( waited == 0 )); then
            say "waiting for PostgreSQL on 127.0.0.1:${PG_PORT} (up to ${READY_TIMEOUT}s)"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    say "PostgreSQL is accepting connections on 127.0.0.1:${PG_PORT}"
}

# --------------------------------------------------------------------------
# 4. Role, database, extension, password auth over TCP
# --------------------------------------------------------------------------
url_login_ok() { psql_url "$1" -c 'SELECT 1' >/dev/null 2>&1; }

ensure_hba_rules() {
    local hba
    local marker="# Added by KyroDB scripts/setup-postgres.sh"
    # Called in a condition (set -e is off here): check every step explicitly.
    hba=$(admin_psql -c 'SHOW hba_file') || return 1
    [[ -f "$hba" ]] || return 1
    if grep -qxF -- "$marker" "$hba"; then
        return 1   # our rules are there already; something else is wrong
    fi
    say "adding scram-sha-256 rules for ${DB_USER} on 127.0.0.1/::1 at the top of ${hba} and reloading"
    local tmp
    tmp=$(mktemp) || return 1
    {
        echo "$marker"
        echo "host    all             ${DB_USER}            127.0.0.1/32            scram-sha-256"
        echo "host    all             ${DB_USER}            ::1/128                 scram-sha-256"
        cat "$hba"
    } > "$tmp" || { rm -f "$tmp"; return 1; }
    # cat > keeps the file's owner and mode
    cat "$tmp" > "$hba" || { rm -f "$tmp"; return 1; }
    rm -f "$tmp"
    admin_psql -c 'SELECT pg_reload_conf()' >/dev/null || return 1
    sleep 1
    return 0
}

step_database() {
    if ! is_root; then
        # Without root we can only verify (and fix what the kyro superuser can fix).
        url_login_ok "$ADMIN_URL" \
            || die "cannot log in as ${DB_USER} at ${ADMIN_URL}; creating the role requires root. Re-run as root (e.g. 'sudo $0')."
        [[ "$(psql_url "$ADMIN_URL" -c 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user')" == "t" ]] \
            || die "role ${DB_USER} is not SUPERUSER; fixing that requires root. Re-run as root (e.g. 'sudo $0')."
    fi

    local role_state
    role_state=$(admin_psql -c "SELECT rolsuper AND rolcanlogin FROM pg_roles WHERE rolname = $(sql_quote "$DB_USER")")
    case "$role_state" in
        t) skip "role ${DB_USER} (LOGIN SUPERUSER)" ;;
        f)
            say "granting LOGIN SUPERUSER to existing role ${DB_USER}"
            admin_psql -c "ALTER ROLE \"${DB_USER}\" LOGIN SUPERUSER" ;;
        *)
            say "creating role ${DB_USER} (LOGIN SUPERUSER)"
            admin_psql -c "SET password_encryption = 'scram-sha-256'" \
                -c "CREATE ROLE \"${DB_USER}\" LOGIN SUPERUSER PASSWORD $(sql_quote "$DB_PASS")" ;;
    esac

    local owner
    owner=$(admin_psql -c "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $(sql_quote "$DB_NAME")")
    if [[ -z "$owner" ]]; then
        say "creating database ${DB_NAME} owned by ${DB_USER}"
        admin_psql -c "CREATE DATABASE \"${DB_NAME}\" OWNER \"${DB_USER}\""
    elif [[ "$owner" != "$DB_USER" ]]; then
        say "changing owner of database ${DB_NAME} from ${owner} to ${DB_USER}"
        admin_psql -c "ALTER DATABASE \"${DB_NAME}\" OWNER TO \"${DB_USER}\""
    else
        skip "database ${DB_NAME} owned by ${DB_USER}"
    fi

    if url_login_ok "$DB_URL"; then
        say "password login over TCP works (${DB_URL})"
    else
        need_root "Fixing password authentication for ${DB_USER}"
        say "setting password for role ${DB_USER}"
        admin_psql -c "SET password_encryption = 'scram-sha-256'" \
            -c "ALTER ROLE \"${DB_USER}\" PASSWORD $(sql_quote "$DB_PASS")"
        if ! url_login_ok "$DB_URL"; then
            ensure_hba_rules || true
        fi
        if ! url_login_ok "$DB_URL"; then
            psql_url "$DB_URL" -c 'SELECT 1' >&2 || true
            die "password login to ${DB_URL} still fails; check $(admin_psql -c 'SHOW hba_file')"
        fi
        say "password login over TCP works"
    fi

    local ext_state
    ext_state=$(psql_url "$DB_URL" -F ' ' -c "SELECT coalesce(installed_version, '-'), default_version
                                                FROM pg_available_extensions WHERE name = 'vector'")
    [[ -n "$ext_state" ]] || die "the server does not see the vector extension (is $VECTOR_CONTROL present?)"
    local installed=${ext_state%% *} available=${ext_state##* }
    if [[ "$installed" == "-" ]]; then
        say "creating extension vector ${available} in ${DB_NAME}"
        psql_url "$DB_URL" -c 'CREATE EXTENSION IF NOT EXISTS vector'
    elif [[ "$installed" != "$available" ]]; then
        say "updating extension vector ${installed} -> ${available} in ${DB_NAME}"
        psql_url "$DB_URL" -c 'ALTER EXTENSION vector UPDATE'
    else
        skip "extension vector ${installed} in ${DB_NAME}"
    fi
}

# --------------------------------------------------------------------------
# 5. Verify
# --------------------------------------------------------------------------
step_verify() {
    local extversion
    extversion=$(psql_url "$DB_URL" -c "SELECT extversion FROM pg_extension WHERE extname = 'vector'") \
        || die "verification query against ${DB_URL} failed"
    [[ -n "$extversion" ]] || die "extension vector is not installed in ${DB_NAME}"
    say "verified via ${DB_URL}: vector extversion = ${extversion}"
    say "done in $(( $(date +%s) - START_TS ))s"
    echo "KYRO_TEST_DATABASE_URL=${DB_URL}"
}

step_install_postgres
step_install_pgvector
step_start_cluster
step_database
step_verify
