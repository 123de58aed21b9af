/*
 * proxy.h - a small TCP proxy for tests, between the agent and the Firestore emulator, that
 * injects the network faults production sees: connections cut, a stream that stalls, a server
 * that answers with errors.
 *
 * It listens on 127.0.0.1 (an ephemeral port) and forwards every accepted connection to
 * 127.0.0.1:upstream_port, byte for byte, on its own thread. From any other thread:
 *
 *   proxy_cut()         resets every open connection at once (RST, as a dropped NAT entry)
 *   PROXY_STALL         forwards nothing in either direction and accepts nothing new; what is
 *                       already in flight waits (the kernel buffers it) and flows again when
 *                       the mode goes back to PROXY_PASS, as a network that hangs does
 *   PROXY_ERROR         resets open connections and answers each new request with
 *                       "503 Service Unavailable" and a Google-style JSON error, then closes
 *   PROXY_PASS          forwards again
 *
 * Lifetime: proxy_start() returns once the socket listens; proxy_free() (NULL is fine) stops
 * the thread and closes everything. The proxy owns its sockets and buffers.
 */
#ifndef FIRESYNC_TEST_PROXY_H
#define FIRESYNC_TEST_PROXY_H

#include "common/err.h"

enum proxy_mode { PROXY_PASS, PROXY_STALL, PROXY_ERROR };

struct proxy;

struct proxy *proxy_start(int upstream_port, fserr *e);
void proxy_free(struct proxy *p);

int proxy_port(const struct proxy *p);
void proxy_set_mode(struct proxy *p, enum proxy_mode mode);
void proxy_cut(struct proxy *p);
/* Connections accepted so far, and requests answered with 503. */
long proxy_accepted(struct proxy *p);
long proxy_errors_sent(struct proxy *p);

#endif
