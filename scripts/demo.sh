#!/bin/sh
# make demo: a one-minute tour of firesync on a private MariaDB and Google's Firestore emulator,
# both started here on free ports and always stopped at the end (Ctrl-C too).
#
#   1. seed three employees in Firestore, start the agent: they appear in MySQL
#   2. create one, update one field of another, delete a third: each shows in MySQL at once
#   3. push a simulated change through the agent (no Firestore write)
#   4. show the change history, `firesync status`, and stop the agent cleanly
set -eu
cd "$(dirname "$0")/.."
SVCCTL=build/asan/tests/harness/svcctl
FIRESYNC=./firesync
dir=$(mktemp -d /tmp/firesync-demo.XXXXXX)
agent=""

cleanup() {
    if [ -n "$agent" ]; then kill "$agent" 2>/dev/null || true; wait "$agent" 2>/dev/null || true; fi
    "$SVCCTL" down "$dir" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
sql() { mariadb -S "$mysql_socket" -uroot firesync_demo -e "$1"; }
rows() { sql "SELECT id, name, city, salary, active, deleted_at IS NOT NULL AS deleted FROM employees ORDER BY id"; }
doc() { # doc ID FIELDS_JSON
    curl -sS -o /dev/null -w '' -X PATCH -H 'Authorization: Bearer owner' \
        -H 'Content-Type: application/json' -d "{\"fields\":$2}" "$base/employees/$1"
}
emp() { # emp NAME CITY SALARY
    echo "{\"name\":{\"stringValue\":\"$1\"},\"address\":{\"mapValue\":{\"fields\":{\"city\":{\"stringValue\":\"$2\"}}}},\"salary\":{\"doubleValue\":$3},\"active\":{\"booleanValue\":true}}"
}
settle() { sleep 1; }

bold "starting a private MariaDB and the Firestore emulator"
"$SVCCTL" up "$dir"
. "$dir/env"
base="http://127.0.0.1:$emulator_port/v1/projects/$project/databases/(default)/documents"
mariadb -S "$mysql_socket" -uroot -e "CREATE DATABASE firesync_demo;
  CREATE USER 'firesync'@'localhost' IDENTIFIED BY 'demo-password';
  GRANT ALL ON firesync_demo.* TO 'firesync'@'localhost';"
printf 'demo-password\n' > "$dir/mysql-password"
chmod 600 "$dir/mysql-password"

cat > "$dir/config.toml" <<TOML
[firestore]
project_id = "$project"
emulator_host = "127.0.0.1:$emulator_port"

[mysql]
socket = "$mysql_socket"
user = "firesync"
password_file = "$dir/mysql-password"
database = "firesync_demo"

[agent]
status_file = "$dir/status.json"
control_socket = "$dir/control.sock"
status_interval = "500ms"

[[collections]]
path = "employees"
table = "employees"
history = true
[collections.columns]
name = { field = "name", type = "VARCHAR(200)" }
city = { field = "address.city", type = "VARCHAR(100)" }
salary = { field = "salary", type = "DECIMAL(12,2)" }
active = { field = "active", type = "BOOLEAN" }
TOML
echo "config: $dir/config.toml"

bold "1. three employees in Firestore, then the agent starts"
doc e1 "$(emp 'Ana Lima' Lisboa 5200.5)"
doc e2 "$(emp 'Bruno Costa' Porto 4100)"
doc e3 "$(emp 'Carla Dias' Faro 3900.25)"
"$FIRESYNC" run --config "$dir/config.toml" 2>"$dir/agent.log" &
agent=$!
i=0
until "$FIRESYNC" status --config "$dir/config.toml" >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 100 ] || { cat "$dir/agent.log"; exit 1; }; sleep 0.2
done
rows

bold "2a. create e4 in Firestore"
doc e4 "$(emp 'Duarte Reis' Braga 4700)"
settle; rows
bold "2b. update one field: e2 moves to Coimbra (only the city column is written)"
doc e2 "$(emp 'Bruno Costa' Coimbra 4100)"
settle; rows
bold "2c. delete e3 (a soft delete: the row stays, deleted_at is set)"
curl -sS -o /dev/null -X DELETE -H 'Authorization: Bearer owner' "$base/employees/e3"
settle; rows

bold "3. a simulated change, through the agent's own diff and sink (Firestore untouched)"
"$FIRESYNC" simulate-change --config "$dir/config.toml" --collection employees --doc e5 \
    --type CREATE --data '{"name":"Eva Simulada","address":{"city":"Aveiro"},"salary":1000,"active":false}'
settle; rows

bold "4. the change history (one row per applied change)"
sql "SELECT doc_key, op, source, JSON_KEYS(changed) AS columns FROM firesync_changes ORDER BY applied_at, doc_key"
bold "firesync status"
"$FIRESYNC" status --config "$dir/config.toml" || true

bold "stopping the agent (SIGTERM: commit, close the stream, exit 0)"
kill -TERM "$agent"
wait "$agent" && echo "agent exited with status 0"
agent=""
bold "done: services stopped, $dir removed"
