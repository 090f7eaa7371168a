/*
 * The console: where the UART's output goes and where its input comes from (--console).
 *
 *   stdio      output to stdout; input from stdin when it is a pipe, a socket, or a terminal
 *              whose foreground process group we are (a background VMM touching the terminal
 *              would be stopped by SIGTTIN/SIGTTOU). A terminal gets raw input (no echo, no line
 *              editing, no signal keys: Ctrl-C goes to the guest) and the Ctrl-A escape; output
 *              processing stays on. A file or /dev/null is not read.
 *   none       output dropped, no input.
 *   unix:PATH  a listening socket (mode 0600). One client at a time: it first gets the last
 *              VMM_SERIAL_HISTORY bytes of output, then the output as it comes, and what it
 *              sends is the input. A second client is told the console is busy and closed.
 *              Output while nobody is connected is only kept in the history.
 *
 * Input is read only as far as the UART's receive FIFO has room, so nothing is lost: the rest
 * waits in the pipe, terminal or socket. Main thread only (the UART has its own lock).
 */
#include "vmm_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#define CON_BUSY_MSG    "vswitch-vmm: the console is in use by another client\r\n"
#define CON_RETRY_MS    20 /* the guest has not read its input yet: look again this soon */
#define CON_SOCKET_MODE 0600

enum con_kind { CON_STDIO, CON_NONE, CON_UNIX };

struct vmm_console {
    struct vmm *vm;
    struct vmm_serial *serial;
    enum con_kind kind;
    int in_fd; /* stdin or the socket client; -1: no input now */
    bool tty;
    struct termios saved;
    struct vmm_console_esc esc;
    int listen_fd;
    struct sockaddr_un addr;
};

static int parse(const char *spec, enum con_kind *kind, const char **path)
{
    *path = NULL;
    if (!spec || strcmp(spec, "stdio") == 0) {
        *kind = CON_STDIO;
    } else if (strcmp(spec, "none") == 0) {
        *kind = CON_NONE;
    } else if (strncmp(spec, "unix:", 5) == 0 && spec[5] &&
               strlen(spec + 5) < sizeof(((struct sockaddr_un *)0)->sun_path)) {
        *kind = CON_UNIX;
        *path = spec + 5;
    } else {
        return -EINVAL;
    }
    return 0;
}

int vmm_console_check(const char *spec)
{
    enum con_kind k;
    const char *p;
    return parse(spec, &k, &p);
}

static void open_stdin(struct vmm_console *c)
{
    struct stat st;
    if (fstat(STDIN_FILENO, &st) < 0)
        return;
    if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
        c->in_fd = STDIN_FILENO;
        VLOG(INFO, VMM_MODULE, "console: input from stdin (a pipe)");
        return;
    }
    if (!isatty(STDIN_FILENO) || tcgetpgrp(STDIN_FILENO) != getpgrp() ||
        tcgetattr(STDIN_FILENO, &c->saved) < 0)
        return;
    struct termios raw = c->saved;
    raw.c_iflag &= ~(tcflag_t)(IXON | ICRNL | INLCR | IGNCR | ISTRIP | BRKINT);
    raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ECHONL | ISIG | IEXTEN);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) < 0)
        return;
    c->in_fd = STDIN_FILENO;
    c->tty = true;
    VLOG(INFO, VMM_MODULE, "console: the terminal is the guest's serial port; Ctrl-A x quits");
}

static int open_socket(struct vmm_console *c, const char *path)
{
    struct stat st;
    /* A socket left by an earlier run may go; anything else at the path is not ours. */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            VLOG(ERR, VMM_MODULE, "console: %s exists and is not a socket", path);
            return -EEXIST;
        }
        unlink(path);
    }
    c->addr.sun_family = AF_UNIX;
    strcpy(c->addr.sun_path, path); /* length checked by parse() */
    c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->listen_fd < 0)
        return -errno;
    mode_t old = umask(0777 & ~CON_SOCKET_MODE);
    int rc = bind(c->listen_fd, (struct sockaddr *)&c->addr, sizeof(c->addr));
    umask(old);
    if (rc < 0 || listen(c->listen_fd, 1) < 0) {
        rc = -errno;
        VLOG(ERR, VMM_MODULE, "console: %s: %s", path, strerror(-rc));
        return rc;
    }
    VLOG(INFO, VMM_MODULE, "console: on socket %s", path);
    return 0;
}

