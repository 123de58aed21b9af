/*
 * control.h - the agent's control socket (a unix socket, owner only) and its client.
 *
 * Protocol: the client connects, sends one JSON object on one line, and reads one JSON object
 * back until the agent closes the connection.
 *   {"cmd":"status"}                    -> the live status (the status file's JSON, fresh)
 *   {"cmd":"simulate","collection":C,"doc":D,"type":"CREATE|UPDATE|DELETE","data":{...}}
 *                                       -> {"ok":true} or {"ok":false,"error":"..."}
 *   {"cmd":"resync","collection":C}     -> starts a full resync of C (of every collection when
 *                                          absent): {"ok":true,"collections":[{"path","run",
 *                                          "note"}]}; "note" says why none started (one runs)
 *   {"cmd":"resync-status"}             -> {"ok":true,"collections":[{"path","running","ended",
 *                                          "state","phase","result","docs_read",...}]}; a run
 *                                          numbered `run` has ended once "ended" >= run
 * Unknown commands get {"ok":false,"error":"unknown command ..."}.
 */
#ifndef FIRESYNC_CONTROL_H
#define FIRESYNC_CONTROL_H

#include "common/buf.h"
#include "common/err.h"

struct agent;

/* Listens on cfg->agent.control_socket (a stale socket file is replaced; a live agent on it is
 * an error), mode 0600. */
int agent_control_start(struct agent *a, fserr *e);
/* Stops listening and removes the socket file. */
void agent_control_close(struct agent *a);

/* Client: sends request (one JSON object) to the socket at path and appends the reply to out.
 * Blocking, with a timeout; for the command line only. */
int control_request(const char *path, const char *request, buf *out, fserr *e);

#endif
