#!/bin/sh
# make demo: a guided tour on a private MariaDB and Google's Firestore emulator, both started
# here on free ports and always stopped at the end.
#
# What it shows today (the foundation): the configuration check, a real MySQL connection made
# from that configuration, and a document written to and read from the emulator. The live sync
# (firesync run) joins this tour when the agent lands.
set -eu
cd "$(dirname "$0")/.."
SVCCTL=build/asan/tests/harness/svcctl
dir=$(mktemp -d /tmp/firesync-demo.XXXXXX)
trap '"$SVCCTL" down "$dir" >/dev/null 2>&1; rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "starting a private MariaDB and the Firestore emulator in $dir"
"$SVCCTL" up "$dir"
. "$dir/env"
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

[[collections]]
path = "employees"
table = "employees"
[collections.columns]
name = { field = "name", type = "VARCHAR(200)" }
city = { field = "address.city", type = "VARCHAR(100)" }
TOML

step "firesync check-config --connect: the effective configuration, then a real MySQL login"
./firesync check-config --connect "$dir/config.toml"

step "a configuration with two mistakes: every one is reported with file:line:col"
printf '[firestore]\nproject_id = 42\n[mysql]\ndatabase = "d"\nprot = 3306\n' > "$dir/bad.toml"
./firesync check-config "$dir/bad.toml" || echo "(exit status $?)"

step "writing employees/e1 to the emulator through its REST API"
base="http://127.0.0.1:$emulator_port/v1/projects/$project/databases/(default)/documents"
curl -sS -X PATCH -H 'Authorization: Bearer owner' -H 'Content-Type: application/json' \
    -d '{"fields":{"name":{"stringValue":"Ana Lima"},"address":{"mapValue":{"fields":{"city":{"stringValue":"Lisboa"}}}}}}' \
    "$base/employees/e1"
step "reading it back"
curl -sS -H 'Authorization: Bearer owner' "$base/employees/e1"

step "done: services stopped"
