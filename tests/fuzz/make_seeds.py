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
