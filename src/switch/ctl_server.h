/*
 * ctl_server: the control socket. A unix stream socket that speaks JSON-RPC 2.0, one request
 * per line (docs/control-protocol.md), and dispatches each request to a table of methods.
 * It knows nothing of the switch: the methods and their context come from the caller (the
 * real table is in rpc.h; tests use a fake one).
 *
 * Thread: the control thread only. The server lives on a vsw_loop; methods are called from
 * the loop's callbacks, one request at a time, so a method never runs concurrently with
 * another or with other loop callbacks.
 *
 * Security model: nothing a client sends is trusted. The peer's uid is checked with
 * SO_PEERCRED at accept (root or the daemon's effective uid); lines are capped at
 * CTL_MAX_LINE bytes; a client's pending output is capped by not reading more requests
 * from it while CTL_OUT_HIGH bytes wait to be sent; no input aborts the process.
 */
#ifndef VSW_CTL_SERVER_H
#define VSW_CTL_SERVER_H

#include "common.h"
#include "loop.h"

#include <jansson.h>
#include <stddef.h>

/* Longest request line, not counting its '\n'. */
#define CTL_MAX_LINE (64 * 1024)
/* Stop reading a client's requests while this much of its output is unsent. */
#define CTL_OUT_HIGH (4 * 1024 * 1024)
/* Clients connected at once; more are sent an error and closed. */
#define CTL_MAX_CLIENTS 64

/* JSON-RPC 2.0 error codes. */
#define RPC_PARSE_ERROR      -32700
#define RPC_INVALID_REQUEST  -32600
#define RPC_METHOD_NOT_FOUND -32601
#define RPC_INVALID_PARAMS   -32602
#define RPC_INTERNAL_ERROR   -32603
#define RPC_FAILED           -32000 /* the operation failed; data.errno says how */

struct rpc_error {
    int code;          /* RPC_* above */
    int errnum;        /* positive errno, sent as data.errno ("EEXIST"); 0: no data */
    char message[256]; /* for a person; becomes error.message */
};

/* Fill `err`. `errnum` may be 0 (no data.errno). */
void rpc_error_set(struct rpc_error *err, int code, int errnum, const char *fmt, ...)
    VSW_PRINTF(4, 5);

/* "EEXIST" for EEXIST; "E<n>" for an errno without a name. Never NULL. */
const char *rpc_errno_name(int errnum);

/*
 * A method. `params` is always a JSON object (an absent or empty-array "params" is passed
 * as an empty object; the server rejects other arrays with -32602), borrowed for the call.
 * Returns the result as a new reference (any JSON value), or NULL after filling `err` (a
 * NULL return with err->code left 0 is sent as -32603 internal error). Called for
 * notifications too; their result or error is discarded.
 */
struct rpc_method {
    const char *name;
    json_t *(*fn)(void *ctx, json_t *params, struct rpc_error *err);
};

struct ctl_server;

/*
 * Listen at `path` and serve requests on `loop`. Creates the parent directory (mode 0755)
 * if missing, replaces a stale socket (one nobody listens on), makes the socket mode 0660.
 * `methods` (n entries) and `ctx` must outlive the server; ctx is passed to every method.
 * Returns NULL and sets errno: EADDRINUSE (a server already listens at path), EEXIST (path
 * exists and is not a socket), ENAMETOOLONG, EINVAL, ENOMEM or another errno from the
 * system calls.
 */
struct ctl_server *ctl_server_create(struct vsw_loop *loop, const char *path,
                                     const struct rpc_method *methods, size_t n, void *ctx);

/*
 * Close every client and the listening socket, and unlink the socket. Not from inside a
 * method (the server is still using the client that called it).
 */
void ctl_server_destroy(struct ctl_server *srv);

/* Clients connected now (for tests and status). */
size_t ctl_server_n_clients(const struct ctl_server *srv);

#endif
