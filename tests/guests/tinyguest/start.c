/*
 * tinyguest entry: vswitch-vmm enters _start in 64-bit mode with interrupts off, flat
 * segments, identity paging, %rdi = the command line. We switch to our own stack.
 */
#include "tg.h"

void tg_main(const char *cmdline);

static uint8_t stack[16384] __attribute__((aligned(16)));

__asm__(".section .text.start, \"ax\"\n"
        ".globl _start\n"
        "_start:\n"
        "    leaq stack+16384(%rip), %rsp\n"
        "    call tg_main\n"
        "1:  hlt\n"
        "    jmp 1b\n"
        ".previous\n");

/* Keep the stack symbol: only the asm above refers to it. */
void *tg_stack_ref = stack;
