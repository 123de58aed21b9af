/*
 * config.h - firesync's configuration: the TOML file read into one struct (prefix cfg_).
 *
 * cfg_load_*() parses into a fresh `struct cfg`, checks every key (unknown keys and wrong types
 * are errors: a typo must not be silently ignored) and reports every mistake of the file at once
 * as "file:line:col: message" lines. The running agent swaps a new config in only when it loaded
 * cleanly (SIGHUP), so a bad edit never takes effect half-way.
 *
 * Environment conventions: FIRESTORE_EMULATOR_HOST and GOOGLE_APPLICATION_CREDENTIALS apply when
 * the file sets neither firestore.emulator_host nor firestore.credentials_file.
 *
 * Ownership: a `struct cfg` owns every string in it; cfg_free() releases it (NULL is fine).
 * Durations are milliseconds.
 */
#ifndef FIRESYNC_CONFIG_H
#define FIRESYNC_CONFIG_H

#include "common/buf.h"
#include "common/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_DEFAULT_PATH "/etc/firesync/config.toml"

enum cfg_tls_mode {
    CFG_TLS_DISABLED,
    CFG_TLS_PREFERRED,       /* TLS if the server offers it, unverified (libmysqlclient default) */
    CFG_TLS_REQUIRED,        /* TLS or fail, server certificate not verified */
    CFG_TLS_VERIFY_CA,       /* TLS, certificate must chain to `ca` */
    CFG_TLS_VERIFY_IDENTITY, /* as VERIFY_CA and the host name must match */
};

enum cfg_coltype {
    CFG_COL_VARCHAR, /* len */
    CFG_COL_TEXT,
    CFG_COL_BIGINT,
    CFG_COL_INT,
    CFG_COL_DOUBLE,
    CFG_COL_DECIMAL, /* len = precision, scale */
    CFG_COL_BOOLEAN,
    CFG_COL_DATETIME, /* DATETIME(6) */
    CFG_COL_DATE,
    CFG_COL_JSON,
    CFG_COL_VARBINARY, /* len */
};

enum cfg_key { CFG_KEY_ID, CFG_KEY_PATH };

struct cfg_firestore {
    char *project_id;
    char *database;         /* "(default)" unless set */
    char *emulator_host;    /* "host:port", NULL for production */
    char *credentials_file; /* service-account key; NULL: metadata server (or emulator) */
    char *endpoint;         /* base URL, "https://firestore.googleapis.com" by default */
    int64_t request_timeout_ms;
};

struct cfg_mysql {
    char *host; /* NULL or "localhost" with `socket` means the unix socket */
    int port;
    char *socket;
    char *user;
    char *password;      /* inline password (discouraged; redacted everywhere) */
    char *password_file; /* first line is the password */
    char *defaults_file; /* a MySQL option file, groups [client] and [firesync] */
    char *database;
    enum cfg_tls_mode tls_mode;
    char *tls_ca, *tls_cert, *tls_key;
    int64_t connect_timeout_ms;
    int64_t reconnect_min_ms, reconnect_max_ms;
    bool create_tables;
    char *checkpoint_table, *changes_table, *dead_letter_table;
};

struct cfg_agent {
    char *status_file;
    char *metrics_file; /* NULL: none */
    char *control_socket;
    char *log_level; /* "error", "warn", "info", "debug" */
    int64_t batch_max_rows;
    int64_t batch_max_delay_ms;
    int64_t queue_max_events;
    int64_t silence_window_ms; /* healthy needs an event or heartbeat within this */
    int64_t stream_grace_ms;   /* stream down longer than this: unhealthy */
    int64_t status_interval_ms;
};

struct cfg_resync {
    bool enabled;
    int64_t interval_ms;
    int64_t fallback_after_ms;
    int64_t page_size;
    double pages_per_second;
};

struct cfg_column {
    char *name;  /* SQL column name, validated identifier */
    char *field; /* Firestore field path ("address.city", "`a.b`.c") */
    enum cfg_coltype type;
    int len, scale;
    int line, col;
};

struct cfg_collection {
    char *path;  /* "employees" or a pattern like "users/{*}/orders" ("users/ * /orders") */
    bool is_group;       /* path has a wildcard: listened to as a collection group */
    char *table;         /* validated identifier */
    enum cfg_key key;    /* document id, or full path (default for patterns) */
    char *extra_column;  /* unmapped fields as JSON; NULL drops them */
    bool history;        /* one row per applied change in the changes table */
    struct cfg_column *columns;
    size_t ncolumns;
    int line, col;
};

struct cfg {
    char *source; /* file name the config came from */
    struct cfg_firestore firestore;
    struct cfg_mysql mysql;
    struct cfg_agent agent;
    struct cfg_resync resync;
    struct cfg_collection *collections;
    size_t ncollections;
};

/* Reads and checks `path`. On success *out is a new config. On FS_ECONFIG, `errors` (may be
 * NULL) receives one "file:line:col: message\n" line per mistake, in file order, and *out is
 * NULL. Other codes (file unreadable) fill `e`. */
int cfg_load_file(const char *path, struct cfg **out, buf *errors, fserr *e);
/* Same, from memory; `name` stands for the file name in messages. */
int cfg_load_mem(const char *name, const char *src, size_t len, struct cfg **out, buf *errors,
                 fserr *e);
void cfg_free(struct cfg *c);

/* Appends the effective configuration as TOML, every default filled in and secrets redacted. */
int cfg_print(const struct cfg *c, buf *out);

/* Parses a duration string ("250ms", "45s", "10m", "6h", "1d", "1h30m") into milliseconds. */
int cfg_duration_parse(const char *s, int64_t *ms);
/* Formats milliseconds as the shortest duration string ("6h", "1m30s", "250ms", "0s"). */
void cfg_duration_format(int64_t ms, char *out, size_t n);

/* SQL spelling of a column type: "VARCHAR(100)", "DECIMAL(10,2)", "DATETIME(6)". */
void cfg_coltype_format(const struct cfg_column *col, char *out, size_t n);
const char *cfg_tls_mode_name(enum cfg_tls_mode m);

/* A safe SQL identifier: [A-Za-z_][A-Za-z0-9_$]{0,63}. */
bool cfg_identifier_ok(const char *s);

#endif
