/*
 * main.c - the `firesync` command: parses the command line and dispatches to a subcommand.
 *
 * Each subcommand is one row of `commands` (name, one-line summary, full help, function), so
 * that `firesync --help`, `firesync help CMD` and dispatch cannot disagree. This is the only
 * file that calls exit() (through main's return); subcommands return the exit status.
 */
#include "agent/config.h"
#include "agent/control.h"
#include "agent/daemon.h"
#include "agent/status.h"
#include "agent/tail.h"
#include "common/log.h"
#include "mysql/conn.h"
#include "mysql/sink.h"

#include <cjson/cJSON.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/version.h"

struct command {
    const char *name;
    const char *summary;
    const char *help;
    int (*fn)(int argc, char **argv);
};

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);
static int cmd_check_config(int argc, char **argv);
static int cmd_status(int argc, char **argv);
static int cmd_tail(int argc, char **argv);
static int cmd_run(int argc, char **argv);
static int cmd_schema(int argc, char **argv);
static int cmd_simulate(int argc, char **argv);
static int cmd_resync(int argc, char **argv);

static const struct command commands[] = {
    {"run", "run the agent: listen to Firestore and keep MySQL in step",
     "usage: firesync run [--config FILE] [--simulate-change FILE]\n"
     "\n"
     "Connects to MySQL (creating or checking the tables), rebuilds the applied index and\n"
     "reads each collection's checkpoint from MySQL, then listens to every configured\n"
     "collection and applies creates, updates (changed columns only) and soft deletes.\n"
     "Writes the status file (see firesync status) and serves the control socket.\n"
     "SIGTERM/SIGINT: commit what is queued, close the stream, exit 0. SIGHUP: reload the\n"
     "configuration (log level, health windows, status paths and interval apply at once;\n"
     "anything else is refused with a log line until a restart).\n"
     "\n"
     "  --config FILE             default " CFG_DEFAULT_PATH "\n"
     "  --simulate-change FILE    feed the made-up changes of FILE (one JSON object per line:\n"
     "                            {\"collection\",\"doc\",\"type\",\"data\"}) through the agent at\n"
     "                            start; see firesync simulate-change\n",
     cmd_run},
    {"check-config", "validate a configuration file and print it with defaults filled in",
     "usage: firesync check-config [--connect] [FILE]\n"
     "\n"
     "Reads FILE (default " CFG_DEFAULT_PATH "), reports every mistake as\n"
     "file:line:col: message and exits 1, or prints the effective configuration (every\n"
     "default filled in, secrets redacted) and exits 0.\n"
     "\n"
     "  --connect   also connect to MySQL as configured and report the result\n"
     "\n"
     "FIRESTORE_EMULATOR_HOST and GOOGLE_APPLICATION_CREDENTIALS apply when the file sets\n"
     "neither firestore.emulator_host nor firestore.credentials_file.\n",
     cmd_check_config},
    {"status", "show the running agent's health; exit 0 healthy, 1 warning, 2 unhealthy, 3 unknown",
     "usage: firesync status [--json] [--live] [--config FILE | --status-file FILE]\n"
     "\n"
     "Reads the status file the agent writes (agent.status_file of the configuration, default\n"
     "/run/firesync/status.json) and prints the state, its reason, the stream and MySQL, and a\n"
     "line per collection. Any user who may read the file may run it.\n"
     "\n"
     "  --json              print the file as it is\n"
     "  --live              ask the running agent over its control socket instead of\n"
     "                      reading the file (needs the agent's user)\n"
     "  --config FILE       take the status file's path from this configuration\n"
     "  --status-file FILE  read this file\n"
     "\n"
     "Exit status (the monitoring-plugin convention): 0 healthy, 1 warning, 2 unhealthy,\n"
     "3 unknown (no file, unreadable, or stale: its agent is gone or it is not refreshed).\n",
     cmd_status},
    {"schema", "print the MySQL DDL for the mapping and firesync's own tables",
     "usage: firesync schema [--config FILE]\n"
     "\n"
     "Prints CREATE TABLE IF NOT EXISTS statements for every mapped collection and for the\n"
     "checkpoint, change-history and dead-letter tables, as `firesync run` creates them when\n"
     "mysql.create_tables is on. Without create_tables, a DBA runs this DDL once; the agent\n"
     "then only needs SELECT, INSERT and UPDATE on the database.\n",
     cmd_schema},
    {"simulate-change", "push a made-up change through the running agent's diff and sink",
     "usage: firesync simulate-change --collection PATH --doc ID --type CREATE|UPDATE|DELETE\n"
     "                                [--data JSON] [--config FILE]\n"
     "\n"
     "Sends the change to the running agent over its control socket. The agent applies it\n"
     "exactly like a change from Firestore (same diff, same MySQL writes), tagged\n"
     "\"simulated\" in the counters and the change history; Firestore is not touched. Its\n"
     "update time is now, so a later real change of the document wins.\n"
     "\n"
     "  --data JSON   the whole new document as a plain JSON object, e.g.\n"
     "                '{\"name\":\"Ana\",\"salary\":1000.5,\"hiredAt\":{\"$timestamp\":\"2026-01-05T09:00:00Z\"}}'\n"
     "                ({\"$bytes\"}, {\"$reference\"}, {\"$geo\"}, {\"$double\":\"NaN\"} as in tail)\n",
     cmd_simulate},
    {"resync", "compare every document with MySQL now and fix the differences",
     "usage: firesync resync [--collection PATH] [--config FILE] [--no-wait]\n"
     "\n"
     "Asks the running agent (over its control socket) for a full resync of PATH, or of every\n"
     "collection: the collection is read from Firestore as one snapshot, page by page, and\n"
     "compared with what MySQL holds; rows that differ, are missing or were deleted by hand\n"
     "are written again, rows whose document is gone are soft-deleted, equal rows cost no\n"
     "write. Waits until the runs end and prints their results (exit 0 when all completed,\n"
     "1 otherwise); a run already under way is waited for, not repeated.\n"
     "\n"
     "  --collection PATH  only this configured collection\n"
     "  --config FILE      default " CFG_DEFAULT_PATH "\n"
     "  --no-wait          return once the runs have started\n",
     cmd_resync},
    {"tail", "print the Firestore change stream as JSON lines, without touching MySQL",
     "usage: firesync tail [--config FILE] [--collection PATH]\n"
     "\n"
     "Listens as the agent does and prints one JSON line per event on stdout until Ctrl-C:\n"
     "  {\"op\":\"create\"|\"update\", \"collection\", \"name\", \"create_time\", \"update_time\",\n"
     "   \"fields\"}   fields as plain JSON; types JSON would lose are kept as {\"$timestamp\"},\n"
     "              {\"$bytes\"}, {\"$reference\"}, {\"$geo\"} and {\"$double\":\"NaN\"}\n"
     "  {\"op\":\"delete\", \"collection\", \"name\", \"read_time\"}\n"
     "  {\"op\":\"consistent\", \"collection\", \"read_time\", \"resume_token\", \"live\"}: the set\n"
     "   of documents is complete up to read_time\n"
     "Versions re-sent unchanged (the emulator re-sends everything on each change) print\n"
     "nothing, as the agent writes nothing for them.\n"
     "\n"
     "  --config FILE      default " CFG_DEFAULT_PATH "\n"
     "  --collection PATH  only this collection (need not be in the configuration)\n",
     cmd_tail},
    {"help", "show help for firesync or for one command",
     "usage: firesync help [COMMAND]\n", cmd_help},
    {"version", "print the version", "usage: firesync version\n", cmd_version},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "firesync %s - keeps MySQL tables in step with Firestore collections\n\n"
               "usage: firesync COMMAND [ARGS]\n\ncommands:\n",
            FIRESYNC_VERSION);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'firesync help COMMAND' shows the options of a command.\n");
}

