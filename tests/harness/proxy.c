/*
 * proxy.c - the fault-injecting TCP proxy of the convergence tests (see proxy.h).
 *
 * One thread, one poll() loop over the listening socket, a wake-up pipe and both sockets of
 * every connection. Each direction has one buffer: the loop reads from a side only while the
 * buffer towards the other side is empty, so a slow reader slows the writer down as TCP would,
 * and memory stays at two buffers per connection. Mode changes and cuts come from the test's
 * thread under the mutex and wake the loop through the pipe.
 */
#include "tests/harness/proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 64
#define BUFSZ 65536

static const char ERROR_REPLY[] =
    "HTTP/1.1 503 Service Unavailable\r\n"
    "Content-Type: application/json; charset=UTF-8\r\n"
    "Content-Length: 95\r\n"
    "Connection: close\r\n\r\n"
    "{\"error\":{\"code\":503,\"message\":\"The service is currently unavailable.\","
    "\"status\":\"UNAVAILABLE\"}}";

struct pipe_buf {
    char *data;
    size_t off, len;
};

struct conn {
    int cfd, ufd;          /* client (agent) side, upstream (emulator) side; -1 when closed */
    struct pipe_buf c2u;   /* bytes read from the client, not yet written upstream */
    struct pipe_buf u2c;   /* and the other way */
    bool closing;          /* one side ended: close once both buffers are flushed */
    bool refuse;           /* accepted in PROXY_ERROR: read the request head, answer 503 */
    bool answered;         /* refuse: the 503 is out, discard input until the client closes */
};

