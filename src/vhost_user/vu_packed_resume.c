/*
 * Where a packed ring stands when its frontend cannot say: QEMU keeps no copy of a packed
 * ring's position (a split ring has its used index in shared memory, a packed ring nothing
 * alike), so after its backend died it sends the base of the last start again, however far
 * the ring has moved since. The ring itself tells, from the USED bit of each descriptor:
 * the slots the device has used in the current lap carry USED == the device's wrap counter,
 * and every other slot carries the opposite (buffers the driver made available in this lap,
 * used descriptors of the previous lap, and slots the driver made available again for the
 * next lap all have USED != the wrap counter). So the USED bits read W..W then !W..!W, and
 * the one change is where the device stands; no change at all means slot 0 of the lap after
 * the one whose bits the ring holds (a fresh ring: all zero, slot 0 with wrap counter 1).
 *
 * The frontend's base is replaced only when the ring contradicts it (see below). This holds
 * when every buffer takes one slot, as Linux and DPDK drivers post them with
 * INDIRECT_DESC (chains go through indirect tables). A chain leaves its tail slots in the
 * available format inside the used part and the bits change more than once: then the ring
 * cannot tell, and the caller keeps the frontend's base. We hold no buffer across a stop,
 * so the used position is the available one too.
 *
 * Control thread, with the queue stopped. Reads guest memory once per slot (relaxed loads);
 * a guest that scribbles on its flags only moves its own ring, within it.
 */
#include "vu_int.h"

static inline bool used_bit(const struct vu_queue *q, uint32_t slot)
{
    return __atomic_load_n(&q->pdesc[slot].flags, __ATOMIC_RELAXED) & VRING_PACKED_DESC_F_USED;
}

/* The single change of the USED bits, or false (none, or more than one). */
static bool ring_boundary(const struct vu_queue *q, uint16_t *slot, bool *wrap)
{
    bool first = used_bit(q, 0), prev = first;
    uint32_t boundary = 0, changes = 0;
    for (uint32_t i = 1; i < q->size; i++) {
        bool u = used_bit(q, i);
        if (u != prev) {
            changes++;
            boundary = i;
            prev = u;
        }
    }
    if (changes != 1)
        return false;
    *slot = (uint16_t)boundary;
    *wrap = first;
    return true;
}

/*
 * A base (slot s, wrap w) agrees with the ring when the device could stand there: slot s does
 * not carry USED == w (the device has not used it in this lap), and the slot before it does
 * carry its lap's wrap counter (used, or made available again for the next lap). Zeroed
 * memory agrees with slot 0 of lap 1 (the slot "before" is lap 0's, whose counter is 0), so
 * a fresh ring is always taken at its word. Only a disagreeing base is replaced, and only by
 * a position the ring states unambiguously (one change of the USED bits). Not caught: a stale
 * base in lap 0 whose slot holds a TX buffer used in lap 0 (all flags 0) while the slot before
 * it agrees too; the base then stays, as before this existed.
 */
bool vu_packed_ring_position(const struct vu_queue *q, uint16_t *slot, bool *wrap)
{
    uint16_t s = q->last_used_idx;
    bool w = q->used_wrap;
    uint16_t s_flags = __atomic_load_n(&q->pdesc[s].flags, __ATOMIC_RELAXED);
    /* Zeroed flags say nothing (fresh memory, or a TX buffer used in lap 0). */
    bool here_used = s_flags && !!(s_flags & VRING_PACKED_DESC_F_USED) == w;
    uint32_t prev = s ? s - 1u : q->size - 1u;
    bool prev_lap = s ? w : !w;
    bool prev_ok = used_bit(q, prev) == prev_lap;
    if (!here_used && prev_ok)
        return false;
    return ring_boundary(q, slot, wrap);
}