static int cmd_help(int argc, char **argv)
{
    const struct command *c;

    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    c = find(argv[1]);
    if (!c) {
        fprintf(stderr, "firesync: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    printf("firesync %s - %s\n\n%s", c->name, c->summary, c->help);
    return 0;
}

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("firesync %s\n", FIRESYNC_VERSION);
    return 0;
}

static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

/* Loads the configuration at path, or prints why it cannot and returns NULL. `who` NULL: each
 * error as "file:line:col: message" (or the one reason when there is none of those); `who` set:
 * "who: summary" first, then those lines. */
static struct cfg *load_config(const char *path, const char *who)
{
    struct cfg *c = NULL;
    fserr e = {0};
    buf errors;

    buf_init(&errors, 0);
    if (cfg_load_file(path, &c, &errors, &e) != 0) {
        if (who)
            fprintf(stderr, "%s: %s\n%s", who, e.msg, buf_str(&errors));
        else if (errors.len)
            fputs(buf_str(&errors), stderr);
        else
            fprintf(stderr, "firesync: %s\n", e.msg);
        c = NULL;
    }
    buf_release(&errors);
    return c;
}

static int cmd_check_config(int argc, char **argv)
{
    const char *path = CFG_DEFAULT_PATH;
    int connect = 0, rc = 0;
    struct cfg *c = NULL;
    fserr e = {0};
    buf out;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--connect") == 0) {
            connect = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "firesync check-config: unknown option '%s'\n", argv[i]);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!(c = load_config(path, NULL)))
        return 1;
    buf_init(&out, 0);
    cfg_print(c, &out);
    fputs(buf_str(&out), stdout);
    if (connect) {
        MYSQL *m = NULL;
        rc = sink_conn_open(&c->mysql, &m, &e);
        if (rc) {
            fprintf(stderr, "firesync: %s\n", e.msg);
        } else {
            fprintf(stderr, "firesync: connected to MySQL %s, database %s\n",
                    mysql_get_server_info(m), c->mysql.database);
            mysql_close(m);
        }
    }
    buf_release(&out);
    cfg_free(c);
    return rc ? 1 : 0;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmd_status(int argc, char **argv)
{
    const char *config = NULL, *file = NULL;
    char path[4096] = "/run/firesync/status.json", why[640];
    int64_t stale_ms = 30000;
    int json = 0, live = 0;
    char *text = NULL;
    enum status_health h;
    fserr e = {0};

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--live") == 0) {
            live = 1;
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(argv[i], "--status-file") == 0 && i + 1 < argc) {
            file = argv[++i];
        } else {
            fprintf(stderr, "firesync status: unknown or incomplete option '%s'\n", argv[i]);
            return 3;
        }
    }
    if (live) {
        struct cfg *c = load_config(config ? config : CFG_DEFAULT_PATH, "firesync status");
        buf out;
        int rc;
        if (!c)
            return 3;
        buf_init(&out, 16u << 20);
        rc = control_request(c->agent.control_socket, "{\"cmd\":\"status\"}", &out, &e);
        cfg_free(c);
        if (rc) {
            printf("firesync unknown: %s\n", e.msg);
            buf_release(&out);
            return 3;
        }
        h = STATUS_UNKNOWN;
        for (int k = 0; k < 3; k++) {
            char pat[40];
            snprintf(pat, sizeof(pat), "\"state\":\"%s\"", status_health_name((enum status_health)k));
            if (strstr(buf_str(&out), pat))
                h = (enum status_health)k;
        }
        if (json)
            fputs(buf_str(&out), stdout);
        else if (status_print(stdout, buf_str(&out), now_us(), h, NULL) != 0)
            printf("firesync unknown: the agent's answer is not valid JSON\n");
        buf_release(&out);
        return (int)h;
    }
    if (file) {
        snprintf(path, sizeof(path), "%s", file);
    } else if (config) {
        struct cfg *c = load_config(config, "firesync status");
        if (!c)
            return 3;
        snprintf(path, sizeof(path), "%s", c->agent.status_file);
        stale_ms = 3 * c->agent.status_interval_ms + 10000;
        cfg_free(c);
    }
    if (status_read(path, now_us(), stale_ms, &text, &h, why, sizeof(why), &e) != 0) {
        printf("firesync unknown: %s\n", e.msg);
        return 3;
    }
    if (json)
        fputs(text, stdout);
    else if (status_print(stdout, text, now_us(), h, why) != 0)
        printf("firesync unknown: status file %s is not valid JSON\n", path);
    free(text);
    return (int)h;
}

