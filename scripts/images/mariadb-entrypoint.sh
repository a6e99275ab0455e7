#!/bin/bash
# Entrypoint for kompose's registry-free MariaDB image. Mirrors what stacks use of the
# official mariadb image: MARIADB_ROOT_PASSWORD (or MYSQL_ROOT_PASSWORD), MARIADB_DATABASE,
# MARIADB_USER / MARIADB_PASSWORD (MYSQL_* accepted too), data in /var/lib/mysql, port 3306.
# root@localhost keeps unix-socket authentication (as in the official image, a password
# also works for it over TCP); the datadir is initialised once.
set -euo pipefail
DATADIR=/var/lib/mysql
ROOT_PASSWORD=${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}
DATABASE=${MARIADB_DATABASE:-${MYSQL_DATABASE:-}}
USER_NAME=${MARIADB_USER:-${MYSQL_USER:-}}
USER_PASSWORD=${MARIADB_PASSWORD:-${MYSQL_PASSWORD:-}}

mkdir -p "$DATADIR" /run/mysqld
chown -R mysql:mysql "$DATADIR" /run/mysqld

# a quoted SQL string literal
sql_str() { local s=${1//\\/\\\\}; s=${s//\'/\\\'}; printf "'%s'" "$s"; }
sql_id() { local s=${1//\`/\`\`}; printf '`%s`' "$s"; }

if [ ! -d "$DATADIR/mysql" ]; then
    if [ -z "$ROOT_PASSWORD" ] && [ -z "${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:-}" ]; then
        echo "mariadb-entrypoint: MARIADB_ROOT_PASSWORD is not set" >&2
        exit 1
    fi
    mariadb-install-db --user=mysql --datadir="$DATADIR" --skip-test-db \
        --auth-root-authentication-method=socket >/dev/null
    mariadbd --user=mysql --datadir="$DATADIR" --skip-networking --socket=/run/mysqld/init.sock &
    pid=$!
    for _ in $(seq 1 300); do
        mariadb --protocol=socket --socket=/run/mysqld/init.sock -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
        sleep 0.1
    done
    {
        echo "SET sql_log_bin=0;"
        if [ -n "$ROOT_PASSWORD" ]; then
            # unix socket for root inside the container, the password over TCP (as the official image)
            echo "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD($(sql_str "$ROOT_PASSWORD"));"
            echo "CREATE USER 'root'@'%' IDENTIFIED BY $(sql_str "$ROOT_PASSWORD");"
            echo "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;"
        fi
        if [ -n "$DATABASE" ]; then
            echo "CREATE DATABASE IF NOT EXISTS $(sql_id "$DATABASE") CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
        fi
        if [ -n "$USER_NAME" ] && [ -n "$USER_PASSWORD" ]; then
            echo "CREATE USER $(sql_str "$USER_NAME")@'%' IDENTIFIED BY $(sql_str "$USER_PASSWORD");"
            if [ -n "$DATABASE" ]; then
                echo "GRANT ALL PRIVILEGES ON $(sql_id "$DATABASE").* TO $(sql_str "$USER_NAME")@'%';"
            fi
        fi
        echo "FLUSH PRIVILEGES;"
    } | mariadb --protocol=socket --socket=/run/mysqld/init.sock -uroot
    kill "$pid"
    wait "$pid" || true
    echo "mariadb-entrypoint: initialised $DATADIR"
fi

exec mariadbd --user=mysql --datadir="$DATADIR" --bind-address=0.0.0.0 "$@"
