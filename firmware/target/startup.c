/* Reset and fault handling for the Cortex-M4 harness under QEMU (mps2-an386). */
#include <stdint.h>

#include "semihosting.h"

extern uint32_t __bss_start;
extern uint32_t __bss_end;
extern uint32_t __stack_top;

int main(void);
void cc_reset_handler(void);
void cc_fault_handler(void);

void cc_fault_handler(void) {
  sh_write("FAULT\n");
  sh_exit(0);
}

void cc_reset_handler(void) {
  volatile uint32_t* const cpacr = (volatile uint32_t*)0xE000ED88u;
  uint32_t* p;
  /* Full access to coprocessors 10 and 11 (the FPU): hard-float code faults without it. */
  *cpacr |= 0xFu << 20;
  __asm__ volatile("dsb\n\tisb" ::: "memory");
  for (p = &__bss_start; p < &__bss_end; ++p)
    *p = 0;
  sh_exit(main() == 0);
}

/* Initial stack pointer, reset, NMI, HardFault, MemManage, BusFault, UsageFault. */
__attribute__((section(".vectors"), used)) static void (*const vector_table[])(void) = {
    (void (*)(void))(uintptr_t)&__stack_top,
    cc_reset_handler,
    cc_fault_handler,
    cc_fault_handler,
    cc_fault_handler,
    cc_fault_handler,
    cc_fault_handler,
};