static int cmd_run(int argc, char **argv)
{
    struct agent_options opt = {CFG_DEFAULT_PATH, NULL};
    fserr e = {0};
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            opt.config_path = argv[++i];
        } else if (strcmp(argv[i], "--simulate-change") == 0 && i + 1 < argc) {
            opt.simulate_file = argv[++i];
        } else {
            fprintf(stderr, "firesync run: unknown or incomplete option '%s'\n", argv[i]);
            return 2;
        }
    }
    rc = agent_run(&opt, &e);
    mysql_library_end();
    return rc;
}

static int cmd_schema(int argc, char **argv)
{
    const char *config = CFG_DEFAULT_PATH;
    struct cfg *c = NULL;
    buf out;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else {
            fprintf(stderr, "firesync schema: unknown or incomplete option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!(c = load_config(config, NULL)))
        return 1;
    buf_init(&out, 0);
    rc = sink_schema_sql(c, &out);
    if (rc)
        fprintf(stderr, "firesync schema: %s\n", fserr_str(rc));
    else
        fputs(buf_str(&out), stdout);
    buf_release(&out);
    cfg_free(c);
    return rc ? 1 : 0;
}

static int cmd_simulate(int argc, char **argv)
{
    const char *config = CFG_DEFAULT_PATH, *coll = NULL, *doc = NULL, *type = NULL, *data = NULL;
    struct cfg *c = NULL;
    cJSON *req, *d = NULL, *reply;
    buf out;
    fserr e = {0};
    char *text;
    int rc;

    for (int i = 1; i < argc; i++) {
        const char **slot = strcmp(argv[i], "--config") == 0       ? &config
                            : strcmp(argv[i], "--collection") == 0 ? &coll
                            : strcmp(argv[i], "--doc") == 0        ? &doc
                            : strcmp(argv[i], "--type") == 0       ? &type
                            : strcmp(argv[i], "--data") == 0       ? &data
                                                                   : NULL;
        if (!slot || i + 1 >= argc) {
            fprintf(stderr, "firesync simulate-change: unknown or incomplete option '%s'\n",
                    argv[i]);
            return 2;
        }
        *slot = argv[++i];
    }
    if (!coll || !doc || !type) {
        fprintf(stderr, "firesync simulate-change: --collection, --doc and --type are required\n");
        return 2;
    }
    if (data && !(d = cJSON_Parse(data))) {
        fprintf(stderr, "firesync simulate-change: --data is not valid JSON\n");
        return 2;
    }
    if (!(c = load_config(config, "firesync"))) {
        cJSON_Delete(d);
        return 1;
    }
    req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "cmd", "simulate");
    cJSON_AddStringToObject(req, "collection", coll);
    cJSON_AddStringToObject(req, "doc", doc);
    cJSON_AddStringToObject(req, "type", type);
    if (d)
        cJSON_AddItemToObject(req, "data", d);
    text = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    buf_init(&out, 1u << 20);
    rc = control_request(c->agent.control_socket, text, &out, &e);
    free(text);
    cfg_free(c);
    if (rc) {
        fprintf(stderr, "firesync simulate-change: %s\n", e.msg);
        buf_release(&out);
        return 1;
    }
    reply = cJSON_Parse(buf_str(&out));
    rc = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "ok")) ? 0 : 1;
    if (rc)
        fprintf(stderr, "firesync simulate-change: %s\n",
                cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(reply, "error"))
                    ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(reply, "error"))
                    : "no valid answer from the agent");
    else
        printf("simulated %s of %s/%s applied\n", type, coll, doc);
    cJSON_Delete(reply);
    buf_release(&out);
    return rc;
}

