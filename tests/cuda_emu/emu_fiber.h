/*
 * emu_fiber.h: the emulated device's fibers: one per CUDA thread of the running block,
 * each with its own stack, switched by a few instructions of our own (emu_fiber.cpp:
 * callee-saved registers, the stack pointer and the floating-point control words; no
 * system call, unlike glibc's swapcontext). A block of 1024 threads that meets a
 * __syncthreads() holds 1024 suspended fibers; a thread that never waits runs to its
 * end on a stack the next thread reuses.
 *
 * Sanitizers: under AddressSanitizer every switch tells ASan which stack is current
 * (__sanitizer_start/finish_switch_fiber), so its stack checks follow the fibers; under
 * ThreadSanitizer (CUVAE_EMU_TSAN) every CUDA thread of a block is a TSan fiber of its own and the
 * switches carry no synchronization, so two CUDA threads that touch the same shared
 * memory with no barrier between them are reported as a race. The barriers and warp
 * exchanges (emu_runtime.cpp) state their synchronization with emu_fiber_release/acquire.
 *
 * x86-64 only (the switch is assembly); the build refuses other architectures.
 */
#ifndef CUVAE_EMU_FIBER_H
#define CUVAE_EMU_FIBER_H

#include <cstddef>

struct emu_fiber {
    void *sp;              /* the saved stack pointer while suspended */
    char *stack;           /* lowest usable byte of the stack (NULL: the host thread's own) */
    size_t stack_size;     /* usable bytes above `stack` */
    void (*entry)(void *); /* what a new fiber runs, with arg */
    void *arg;
    void *asan_fake_stack; /* ASan's per-fiber state, kept across switches */
    void *tsan_fiber;      /* TSan's fiber (CUVAE_EMU_TSAN) */
};

/* The host thread's own context, which the scheduler runs in. */
void emu_fiber_init_host(emu_fiber *host);
/* Prepare f to run entry(arg) on a stack of its own (taken from a pool) when first switched to.
 * slot: the thread's index in its block; under TSan the fiber of that slot is reused from block
 * to block (blocks are ordered one after another anyway), so each of a block's threads is a TSan
 * fiber of its own and none is created per thread of a launch. */
void emu_fiber_create(emu_fiber *f, void (*entry)(void *), void *arg, int slot);
/* Suspend `from` and resume `to`. */
void emu_fiber_switch(emu_fiber *from, emu_fiber *to);
/* The last switch out of a fiber whose entry has returned: `from` never runs again. */
[[noreturn]] void emu_fiber_exit(emu_fiber *from, emu_fiber *to);
/* Return a fiber's stack to the pool (called from the host context): finished, its entry
 * returned; otherwise abandoned mid-kernel. */
void emu_fiber_release(emu_fiber *f, int finished);

/* Happens-before edges for ThreadSanitizer (no-ops without CUVAE_EMU_TSAN): a release on
 * `sync` by one fiber, then an acquire on it by another, orders the first's earlier
 * accesses before the second's later ones. */
void emu_fiber_sync_release(void *sync);
void emu_fiber_sync_acquire(void *sync);

#endif /* CUVAE_EMU_FIBER_H */
