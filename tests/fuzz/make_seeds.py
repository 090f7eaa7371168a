#!/usr/bin/env python3
"""Writes the committed seed corpora of the fuzz targets (tests/fuzz/corpus/*). Run it again
after changing a target's input format."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
GPA = 0x40000000

def desc(addr, length, flags, nxt):
    return struct.pack("<QIHH", addr, length, flags, nxt)

def ring_area(descs, avail_idx, avail_ring):
    area = bytearray(0x3000)
    d = b"".join(descs)
    area[0:len(d)] = d
    av = struct.pack("<HH", 0, avail_idx) + b"".join(struct.pack("<H", x) for x in avail_ring)
    area[0x1000:0x1000 + len(av)] = av
    return area

def split_seed(feat, tx_descs, tx_avail, rx_descs, rx_avail, extra=b""):
    rx = ring_area(rx_descs, len(rx_avail), rx_avail)
    tx = ring_area(tx_descs, len(tx_avail), tx_avail)
    data = bytearray(rx + tx)
    data[0x400:0x400 + len(extra)] = extra  # becomes guest memory at GPA + 0x8400
    return bytes([feat]) + bytes(data)

def write(target, name, blob):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob)

F_NEXT, F_WRITE, F_IND = 1, 2, 4
rx = [desc(GPA + 0x20000 + i * 2048, 2048, F_WRITE, 0) for i in range(8)]
write("vu_split", "single", split_seed(3, [desc(GPA + 0x10000, 12 + 60, 0, 0)], [0], rx, list(range(8))))
write("vu_split", "chain", split_seed(3, [desc(GPA + 0x10000, 12, F_NEXT, 1), desc(GPA + 0x11000, 1500, 0, 0)],
                                      [0], rx, list(range(8))))
write("vu_split", "burst", split_seed(2, [desc(GPA + 0x10000 + i * 128, 100, 0, 0) for i in range(16)],
                                      list(range(16)), rx, list(range(8))))
ind = desc(GPA + 0x10000, 12, F_NEXT, 1) + desc(GPA + 0x11000, 600, 0, 0)
write("vu_split", "indirect", split_seed(7, [desc(GPA + 0x8400, 32, F_IND, 0)], [0], rx, list(range(8)), ind))
write("vu_split", "mrg_big", split_seed(3, [desc(GPA + 0x10000, 12 + 9000, 0, 0)], [0], rx, list(range(8))))

# vu_packed: [features][TX base][RX base][RX ring][RX driver area][TX ring][TX driver area][memory at GPA + 0x8000]
QP = 64
P_AVAIL, P_USED = 1 << 7, 1 << 15

def pdesc(addr, length, id_, flags):
    return struct.pack("<QIHH", addr, length, id_, flags)

def avail(wrap):
    return P_AVAIL if wrap else P_USED

def pring(entries):
    """entries: {slot: (addr, len, id, flags)} -> the 64-slot descriptor ring."""
    r = bytearray(QP * 16)
    for slot, (a, l, i, f) in entries.items():
        r[slot * 16:slot * 16 + 16] = pdesc(a, l, i, f)
    return bytes(r)

def packed_seed(feat, tx, rx, tx_base=0, rx_base=0, tx_event=(0, 0), rx_event=(0, 0), extra=b""):
    ev = lambda e: struct.pack("<HH", e[0], e[1])
    return (bytes([feat, tx_base, rx_base]) + pring(rx) + ev(rx_event) + pring(tx) + ev(tx_event)
            + extra)

prx = {i: (GPA + 0x20000 + i * 2048, 2048, i, F_WRITE | avail(True)) for i in range(8)}
write("vu_packed", "single", packed_seed(3, {0: (GPA + 0x10000, 12 + 60, 0, avail(True))}, prx))
write("vu_packed", "chain", packed_seed(3, {0: (GPA + 0x10000, 12, 0, F_NEXT | avail(True)),
                                            1: (GPA + 0x11000, 1500, 0, avail(True))}, prx))
write("vu_packed", "burst", packed_seed(2, {i: (GPA + 0x10000 + i * 128, 100, i, avail(True)) for i in range(16)},
                                        prx, rx_event=(2 | 0x8000, 2)))
pind = pdesc(GPA + 0x10000, 12, 0, 0) + pdesc(GPA + 0x11000, 600, 0, 0)
write("vu_packed", "indirect", packed_seed(7, {0: (GPA + 0x8000, 32, 5, F_IND | avail(True))}, prx, extra=pind))
write("vu_packed", "mrg_big", packed_seed(3, {0: (GPA + 0x10000, 12 + 9000, 0, avail(True))}, prx))
# both rings start at slot 62 of lap 1; the TX chain and the RX buffers cross into lap 0
wrap_tx = {62: (GPA + 0x10000, 12, 1, F_NEXT | avail(True)), 63: (GPA + 0x11000, 100, 1, F_NEXT | avail(True)),
           0: (GPA + 0x12000, 100, 1, avail(False))}
wrap_rx = {62: (GPA + 0x20000, 64, 0, F_WRITE | avail(True)), 63: (GPA + 0x21000, 64, 1, F_WRITE | avail(True)),
           0: (GPA + 0x22000, 2048, 2, F_WRITE | avail(False))}
write("vu_packed", "wrap", packed_seed(3, wrap_tx, wrap_rx, tx_base=62, rx_base=62))
# lap 0 from the start: base bit 6 clears the wrap counters
lap0 = {5: (GPA + 0x10000, 12 + 60, 3, avail(False))}
write("vu_packed", "lap0", packed_seed(2, lap0, {5: (GPA + 0x20000, 2048, 4, F_WRITE | avail(False))},
                                       tx_base=0x45, rx_base=0x45, tx_event=(6, 2), rx_event=(6, 2)))
# the RX buffer overlaps the TX frame it receives (a guest aliasing its own buffers)
write("vu_packed", "overlap", packed_seed(3, {0: (GPA + 0x10000, 12 + 60, 0, avail(True))},
                                          {0: (GPA + 0x10010, 2048, 0, F_WRITE | avail(True))}))

# vu_msg: records [u8 nfds | 0x80 eventfd][hdr][payload]
def rec(req, payload=b"", fds=0):
    return bytes([fds]) + struct.pack("<III", req, 1, len(payload)) + payload

UVA = 0x7F0000000000
feat = (1 << 32) | (1 << 30) | (1 << 15) | (1 << 29) | (1 << 28)
msgs = [rec(3), rec(1), rec(15), rec(16, struct.pack("<Q", 0x9)), rec(2, struct.pack("<Q", feat)),
        rec(5, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, 1 << 20, UVA, 0), fds=1)]
for q in range(2):
    base = UVA + q * 0x4000
    msgs += [rec(8, struct.pack("<II", q, 64)), rec(10, struct.pack("<II", q, 0)),
             rec(9, struct.pack("<IIQQQQ", q, 0, base, base + 0x2000, base + 0x1000, 0)),
             rec(12, struct.pack("<Q", q), fds=0x81), rec(13, struct.pack("<Q", q), fds=0x81),
             rec(18, struct.pack("<II", q, 1))]
write("vu_msg", "startup", b"".join(msgs))
write("vu_msg", "getbase", b"".join(msgs + [rec(11, struct.pack("<II", 1, 0))]))
write("vu_msg", "memslots", b"".join(msgs[:5] + [rec(36), rec(37, struct.pack("<Q", 0) + struct.pack("<QQQQ", 0, 1 << 20, UVA, 0), fds=1),
                                                  rec(38, struct.pack("<Q", 0) + struct.pack("<QQQQ", 0, 1 << 20, UVA, 0))]))
write("vu_msg", "garbage", bytes(range(256)) * 4)
# a migration: NET_MTU, LOG_SHMFD and RARP negotiated, rings re-addressed with the log flag,
# a dirty log (memfd), LOG_ALL, then NET_SET_MTU and SEND_RARP; the bursts afterwards log
mig = [rec(3), rec(1), rec(15), rec(16, struct.pack("<Q", 0x9 | 0x2 | 0x4 | 0x10)),
       rec(2, struct.pack("<Q", feat)),
       rec(5, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, 1 << 20, UVA, 0), fds=1)]
for q in range(2):
    base = UVA + q * 0x4000
    mig += [rec(8, struct.pack("<II", q, 64)), rec(10, struct.pack("<II", q, 0)),
            rec(9, struct.pack("<IIQQQQ", q, 1, base, base + 0x2000, base + 0x1000,
                               q * 0x4000 + 0x2000)),
            rec(12, struct.pack("<Q", q), fds=0x81), rec(13, struct.pack("<Q", q), fds=0x81),
            rec(18, struct.pack("<II", q, 1))]
mig += [rec(6, struct.pack("<QQ", 0x100, 0x1000), fds=1), rec(2, struct.pack("<Q", feat | 1 << 26)),
        rec(20, struct.pack("<Q", 1500)), rec(19, bytes([0x52, 0x54, 0, 0, 0, 1, 0, 0]))]
write("vu_msg", "migrate", b"".join(mig))
