/*
 * main.c - the `firesync` command: parses the command line and dispatches to a subcommand.
 *
 * Each subcommand is one row of `commands` (name, one-line summary, full help, function), so
 * that `firesync --help`, `firesync help CMD` and dispatch cannot disagree. This is the only
 * file that calls exit() (through main's return); subcommands return the exit status.
 */
#include "agent/config.h"
#include "common/log.h"
#include "mysql/conn.h"

#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIRESYNC_VERSION "0.1.0"

struct command {
    const char *name;
    const char *summary;
    const char *help;
    int (*fn)(int argc, char **argv);
};

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);
static int cmd_check_config(int argc, char **argv);

static const struct command commands[] = {
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

static int cmd_check_config(int argc, char **argv)
{
    const char *path = CFG_DEFAULT_PATH;
    int connect = 0, rc;
    struct cfg *c = NULL;
    fserr e = {0};
    buf errors, out;

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
    buf_init(&errors, 0);
    buf_init(&out, 0);
    rc = cfg_load_file(path, &c, &errors, &e);
    if (rc) {
        if (errors.len)
            fputs(buf_str(&errors), stderr);
        else
            fprintf(stderr, "firesync: %s\n", e.msg);
        buf_release(&errors);
        return 1;
    }
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
    buf_release(&errors);
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