struct vmm_console *vmm_console_open(struct vmm *vm, struct vmm_serial *serial, const char *spec)
{
    struct vmm_console *c = calloc(1, sizeof(*c));
    const char *path;
    int rc = -ENOMEM;
    if (!c)
        goto fail;
    c->vm = vm;
    c->serial = serial;
    c->in_fd = c->listen_fd = -1;
    if ((rc = parse(spec, &c->kind, &path)) < 0)
        goto fail;
    switch (c->kind) {
    case CON_STDIO:
        vmm_serial_set_output(serial, STDOUT_FILENO, false);
        open_stdin(c);
        break;
    case CON_NONE:
        break;
    case CON_UNIX:
        if ((rc = open_socket(c, path)) < 0)
            goto fail;
        break;
    }
    return c;
fail:
    vmm_console_close(c);
    errno = -rc;
    return NULL;
}

static void drop_client(struct vmm_console *c)
{
    vmm_serial_set_output(c->serial, -1, false);
    close(c->in_fd);
    c->in_fd = -1;
}

void vmm_console_close(struct vmm_console *c)
{
    if (!c)
        return;
    if (c->tty)
        tcsetattr(STDIN_FILENO, TCSANOW, &c->saved);
    if (c->kind == CON_UNIX) {
        if (c->in_fd >= 0)
            drop_client(c);
        if (c->listen_fd >= 0) {
            close(c->listen_fd);
            unlink(c->addr.sun_path);
        }
    }
    free(c);
}

unsigned vmm_console_pollfds(struct vmm_console *c, struct pollfd *p, int *timeout_ms)
{
    unsigned n = 0;
    if (c->listen_fd >= 0)
        p[n++] = (struct pollfd){.fd = c->listen_fd, .events = POLLIN};
    if (c->in_fd >= 0) {
        if (vmm_serial_rx_room(c->serial) > 0)
            p[n++] = (struct pollfd){.fd = c->in_fd, .events = POLLIN};
        else if (*timeout_ms > CON_RETRY_MS)
            *timeout_ms = CON_RETRY_MS;
    }
    return n;
}

static void accept_client(struct vmm_console *c)
{
    int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    if (c->in_fd >= 0) {
        if (send(fd, CON_BUSY_MSG, strlen(CON_BUSY_MSG), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
            /* it goes away either way */
        }
        close(fd);
        return;
    }
    c->in_fd = fd;
    VLOG(INFO, VMM_MODULE, "console: a client connected");
    vmm_serial_set_output(c->serial, fd, true);
}

/* Input is readable: move what the UART can take. */
static void read_input(struct vmm_console *c)
{
    uint8_t buf[VMM_SERIAL_RX_MAX];
    size_t room = vmm_serial_rx_room(c->serial);
    ssize_t r = read(c->in_fd, buf, room < sizeof(buf) ? room : sizeof(buf));
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (r <= 0) {
        VLOG(INFO, VMM_MODULE, "console: %s%s%s",
             c->kind == CON_UNIX ? "the client went away" : "end of input", r < 0 ? ": " : "",
             r < 0 ? strerror(errno) : "");
        if (c->kind == CON_UNIX) {
            drop_client(c);
        } else {
            if (c->tty)
                tcsetattr(STDIN_FILENO, TCSANOW, &c->saved);
            c->tty = false;
            c->in_fd = -1;
        }
        return;
    }
    size_t n = (size_t)r;
    if (c->tty && vmm_console_escape(&c->esc, buf, &n)) {
        VLOG(INFO, VMM_MODULE, "console: Ctrl-A x: stopping the VM");
        vmm_request_exit(c->vm, VMM_EXIT_POWEROFF, 0);
    }
    vmm_serial_input(c->serial, buf, n); /* fits: no more than the room was read */
}

void vmm_console_handle(struct vmm_console *c, const struct pollfd *p, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (!p[i].revents)
            continue;
        if (p[i].fd == c->listen_fd)
            accept_client(c);
        else if (p[i].fd == c->in_fd)
            read_input(c);
    }
}
