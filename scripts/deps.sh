#!/bin/sh
# Installs the Debian packages firesync needs to build, test and demo: only the missing ones.
# This list is the one place that names them.
set -eu

PACKAGES="
build-essential
pkg-config
clang
libclang-rt-14-dev
libcurl4-openssl-dev
libcjson-dev
libmariadb-dev
libuv1-dev
libssl-dev
libsystemd-dev
libcmocka-dev
mariadb-server
mariadb-client
systemd
default-jre-headless
curl
ca-certificates
"
EMULATOR=/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "firesync needs these Debian packages:$missing" >&2
        echo "run as root:  apt-get update && apt-get install -y$missing" >&2
        echo "(or: sudo make deps)" >&2
        exit 1
    fi
    echo "make deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -x "$EMULATOR" ]; then
    cat >&2 <<MSG
make deps: warning: Google's Cloud Firestore emulator is not installed ($EMULATOR).
  The integration tests and 'make demo' need it. It is the Debian package
  google-cloud-cli-firestore-emulator from Google's Cloud SDK apt repository:
    apt-get install google-cloud-cli-firestore-emulator
MSG
fi
exit 0
