#!/bin/bash
# Integration: the UART's receive side under vswitch-vmm, with the tiny guest's echo=1 (it
# enables the receive interrupt, reads a line, and reports IIR and the PIC's request for IRQ 4).
#  1. stdin a pipe: the line arrives, IIR says "received data", IRQ 4 is raised (KVM_IRQ_LINE
#     reached the in-kernel PIC), IIR is clear once the line is read.
#  2. stdin a terminal (a pty from script(1)): raw input, so Ctrl-C is a byte for the guest and
#     not a signal; Ctrl-A Ctrl-A is one Ctrl-A; the terminal settings are restored afterwards.
#  3. Ctrl-A x on the terminal ends the VM (status 0) while the guest still waits for input.
#  4. --console unix:PATH: a client connecting after boot gets the output so far (the history),
#     a second client is turned away, the first one's line reaches the guest, the guest's
#     answer reaches the client; nothing goes to stdout; the socket is removed at exit.
# Needs /dev/kvm (else SKIP, exit 77); script(1) for 2 and 3, python3 for 4 (else those parts
# are skipped, and the output says so).
set -u
# shellcheck source=tests/vmm/lib.sh
. "$(dirname "$0")/lib.sh"

vmm_require "$VSWITCH_VMM" "$TINYGUEST"
vmm_tmpdir vsw-vmm-serial
VMM=("$VSWITCH_VMM" --kernel "$TINYGUEST" --mem 16M)

printf 'hello from the host\n' | timeout 60 "${VMM[@]}" --cmdline 'echo=1' >"$T/pipe.out" \
    2>"$T/pipe.err"
rc=$?
cat "$T/pipe.out"
[ $rc -eq 0 ] || fail "pipe: exit $rc"
grep -q "^serial: iir 0x4 irq4 raised" "$T/pipe.out" || fail "pipe: receive interrupt"
grep -q "^serial: line 'hello from the host'" "$T/pipe.out" || fail "pipe: the line"
grep -q "^serial: iir after 0x1" "$T/pipe.out" || fail "pipe: IIR not clear after reading"

if ! command -v script >/dev/null; then
    echo "SKIP (part): script(1) is missing, no terminal tests"
else
    # The VMM runs in the pty's foreground; stty -g before and after shows the settings it
    # changed came back.
    tty_run() { # input-delay input cmdline name
        (sleep "$1"; printf "$2"; sleep 2) | timeout 60 script -qec \
            "stty -g >$T/$4.before; ${VMM[*]} --cmdline '$3' 2>$T/$4.err; echo rc=\$? >$T/$4.rc; stty -g >$T/$4.after" \
            /dev/null >"$T/$4.out"
        cat "$T/$4.out"
        grep -q '^rc=0$' "$T/$4.rc" || fail "$4: $(cat "$T/$4.rc")"
        cmp -s "$T/$4.before" "$T/$4.after" || fail "$4: terminal settings not restored"
    }
    tty_run 0.5 'x\003y\001\001z\r' 'echo=1 echotimeout=30000' tty
    grep -aq "serial: line 'x"$'\003'"y"$'\001'"z'" "$T/tty.out" || fail "tty: raw bytes"
    tty_run 0.5 'ab\001x' 'echo=1 echotimeout=30000' quit
    grep -q 'console: Ctrl-A x: stopping the VM' "$T/quit.err" || fail "quit: no Ctrl-A x"
    grep -aq 'serial: line' "$T/quit.out" && fail "quit: the guest got a line"
fi

if ! command -v python3 >/dev/null; then
    echo "SKIP (part): python3 is missing, no socket console test"
else
    timeout 60 "${VMM[@]}" --console "unix:$T/con.sock" --cmdline 'echo=1 echotimeout=30000' \
        >"$T/sock.out" 2>"$T/sock.err" &
    VMM_PID=$!
    PIDS+=("$VMM_PID")
    python3 - "$T/con.sock" >"$T/client.out" 2>&1 <<'PY'
import socket, sys, time
path = sys.argv[1]
def connect():
    for _ in range(200):
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            return s
        except OSError:
            time.sleep(0.05)
    sys.exit("no console socket")
def read_until(s, marker, got=b""):
    s.settimeout(20)
    while marker not in got:
        b = s.recv(4096)
        if not b:
            break
        got += b
    return got
time.sleep(0.5)  # the guest has printed its hello by now: it must come from the history
c = connect()
out = read_until(c, b"tinyguest: hello\n")
second = connect()
second.settimeout(5)
print("second client:", second.recv(200).decode().strip())
c.sendall(b"via the socket\n")
out = read_until(c, b"serial: iir after", out)
print(out.decode())
PY
    wait "$VMM_PID"
    rc=$?
    cat "$T/client.out"
    [ $rc -eq 0 ] || fail "socket: exit $rc"
    grep -q '^tinyguest: hello' "$T/client.out" || fail "socket: no history"
    grep -q '^second client: vswitch-vmm: the console is in use' "$T/client.out" ||
        fail "socket: second client not turned away"
    grep -q "^serial: line 'via the socket'" "$T/client.out" || fail "socket: the line"
    [ -s "$T/sock.out" ] && fail "socket: output on stdout too"
    [ -e "$T/con.sock" ] && fail "socket: not removed"
fi

if [ $FAILED -ne 0 ]; then
    for f in "$T"/*.err; do echo "--- $f"; cat "$f"; done
    exit 1
fi
echo "PASS"
exit 0