struct proxy {
    int listen_fd, port, upstream_port;
    int wake[2];
    pthread_t thread;
    pthread_mutex_t mu;
    enum proxy_mode mode;  /* under mu */
    bool cut_req, stop;    /* under mu */
    long accepted, errors; /* under mu */
    struct conn conns[MAX_CONNS];
};

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Closes with an RST rather than a FIN, as a cut network path looks to the peer. */
static void reset_fd(int fd)
{
    struct linger lg = {1, 0};
    if (fd < 0)
        return;
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

static void conn_drop(struct conn *c, bool rst)
{
    if (rst) {
        reset_fd(c->cfd);
        reset_fd(c->ufd);
    } else {
        if (c->cfd >= 0)
            close(c->cfd);
        if (c->ufd >= 0)
            close(c->ufd);
    }
    free(c->c2u.data);
    free(c->u2c.data);
    memset(c, 0, sizeof(*c));
    c->cfd = c->ufd = -1;
}

static int connect_upstream(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    set_nonblock(fd);
    return fd;
}

static void accept_one(struct proxy *p, enum proxy_mode mode)
{
    int fd = accept(p->listen_fd, NULL, NULL);
    struct conn *c = NULL;

    if (fd < 0)
        return;
    for (int i = 0; i < MAX_CONNS; i++)
        if (p->conns[i].cfd < 0) {
            c = &p->conns[i];
            break;
        }
    if (!c) {
        reset_fd(fd);
        return;
    }
    set_nonblock(fd);
    c->cfd = fd;
    c->c2u.data = malloc(BUFSZ);
    c->u2c.data = malloc(BUFSZ);
    if (!c->c2u.data || !c->u2c.data) {
        conn_drop(c, true);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->accepted++;
    pthread_mutex_unlock(&p->mu);
    if (mode == PROXY_ERROR) {
        c->refuse = true;
        return;
    }
    c->ufd = connect_upstream(p->upstream_port);
    if (c->ufd < 0)
        conn_drop(c, true);
}

/* Reads what `from` has into b (which is empty). Returns false at EOF or on an error. */
static bool fill(int from, struct pipe_buf *b)
{
    ssize_t n = read(from, b->data, BUFSZ);
    if (n > 0) {
        b->off = 0;
        b->len = (size_t)n;
        return true;
    }
    return n < 0 && (errno == EAGAIN || errno == EINTR);
}

/* Writes what it can of b to `to`. Returns false when the peer is gone. */
static bool drain(int to, struct pipe_buf *b)
{
    ssize_t n = write(to, b->data + b->off, b->len - b->off);
    if (n > 0) {
        b->off += (size_t)n;
        if (b->off == b->len)
            b->off = b->len = 0;
        return true;
    }
    return n < 0 && (errno == EAGAIN || errno == EINTR);
}

/* A connection accepted while refusing: collects the request head, answers 503, closes. */
static void serve_refusal(struct proxy *p, struct conn *c, short rev)
{
    if (!(rev & (POLLIN | POLLHUP | POLLERR)))
        return;
    if (c->answered) {
        char sink[4096];
        ssize_t n = read(c->cfd, sink, sizeof(sink));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            conn_drop(c, false);
        return;
    }
    ssize_t n = read(c->cfd, c->c2u.data + c->c2u.len, BUFSZ - 1 - c->c2u.len);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_drop(c, false);
        return;
    }
    if (n > 0)
        c->c2u.len += (size_t)n;
    c->c2u.data[c->c2u.len] = '\0';
    if (strstr(c->c2u.data, "\r\n\r\n") || c->c2u.len >= BUFSZ - 1) {
        /* the reply is far smaller than a socket buffer: one write suffices */
        if (write(c->cfd, ERROR_REPLY, sizeof(ERROR_REPLY) - 1) < 0) {
            conn_drop(c, true);
            return;
        }
        shutdown(c->cfd, SHUT_WR);
        c->answered = true;
        pthread_mutex_lock(&p->mu);
        p->errors++;
        pthread_mutex_unlock(&p->mu);
    }
}

static void forward(struct conn *c, short crev, short urev)
{
    bool ok = true;

    if ((crev & POLLOUT) && c->u2c.len)
        ok = drain(c->cfd, &c->u2c);
    if (ok && (urev & POLLOUT) && c->c2u.len)
        ok = drain(c->ufd, &c->c2u);
    if (!ok) {
        conn_drop(c, true);
        return;
    }
    if (!c->closing && (crev & (POLLIN | POLLHUP | POLLERR)) && !c->c2u.len)
        c->closing = !fill(c->cfd, &c->c2u);
    if (!c->closing && (urev & (POLLIN | POLLHUP | POLLERR)) && !c->u2c.len)
        c->closing = !fill(c->ufd, &c->u2c);
    if (c->closing && !c->c2u.len && !c->u2c.len)
        conn_drop(c, false);
}

static void *run(void *arg)
{
    struct proxy *p = arg;
    struct pollfd fds[2 + 2 * MAX_CONNS];
    int slot[2 + 2 * MAX_CONNS];
    enum proxy_mode last = PROXY_PASS;

    for (;;) {
        pthread_mutex_lock(&p->mu);
        enum proxy_mode mode = p->mode;
        bool cut = p->cut_req, stop = p->stop;
        p->cut_req = false;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            break;
        if (cut || (mode == PROXY_ERROR && last != PROXY_ERROR))
            for (int i = 0; i < MAX_CONNS; i++)
                if (p->conns[i].cfd >= 0 && !p->conns[i].refuse)
                    conn_drop(&p->conns[i], true);
        last = mode;

        int n = 0;
        fds[n] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
        slot[n++] = -1;
        if (mode != PROXY_STALL) {
            fds[n] = (struct pollfd){.fd = p->listen_fd, .events = POLLIN};
            slot[n++] = -1;
        }
        for (int i = 0; i < MAX_CONNS; i++) {
            struct conn *c = &p->conns[i];
            if (c->cfd < 0)
                continue;
            if (c->refuse) {
                fds[n] = (struct pollfd){.fd = c->cfd, .events = POLLIN};
                slot[n++] = i;
                continue;
            }
            if (mode != PROXY_PASS)
                continue;
            short ce = 0, ue = 0;
            if (!c->closing && !c->c2u.len)
                ce |= POLLIN;
            if (c->u2c.len)
                ce |= POLLOUT;
            if (!c->closing && !c->u2c.len)
                ue |= POLLIN;
            if (c->c2u.len)
                ue |= POLLOUT;
            fds[n] = (struct pollfd){.fd = c->cfd, .events = ce};
            slot[n++] = i;
            fds[n] = (struct pollfd){.fd = c->ufd, .events = ue};
            slot[n++] = i;
        }
        if (poll(fds, (nfds_t)n, 1000) < 0 && errno != EINTR)
            break;
        for (int k = 0; k < n; k++) {
            if (fds[k].fd == p->wake[0] && (fds[k].revents & POLLIN)) {
                char junk[64];
                while (read(p->wake[0], junk, sizeof(junk)) > 0) {
                }
            } else if (fds[k].fd == p->listen_fd && (fds[k].revents & POLLIN)) {
                accept_one(p, mode);
            } else if (slot[k] >= 0) {
                struct conn *c = &p->conns[slot[k]];
                if (c->refuse) {
                    if (c->cfd == fds[k].fd)
                        serve_refusal(p, c, fds[k].revents);
                } else if (c->cfd == fds[k].fd && k + 1 < n && slot[k + 1] == slot[k]) {
                    /* both sockets of one connection sit next to each other */
                    forward(c, fds[k].revents, fds[k + 1].revents);
                    k++;
                }
            }
        }
    }
    return NULL;
}

static void wake(struct proxy *p)
{
    char b = 1;
    if (write(p->wake[1], &b, 1) < 0) {
        /* the pipe is full: the loop is awake already */
    }
}

struct proxy *proxy_start(int upstream_port, fserr *e)
{
    struct proxy *p = calloc(1, sizeof(*p));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int one = 1;

    if (!p) {
        fserr_set(e, FS_ENOMEM, "proxy: out of memory");
        return NULL;
    }
    p->upstream_port = upstream_port;
    p->wake[0] = p->wake[1] = -1;
    for (int i = 0; i < MAX_CONNS; i++)
        p->conns[i].cfd = p->conns[i].ufd = -1;
    pthread_mutex_init(&p->mu, NULL);
    p->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (p->listen_fd < 0 ||
        setsockopt(p->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(p->listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(p->listen_fd, 64) < 0 ||
        getsockname(p->listen_fd, (struct sockaddr *)&a, &len) < 0 || pipe(p->wake) < 0) {
        fserr_set(e, FS_EIO, "proxy: cannot listen on 127.0.0.1: %s", strerror(errno));
        goto fail;
    }
    set_nonblock(p->listen_fd);
    set_nonblock(p->wake[0]);
    set_nonblock(p->wake[1]);
    p->port = ntohs(a.sin_port);
    if (pthread_create(&p->thread, NULL, run, p) != 0) {
        fserr_set(e, FS_EIO, "proxy: cannot start its thread");
        goto fail;
    }
    return p;
fail:
    if (p->listen_fd >= 0)
        close(p->listen_fd);
    if (p->wake[0] >= 0) {
        close(p->wake[0]);
        close(p->wake[1]);
    }
    pthread_mutex_destroy(&p->mu);
    free(p);
    return NULL;
}

void proxy_free(struct proxy *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_mutex_unlock(&p->mu);
    wake(p);
    pthread_join(p->thread, NULL);
    for (int i = 0; i < MAX_CONNS; i++)
        if (p->conns[i].cfd >= 0)
            conn_drop(&p->conns[i], true);
    close(p->listen_fd);
    close(p->wake[0]);
    close(p->wake[1]);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int proxy_port(const struct proxy *p)
{
    return p->port;
}

void proxy_set_mode(struct proxy *p, enum proxy_mode mode)
{
    pthread_mutex_lock(&p->mu);
    p->mode = mode;
    pthread_mutex_unlock(&p->mu);
    wake(p);
}

void proxy_cut(struct proxy *p)
{
    pthread_mutex_lock(&p->mu);
    p->cut_req = true;
    pthread_mutex_unlock(&p->mu);
    wake(p);
}

long proxy_accepted(struct proxy *p)
{
    pthread_mutex_lock(&p->mu);
    long n = p->accepted;
    pthread_mutex_unlock(&p->mu);
    return n;
}

long proxy_errors_sent(struct proxy *p)
{
    pthread_mutex_lock(&p->mu);
    long n = p->errors;
    pthread_mutex_unlock(&p->mu);
    return n;
}
