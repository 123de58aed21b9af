/*
 * svc.h - the real services the integration tests run against: a private MariaDB server and
 * Google's Cloud Firestore emulator, each on its own free port in one run directory.
 *
 * `svcctl up DIR` (used by tests/run.sh) starts both once per test run and writes DIR/env;
 * test binaries find them through FIRESYNC_TEST_DIR=DIR with svc_env_load(). Servers run in
 * their own process groups, their pids in DIR/NAME.pid, so `svcctl down DIR` (run from a trap,
 * on failure too) and tests that restart MariaDB can stop them from any process.
 *
 * Also here: small blocking helpers for tests only (SQL on a fresh connection, HTTP to the
 * emulator's REST API). The agent itself never blocks like this.
 */
#ifndef FIRESYNC_TEST_SVC_H
#define FIRESYNC_TEST_SVC_H

#include "common/buf.h"
#include "common/err.h"

#include <mysql.h>

#define SVC_EMULATOR_BIN                                                                           \
    "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator"
#define SVC_PROJECT "firesync-test"

struct svc_env {
    char dir[256];
    char mysql_socket[300];
    int mysql_port;
    int emulator_port;
    char project[64];
};

/* Starts MariaDB and the emulator in DIR (created if needed), in parallel, waits until both
 * answer, and writes DIR/env. On failure stops whatever it started. */
int svc_up(const char *dir, fserr *e);
/* Stops both services of DIR (SIGTERM, then SIGKILL after 10 s). Safe to call twice. */
void svc_down(const char *dir);

/* Reads FIRESYNC_TEST_DIR/env. */
int svc_env_load(struct svc_env *env, fserr *e);

/* A fresh MariaDB data directory in DIR/mysql-data (mariadb-install-db, its output in
 * DIR/mariadb-install.log, temporary files in DIR); nothing when it exists already. */
int svc_mariadb_install(const char *dir, fserr *e);
/* MariaDB alone, for tests that take it down under load. */
int svc_mariadb_stop(const struct svc_env *env, fserr *e);
int svc_mariadb_start(const struct svc_env *env, fserr *e);

/* A fresh root connection over the socket to `db` (NULL for none); caller mysql_close()s it. */
MYSQL *svc_mysql_connect(const struct svc_env *env, const char *db, fserr *e);
/* Runs one or more statements on a fresh connection, discarding results. */
int svc_mysql_exec(const struct svc_env *env, const char *sql, fserr *e);
/* First column of the first row of `sql` as text into out (cap 4 KiB); "" for NULL. */
int svc_mysql_scalar(const struct svc_env *env, const char *sql, char *out, size_t n, fserr *e);

/* A blocking HTTP request to the emulator (path starts with '/'); the reply body goes into
 * `out` (may be NULL), the status into *status. Sends "Authorization: Bearer owner". */
int svc_http(const struct svc_env *env, const char *method, const char *path, const char *body,
             buf *out, long *status, fserr *e);
/* Deletes every document of the test project in the emulator. */
int svc_emulator_clear(const struct svc_env *env, fserr *e);

#endif
