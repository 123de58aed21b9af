/*
 * control.c - the control socket (see control.h): a uv_pipe_t server on the agent's loop, one
 * request per connection, and the blocking client the command line uses.
 *
 * Owns the server handle and each connection's read buffer (capped at 1 MiB). The socket file
 * is created with mode 0600 so that only the agent's user (and root) may talk to it.
 */
#include "agent/control.h"

#include "agent/internal.h"
#include "agent/resync.h"
#include "common/log.h"
#include "common/xalloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define REQUEST_MAX (1u << 20)

struct control {
    uv_pipe_t server;
    struct agent *a;
    char *path;
};

struct conn {
    uv_pipe_t pipe;
    struct agent *a;
    buf in;
    uv_write_t w;
    char *reply;
};

static void conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    buf_release(&c->in);
    free(c->reply);
    free(c);
}

static void written(uv_write_t *w, int status)
{
    struct conn *c = w->data;
    (void)status;
    uv_close((uv_handle_t *)&c->pipe, conn_closed);
}

static void reply(struct conn *c, cJSON *o)
{
    char *text = cJSON_PrintUnformatted(o);
    uv_buf_t b;

    cJSON_Delete(o);
    c->reply = xasprintf("%s\n", text);
    free(text);
    b = uv_buf_init(c->reply, (unsigned)strlen(c->reply));
    c->w.data = c;
    if (uv_write(&c->w, (uv_stream_t *)&c->pipe, &b, 1, written) != 0)
        uv_close((uv_handle_t *)&c->pipe, conn_closed);
}

static cJSON *error_reply(const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", false);
    cJSON_AddStringToObject(o, "error", msg);
    return o;
}

static const char *sval(const cJSON *o, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
    return s ? s : "";
}

/* ---- resync ---------------------------------------------------------------------------------- */

/* {"cmd":"resync","collection":C}: starts a run of C (every collection without one). Each entry
 * of the answer names the run to wait for: resync-status's "ended" reaches it when it ends. */
static cJSON *resync_cmd(struct agent *a, const cJSON *req)
{
    const char *only = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "collection"));
    cJSON *out, *list;
    bool any = false;

    if (!a->resync)
        return error_reply("the resync is not running yet");
    out = cJSON_CreateObject();
    list = cJSON_AddArrayToObject(out, "collections");
    for (size_t i = 0; i < a->cfg->ncollections; i++) {
        const char *path = a->cfg->collections[i].path;
        cJSON *c;
        fserr e = {0};
        if (only && strcmp(only, path) != 0)
            continue;
        any = true;
        c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "path", path);
        if (resync_request(a->resync, (int)i, "asked for on the control socket", &e) != 0)
            cJSON_AddStringToObject(c, "note", e.msg);
        cJSON_AddNumberToObject(c, "run", (double)(resync_runs_ended(a->resync, (int)i) + 1));
        cJSON_AddItemToArray(list, c);
    }
    if (!any) {
        char msg[400];
        cJSON_Delete(out);
        snprintf(msg, sizeof(msg), "no collection \"%.300s\" in the configuration", only);
        return error_reply(msg);
    }
    cJSON_AddBoolToObject(out, "ok", true);
    agent_write_status(a);
    return out;
}

/* {"cmd":"resync-status"}: each collection's resync, and how many runs ended. */
static cJSON *resync_progress(struct agent *a)
{
    cJSON *out = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(out, "collections");

    for (size_t i = 0; a->resync && i < a->cfg->ncollections; i++) {
        const struct status_resync *r = resync_status(a->resync, (int)i);
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "path", a->cfg->collections[i].path);
        cJSON_AddBoolToObject(c, "running", resync_running(a->resync, (int)i));
        cJSON_AddNumberToObject(c, "ended", (double)resync_runs_ended(a->resync, (int)i));
        cJSON_AddStringToObject(c, "state", r->state);
        cJSON_AddStringToObject(c, "phase", r->phase);
        cJSON_AddStringToObject(c, "result", r->result);
        cJSON_AddNumberToObject(c, "docs_read", (double)r->docs_read);
        cJSON_AddNumberToObject(c, "differences", (double)r->differences);
        cJSON_AddNumberToObject(c, "fixed", (double)r->fixed);
        cJSON_AddNumberToObject(c, "soft_deleted", (double)r->soft_deleted);
        cJSON_AddNumberToObject(c, "reads_billed", (double)r->reads_billed);
        cJSON_AddNumberToObject(c, "duration_ms", (double)r->duration_ms);
        cJSON_AddItemToArray(list, c);
    }
    cJSON_AddBoolToObject(out, "ok", a->resync != NULL);
    return out;
}

