#!/bin/bash
# Entrypoint for kompose's registry-free MySQL image. Mirrors what stacks use of the official
# mysql image: MYSQL_ROOT_PASSWORD (or MYSQL_ALLOW_EMPTY_PASSWORD), MYSQL_DATABASE,
# MYSQL_USER / MYSQL_PASSWORD, data in /var/lib/mysql, port 3306. As in the official image,
# root@localhost and root@'%' both get the root password (caching_sha2_password, MySQL's
# default); the datadir is initialised once (mysqld --initialize-insecure, then the accounts
# are set through a socket-only server).
set -euo pipefail
DATADIR=/var/lib/mysql
ROOT_PASSWORD=${MYSQL_ROOT_PASSWORD:-}
DATABASE=${MYSQL_DATABASE:-}
USER_NAME=${MYSQL_USER:-}
USER_PASSWORD=${MYSQL_PASSWORD:-}

mkdir -p "$DATADIR" /run/mysqld /var/lib/mysql-files
chown -R mysql:mysql "$DATADIR" /run/mysqld /var/lib/mysql-files

# a quoted SQL string literal
sql_str() { local s=${1//\\/\\\\}; s=${s//\'/\\\'}; printf "'%s'" "$s"; }
sql_id() { local s=${1//\`/\`\`}; printf '`%s`' "$s"; }

if [ ! -d "$DATADIR/mysql" ]; then
    if [ -z "$ROOT_PASSWORD" ] && [ -z "${MYSQL_ALLOW_EMPTY_PASSWORD:-}" ]; then
        echo "mysql-entrypoint: MYSQL_ROOT_PASSWORD is not set" >&2
        exit 1
    fi
    mysqld --initialize-insecure --user=mysql --datadir="$DATADIR" >/dev/null 2>&1 \
        || { echo "mysql-entrypoint: mysqld --initialize-insecure failed" >&2; \
             mysqld --initialize-insecure --user=mysql --datadir="$DATADIR" >&2; exit 1; }
    mysqld --user=mysql --datadir="$DATADIR" --skip-networking --socket=/run/mysqld/init.sock \
        --mysqlx=OFF --log-error=/run/mysqld/init.err &
    pid=$!
    for _ in $(seq 1 600); do
        mysql --protocol=socket --socket=/run/mysqld/init.sock -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
        sleep 0.1
    done
    {
        echo "SET sql_log_bin=0;"
        if [ -n "$ROOT_PASSWORD" ]; then
            echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_str "$ROOT_PASSWORD");"
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
    } | mysql --protocol=socket --socket=/run/mysqld/init.sock -uroot
    kill "$pid"
    wait "$pid" || true
    echo "mysql-entrypoint: initialised $DATADIR"
fi

exec mysqld --user=mysql --datadir="$DATADIR" --bind-address=0.0.0.0 "$@"
