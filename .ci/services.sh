# Test services: a throwaway PostgreSQL server on 127.0.0.1 for the postgres plugin's tests.
#
# Source it (`. .ci/services.sh`): it exports ASSETFLOW_POSTGRES_DSN. Idempotent and fast
# when the server already runs. Installs Debian's `postgresql` package when no server
# binaries are present (needs root); if it cannot, it says why and exports nothing, and
# the PostgreSQL tests skip. Data lives in $ASSETFLOW_PG_DIR (default /tmp/assetflow-pg);
# the server listens on 127.0.0.1:$ASSETFLOW_PG_PORT only, and on a socket in that folder.
# The password is a fixed local test password: this server holds nothing but test data.

_assetflow_pg_setup() {
    local dir="${ASSETFLOW_PG_DIR:-/tmp/assetflow-pg}"
    local port="${ASSETFLOW_PG_PORT:-54329}"
    local password="assetflow-test"
    local bin
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    if [ -z "$bin" ] || [ ! -x "$bin/postgres" ]; then
        if [ "$(id -u)" != 0 ]; then
            echo "services: no PostgreSQL server installed and not root; PostgreSQL tests will skip" >&2
            return 0
        fi
        echo "services: installing PostgreSQL from Debian's packages" >&2
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null || {
            echo "services: apt-get install postgresql failed; PostgreSQL tests will skip" >&2
            return 0
        }
        bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    fi

    # initdb and postgres refuse to run as root: run them as the `postgres` user then.
    local -a as_owner=()
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        as_owner=(runuser -u postgres --)
    fi
    if [ ! -s "$dir/data/PG_VERSION" ]; then
        rm -rf "$dir" && mkdir -p "$dir" && chmod 700 "$dir"
        [ "$(id -u)" = 0 ] && chown postgres: "$dir"
        "${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C.UTF-8 \
            --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 || {
            echo "services: initdb failed, see $dir/initdb.log; PostgreSQL tests will skip" >&2
            return 0
        }
    fi
    if ! "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        # Test settings: durability off (a crash loses only test data), loopback only.
        "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o \
            "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            >/dev/null || {
            echo "services: PostgreSQL did not start, see $dir/server.log; PostgreSQL tests will skip" >&2
            return 0
        }
    fi
    local psql=("${as_owner[@]}" "$bin/psql" -X -q -h "$dir" -p "$port" -U postgres -v ON_ERROR_STOP=1)
    if [ "$("${psql[@]}" -tAc "select 1 from pg_roles where rolname = 'assetflow'")" != 1 ]; then
        "${psql[@]}" -c "create role assetflow login password '$password'" \
            -c "create database assetflow owner assetflow" >/dev/null
        # PostgreSQL 15+: let the benchmark issue CHECKPOINT between timed runs.
        "${psql[@]}" -c "do \$\$ begin if exists (select from pg_roles where rolname = 'pg_checkpoint')
            then grant pg_checkpoint to assetflow; end if; end \$\$" >/dev/null
    fi
    export ASSETFLOW_POSTGRES_DSN="postgresql://assetflow:$password@127.0.0.1:$port/assetflow"
    echo "services: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
}

_assetflow_pg_setup
unset -f _assetflow_pg_setup