static cJSON *handle(struct agent *a, const char *text)
{
    cJSON *req = cJSON_Parse(text), *out;
    const char *cmd = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "cmd"));
    fserr e = {0};

    if (!req || !cmd) {
        cJSON_Delete(req);
        return error_reply("expected a JSON object with \"cmd\"");
    }
    if (strcmp(cmd, "status") == 0) {
        struct status st;
        buf b;
        buf_init(&b, 0);
        agent_fill_status(a, &st);
        status_to_json(&st, &b);
        out = cJSON_Parse(buf_str(&b));
        buf_release(&b);
    } else if (strcmp(cmd, "simulate") == 0) {
        cJSON *data = cJSON_GetObjectItemCaseSensitive(req, "data");
        char *dtext = data ? cJSON_PrintUnformatted(data) : NULL;
        int rc = agent_simulate(a, sval(req, "collection"), sval(req, "doc"), sval(req, "type"),
                                dtext, &e);
        free(dtext);
        if (rc) {
            out = error_reply(e.msg);
        } else {
            out = cJSON_CreateObject();
            cJSON_AddBoolToObject(out, "ok", true);
        }
    } else if (strcmp(cmd, "resync") == 0) {
        out = resync_cmd(a, req);
    } else if (strcmp(cmd, "resync-status") == 0) {
        out = resync_progress(a);
    } else {
        char msg[160];
        snprintf(msg, sizeof(msg), "unknown command \"%.100s\" (status, simulate, resync, "
                 "resync-status)", cmd);
        out = error_reply(msg);
    }
    cJSON_Delete(req);
    return out;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    b->base = xmalloc(suggested);
    b->len = suggested;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = s->data;
    char *nl;

    if (n > 0 && buf_add(&c->in, b->base, (size_t)n) != 0) {
        free(b->base);
        uv_read_stop(s);
        reply(c, error_reply("request larger than 1 MiB"));
        return;
    }
    free(b->base);
    if (n < 0 && !c->in.len) {
        uv_close((uv_handle_t *)&c->pipe, conn_closed);
        return;
    }
    nl = c->in.p ? memchr(c->in.p, '\n', c->in.len) : NULL;
    if (!nl && n >= 0)
        return;
    if (nl)
        *nl = '\0';
    uv_read_stop(s);
    reply(c, handle(c->a, buf_str(&c->in)));
}

static void on_connection(uv_stream_t *server, int status)
{
    struct control *ctl = server->data;
    struct conn *c;

    if (status < 0)
        return;
    c = xcalloc(1, sizeof(*c));
    c->a = ctl->a;
    buf_init(&c->in, REQUEST_MAX);
    uv_pipe_init(server->loop, &c->pipe, 0);
    c->pipe.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        uv_close((uv_handle_t *)&c->pipe, conn_closed);
        return;
    }
    uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, on_read);
}

/* A socket file nobody answers on is left over from a crash: remove it. */
static int clear_stale(const char *path, fserr *e)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;
    struct stat st;

    if (lstat(path, &st) != 0)
        return 0;
    if (!S_ISSOCK(st.st_mode))
        return fserr_set(e, FS_EEXISTS, "control socket %s exists and is not a socket", path);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        close(fd);
        return fserr_set(e, FS_EEXISTS, "another agent is running on control socket %s", path);
    }
    if (fd >= 0)
        close(fd);
    unlink(path);
    return 0;
}

int agent_control_start(struct agent *a, fserr *e)
{
    struct control *ctl;
    const char *path = a->cfg->agent.control_socket;
    mode_t old;
    int rc;

    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return fserr_set(e, FS_ECONFIG, "control socket path %s is too long", path);
    rc = clear_stale(path, e);
    if (rc)
        return rc;
    ctl = xcalloc(1, sizeof(*ctl));
    ctl->a = a;
    ctl->path = xstrdup(path);
    uv_pipe_init(&a->loop, &ctl->server, 0);
    ctl->server.data = ctl;
    old = umask(0177); /* the socket is created 0600 */
    rc = uv_pipe_bind(&ctl->server, path);
    umask(old);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&ctl->server, 16, on_connection);
    if (rc) {
        uv_close((uv_handle_t *)&ctl->server, NULL);
        a->control = ctl; /* freed by agent_control_close */
        return fserr_set(e, FS_EIO, "control socket %s: %s", path, uv_strerror(rc));
    }
    chmod(path, 0600);
    a->control = ctl;
    return 0;
}

static void server_closed(uv_handle_t *h)
{
    struct control *ctl = h->data;
    free(ctl->path);
    free(ctl);
}

void agent_control_close(struct agent *a)
{
    struct control *ctl = a->control;

    if (!ctl)
        return;
    a->control = NULL;
    unlink(ctl->path);
    if (uv_is_closing((uv_handle_t *)&ctl->server)) {
        /* closed by a failed start; its close callback was NULL */
        free(ctl->path);
        free(ctl);
        return;
    }
    uv_close((uv_handle_t *)&ctl->server, server_closed);
}

int control_request(const char *path, const char *request, buf *out, fserr *e)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = 0;
    char chunk[8192];
    size_t len = strlen(request), off = 0;

    if (fd < 0)
        return fserr_set(e, FS_EIO, "socket: %s", strerror(errno));
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        rc = fserr_set(e, errno == EACCES ? FS_EPERM : FS_ENOTFOUND,
                       "control socket %s: %s (is the agent running, and are you its user?)",
                       path, strerror(errno));
        goto out;
    }
    while (off < len) {
        ssize_t w = write(fd, request + off, len - off);
        if (w <= 0) {
            rc = fserr_set(e, FS_EIO, "control socket %s: %s", path, strerror(errno));
            goto out;
        }
        off += (size_t)w;
    }
    if (write(fd, "\n", 1) != 1) {
        rc = fserr_set(e, FS_EIO, "control socket %s: %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t r;
        if (poll(&p, 1, 30000) <= 0) {
            rc = fserr_set(e, FS_ETIMEOUT, "control socket %s: no answer in 30 s", path);
            break;
        }
        r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (buf_add(out, chunk, (size_t)r) != 0) {
            rc = fserr_set(e, FS_ETOOBIG, "control socket %s: answer too large", path);
            break;
        }
    }
out:
    close(fd);
    return rc;
}
