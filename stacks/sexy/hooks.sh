# Hooks of the sexy stack. kompose runs each one as bash sourcing this file and
# calling hook_<point> with its arguments; cwd = this directory; environment =
# root .env < sexy/.env, plus SCRIPT_DIR, stack and KOMPOSE_* variables.
#
# No password ever goes on a command line (where `ps` shows it): values reach the
# container through `docker exec -e NAME` (name only; docker copies the value from
# this process's environment), or we use the superuser over the container's local
# socket, which trusts local connections.

# The shared server's container, found by its compose labels (names may vary).
# DB_STACK (default data): the stack whose server answers to DB_HOST.
_sexy_db_container() {
    local cid
    cid=$(docker ps -q --filter "label=com.docker.compose.project=${DB_STACK:-data}" \
        --filter "label=com.docker.compose.service=postgres" | head -n 1)
    if [ -z "$cid" ]; then
        echo "the shared database is not running; start it first: kompose ${DB_STACK:-data} up -d" >&2
        return 1
    fi
    echo "$cid"
}

# Right after `up` the server may still be initialising; TCP answers only once
# the real server listens (the entrypoint's setup server is socket-only).
_sexy_wait_ready() {
    local i
    for i in $(seq 1 60); do
        docker exec "$1" pg_isready -q -h 127.0.0.1 -p "${DB_PORT:-5432}" && return 0
        sleep 1
    done
    echo "the shared database did not accept connections within 60 s" >&2
    return 1
}

_sexy_dry_run() {
    case "${KOMPOSE_DRY_RUN:-}" in 1 | true | yes) return 0 ;; *) return 1 ;; esac
}

# So a user can see the order in which hooks ran.
_sexy_log() {
    echo "$(date '+%Y-%m-%d %H:%M:%S') $*" >>hooks.log
}

# Make sure the app's role (LOGIN CREATEDB) and database (owned by it) exist in the
# shared server; safe to run on every `up`. The password is kept in step with .env.
hook_pre_up() {
    _sexy_log "hook_pre_up $*"
    if _sexy_dry_run; then
        echo "would ensure role $DB_USER and database $DB_NAME in the shared server"
        return 0
    fi
    local var cid
    for var in DB_USER DB_NAME DB_PASSWORD; do
        [ -n "${!var:-}" ] || { echo "$var is not set (sexy/.env)" >&2; return 1; }
    done
    cid=$(_sexy_db_container) && _sexy_wait_ready "$cid" || return 1
    # psql reads the names and the password with \getenv (psql 15+) and quotes
    # them itself (%I, %L): nothing is pasted into SQL text here.
    docker exec -i -e DB_USER -e DB_NAME -e DB_PASSWORD "$cid" \
        sh -c 'exec psql -X -q -v ON_ERROR_STOP=1 -U "${POSTGRES_USER:-postgres}" -d postgres' <<'SQL' || return 1
\getenv user DB_USER
\getenv db DB_NAME
\getenv password DB_PASSWORD
SELECT format('CREATE ROLE %I', :'user')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN CREATEDB PASSWORD %L', :'user', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'user') \gexec
SQL
    echo "role $DB_USER and database $DB_NAME are ready"
}

hook_post_up() {
    _sexy_log "hook_post_up $*"
}

# Snapshot the app's schema next to the dumps, so an import can be checked
# against the schema the app had when the dump was taken.
hook_pre_db_export() {
    local out
    out="schema/schema_$(date +%Y%m%d_%H%M%S).sql"
    if _sexy_dry_run; then
        echo "would write $out"
        return 0
    fi
    local cid
    cid=$(_sexy_db_container) || return 1
    mkdir -p schema || return 1
    # the app's own credentials; PGPASSWORD travels by name only
    if ! PGPASSWORD=$DB_PASSWORD docker exec -e PGPASSWORD "$cid" \
        pg_dump --schema-only -h 127.0.0.1 -p "${DB_PORT:-5432}" -U "$DB_USER" -d "$DB_NAME" >"$out.partial"; then
        rm -f "$out.partial"
        echo "schema snapshot failed" >&2
        return 1
    fi
    mv "$out.partial" "$out"
    echo "schema snapshot: $out"
}

# $1: the dump about to be imported.
hook_pre_db_import() {
    local snapshots newest
    snapshots=$(ls -1 schema/schema_*.sql 2>/dev/null | sort) # timestamps sort by name
    newest=${snapshots##*$'\n'}
    if [ -z "$newest" ]; then
        echo "no schema snapshot in $PWD/schema (db:export takes one)" >&2
        return 1
    fi
    echo "importing ${1:-the newest dump}; newest schema snapshot: $newest"
}

# $1: the dump just imported. The app holds connections to the swapped-out
# database; a restart makes it reconnect to the restored one.
hook_post_db_import() {
    if _sexy_dry_run; then
        echo "would restart the app"
        return 0
    fi
    docker compose restart app
}