static const char *jstr(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static double jnum(const cJSON *o, const char *key)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* The entry of `path` in a control answer's "collections", or NULL. */
static const cJSON *coll_entry(const cJSON *reply, const char *path)
{
    const cJSON *c;

    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(reply, "collections"))
    {
        if (jstr(c, "path") && strcmp(jstr(c, "path"), path) == 0)
            return c;
    }
    return NULL;
}

/* True when every run named in `started` has ended according to `now`. */
static bool runs_ended(const cJSON *started, const cJSON *now)
{
    const cJSON *c;

    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(started, "collections"))
    {
        const cJSON *n = coll_entry(now, jstr(c, "path") ? jstr(c, "path") : "");
        if (!n || jnum(n, "ended") < jnum(c, "run"))
            return false;
    }
    return true;
}

/* Polls the agent until every run named in `started` has ended; prints the results. */
static int wait_resync(const char *sock, const cJSON *started)
{
    struct timespec pause = {0, 500 * 1000000L};
    fserr e = {0};
    int failed = 0;

    for (;;) {
        const cJSON *c;
        cJSON *st;
        buf out;
        buf_init(&out, 1u << 20);
        if (control_request(sock, "{\"cmd\":\"resync-status\"}", &out, &e) != 0) {
            fprintf(stderr, "firesync resync: %s\n", e.msg);
            buf_release(&out);
            return 1;
        }
        st = cJSON_Parse(buf_str(&out));
        buf_release(&out);
        if (!runs_ended(started, st)) {
            cJSON_Delete(st);
            nanosleep(&pause, NULL);
            continue;
        }
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(started, "collections"))
        {
            const char *path = jstr(c, "path") ? jstr(c, "path") : "?";
            const cJSON *n = coll_entry(st, path);
            failed += jstr(n, "state") && strcmp(jstr(n, "state"), "failed") == 0;
            printf("%s: %s\n", path, jstr(n, "result") ? jstr(n, "result") : "?");
        }
        cJSON_Delete(st);
        return failed ? 1 : 0;
    }
}

