/*
 * fuzz_listen.c - libFuzzer target for everything the back channel hands the agent: a
 * WebChannel payload ([[id, data], ...]) is parsed and classified as the transport does, and
 * every ListenResponse in it goes through the Listen state with callbacks that keep a tiny
 * applied index, as the agent's would. Control payloads ("c" hello, noop, stop, close, error)
 * and the forward-POST reply parser are exercised too. Must never crash, leak or hang.
 */
#include "firestore/listen.h"
#include "firestore/webchannel.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t live;

static bool f_seen(void *ud, int t, const char *name, size_t len, struct fs_time ut)
{
    (void)ud, (void)t, (void)name;
    return (len + (size_t)ut.nanos) % 3 == 0;
}

static int f_upsert(void *ud, int t, struct fsdoc *doc)
{
    (void)ud, (void)t;
    live++;
    fsdoc_release(doc);
    return 0;
}

static int f_remove(void *ud, int t, const char *name, size_t len, struct fs_time rt)
{
    (void)ud, (void)t, (void)name, (void)len, (void)rt;
    if (live)
        live--;
    return 0;
}

static void f_reset(void *ud, int t)
{
    (void)ud, (void)t;
}

static int f_consistent(void *ud, int t, const char *tok, struct fs_time rt, bool after)
{
    (void)ud, (void)t, (void)tok, (void)rt, (void)after;
    return 0;
}

static size_t f_live(void *ud, int t)
{
    (void)ud, (void)t;
    return live;
}

static void f_error(void *ud, int t, int code, const char *msg)
{
    (void)ud, (void)t, (void)code, (void)msg;
}

static int f_send(void *ud, const char *json)
{
    (void)ud, (void)json;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct listen_callbacks cb = {f_seen,       f_upsert, f_remove, f_reset,
                                               f_consistent, f_live,   f_error,  f_send,
                                               NULL};
    listen_state *ls = listen_new("projects/p/databases/(default)", &cb, NULL);
    json_doc d;
    fserr e = {0};
    int it = 0, msg, arr;
    int64_t id, reply[3];
    struct wc_hello h;

    live = 0;
    listen_add_target(ls, "employees", "VDE=", &e);
    listen_add_target(ls, "users/*/orders", NULL, &e);
    listen_connect(ls, &e);
    json_doc_init(&d);
    wc_parse_post_reply((const char *)data, size, reply, &e);
    if (wc_payload_parse(&d, (const char *)data, size, &e) == 0) {
        while (wc_array_next(&d, &it, -1, &id, &arr)) {
            switch (wc_classify(&d, arr, &msg)) {
            case WC_K_HELLO:
                wc_parse_hello(&d, arr, &h, &e);
                break;
            case WC_K_DATA:
                listen_handle(ls, &d, msg, &e);
                break;
            default:
                break;
            }
        }
    }
    json_doc_release(&d);
    listen_free(ls);
    return 0;
}
