/*
 * event.c - construction and destruction of sink events (see sink.h). An event owns its key,
 * cells, hashes and strings; whoever holds it last frees it with sink_event_free().
 */
#include "mysql/sink.h"

#include "common/xalloc.h"
#include "mysql/page.h"

#include <stdlib.h>

struct sink_event *sink_event_new(enum sink_op op, int coll)
{
    struct sink_event *ev = xcalloc(1, sizeof(*ev));
    ev->op = op;
    ev->coll = coll;
    return ev;
}

void sink_event_free(struct sink_event *ev)
{
    if (!ev)
        return;
    if (ev->cells) {
        for (size_t i = 0; i < ev->ncells; i++)
            free(ev->cells[i].p);
        free(ev->cells);
    }
    free(ev->hashes);
    free(ev->key);
    free(ev->token);
    free(ev->doc_name);
    free(ev->reason);
    free(ev->raw);
    sink_page_free(ev->page);
    free(ev);
}
