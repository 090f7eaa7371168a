/*
 * rpc: the control protocol's methods (docs/control-protocol.md) as a ctl_server method
 * table over the switch API (switch.h). Each method checks its params strictly (types,
 * ranges, names, no unknown members: -32602) and turns a switch error (-errno) into -32000
 * with data.errno and the switch's message.
 *
 * Thread: control thread (the methods run from ctl_server callbacks on the vsw_loop).
 */
#ifndef VSW_RPC_H
#define VSW_RPC_H

#include "ctl_server.h"

#include <stddef.h>

/* Limits of the bridge options, inclusive. */
#define RPC_AGE_MIN      1u
#define RPC_AGE_MAX      1000000u
#define RPC_MAX_MACS_MIN 1u
#define RPC_MAX_MACS_MAX 1048576u

/*
 * The method table; *n gets its length. Static, never freed. The methods' ctx is the
 * struct vsw *: ctl_server_create(loop, path, vsw_rpc_methods(&n), n, sw).
 */
const struct rpc_method *vsw_rpc_methods(size_t *n);

#endif