static int cmd_resync(int argc, char **argv)
{
    const char *config = CFG_DEFAULT_PATH, *coll = NULL;
    bool wait = true;
    struct cfg *c = NULL;
    cJSON *req, *reply, *it;
    buf out;
    fserr e = {0};
    char *text, *sock;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(argv[i], "--collection") == 0 && i + 1 < argc) {
            coll = argv[++i];
        } else if (strcmp(argv[i], "--no-wait") == 0) {
            wait = false;
        } else {
            fprintf(stderr, "firesync resync: unknown or incomplete option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!(c = load_config(config, "firesync")))
        return 1;
    req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "cmd", "resync");
    if (coll)
        cJSON_AddStringToObject(req, "collection", coll);
    text = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    sock = strdup(c->agent.control_socket);
    cfg_free(c);
    buf_init(&out, 1u << 20);
    rc = control_request(sock, text, &out, &e);
    free(text);
    reply = rc ? NULL : cJSON_Parse(buf_str(&out));
    buf_release(&out);
    if (rc || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "ok"))) {
        const char *msg = jstr(reply, "error");
        fprintf(stderr, "firesync resync: %s\n",
                rc ? e.msg : msg ? msg : "no valid answer from the agent");
        cJSON_Delete(reply);
        free(sock);
        return 1;
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(reply, "collections"))
    {
        const char *path = jstr(it, "path") ? jstr(it, "path") : "?";
        if (jstr(it, "note"))
            printf("%s: %s%s\n", path, jstr(it, "note"), wait ? "; waiting for it" : "");
        else
            printf("%s: resync started\n", path);
    }
    fflush(stdout);
    rc = wait ? wait_resync(sock, reply) : 0;
    cJSON_Delete(reply);
    free(sock);
    return rc;
}

static int cmd_tail(int argc, char **argv)
{
    const char *config = CFG_DEFAULT_PATH, *only = NULL;
    struct cfg *c = NULL;
    fserr e = {0};
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(argv[i], "--collection") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else {
            fprintf(stderr, "firesync tail: unknown or incomplete option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!(c = load_config(config, NULL)))
        return 1;
    rc = tail_run(c, only, &e);
    if (rc)
        fprintf(stderr, "firesync tail: %s\n", e.msg);
    cfg_free(c);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    const struct command *c;

    log_init(LOG_STYLE_AUTO, LOG_LVL_INFO);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(0, NULL);
    c = find(argv[1]);
    if (!c) {
        fprintf(stderr, "firesync: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return 2;
    }
    if (c->fn != cmd_help && wants_help(argc - 1, argv + 1)) {
        printf("firesync %s - %s\n\n%s", c->name, c->summary, c->help);
        return 0;
    }
    return c->fn(argc - 1, argv + 1);
}
