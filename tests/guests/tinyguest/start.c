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

/*
 * Application processors (smp=1, see smp.c) start here in real mode, at the page the BSP copies
 * this code to (the SIPI vector), with CS = that page and IP = 0. All they do is report: their
 * initial APIC id (CPUID 1) at TG_AP_MARK + 1, then TG_AP_MAGIC at TG_AP_MARK, and halt.
 */
__asm__(".section .rodata.ap, \"a\"\n"
        ".globl tg_ap_start\n"
        ".globl tg_ap_end\n"
        ".code16\n"
        "tg_ap_start:\n"
        "    cli\n"
        "    xorw %ax, %ax\n"
        "    movw %ax, %ds\n"
        "    movl $1, %eax\n"
        "    cpuid\n"
        "    shrl $24, %ebx\n"
        "    movb %bl, 0x9f01\n"
        "    movb $0xa5, 0x9f00\n"
        "1:  hlt\n"
        "    jmp 1b\n"
        "tg_ap_end:\n"
        ".code64\n"
        ".previous\n");
