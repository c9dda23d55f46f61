/*
 * emu_fiber.cpp: the fibers of emu_fiber.h: the x86-64 context switch, the stack pool
 * (mmap'd stacks with a guard page below, so an overflow faults instead of corrupting a
 * neighbour), and the ASan / TSan hand-offs at each switch.
 */
#include "emu_fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#if !defined(__x86_64__)
#error "the emulated device's fiber switch is x86-64 assembly"
#endif

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

#ifdef CUVAE_EMU_TSAN
extern "C" {
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
}
#define EMU_TSAN_NO_SYNC 1u /* __tsan_switch_to_fiber_no_sync */
#endif

/* cuda_emu_ctx_switch(save, next): push the callee-saved registers and the MXCSR and x87
 * control words, store the stack pointer in *save, load next, pop the same, return into
 * the other context. A new fiber's stack is laid out so that this "returns" into
 * cuda_emu_ctx_entry, which calls r13(r12) with an aligned stack. */
extern "C" void cuda_emu_ctx_switch(void **save, void *next);
extern "C" void cuda_emu_ctx_entry(void);
asm(R"(
    .text
    .globl cuda_emu_ctx_switch
    .type cuda_emu_ctx_switch, @function
cuda_emu_ctx_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size cuda_emu_ctx_switch, .-cuda_emu_ctx_switch

    .globl cuda_emu_ctx_entry
    .type cuda_emu_ctx_entry, @function
cuda_emu_ctx_entry:
    movq %r12, %rdi
    callq *%r13
    ud2
    .size cuda_emu_ctx_entry, .-cuda_emu_ctx_entry
)");

/* Stacks: sanitizers' frames are larger (redzones, fake stacks' bookkeeping). */
#if EMU_ASAN || defined(CUVAE_EMU_TSAN)
static const size_t STACK_BYTES = 512 * 1024;
#else
static const size_t STACK_BYTES = 128 * 1024;
#endif

static std::vector<char *> stack_pool; /* stacks (their usable low ends) free for reuse */

static char *stack_take(void)
{
    if (!stack_pool.empty()) {
        char *s = stack_pool.back();
        stack_pool.pop_back();
        return s;
    }
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *m = (char *)mmap(nullptr, STACK_BYTES + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        perror("cuda emulator: mmap of a fiber stack");
        abort();
    }
    if (mprotect(m, page, PROT_NONE) != 0) { /* the guard page below the stack */
        perror("cuda emulator: mprotect of a fiber stack's guard page");
        abort();
    }
    return m + page;
}

static void fiber_main(void *arg);

#if EMU_ASAN
struct emu_host_stack {
    const void *bottom; /* the host thread's stack, as ASan reports it on the first switch */
    size_t size;
};
static emu_host_stack host_stack;
#endif

void emu_fiber_init_host(emu_fiber *host)
{
    *host = emu_fiber{};
#ifdef CUVAE_EMU_TSAN
    host->tsan_fiber = __tsan_get_current_fiber();
#endif
}

#ifdef CUVAE_EMU_TSAN
static std::vector<void *> tsan_slots; /* TSan's fiber for each thread index of a block */
#endif

void emu_fiber_create(emu_fiber *f, void (*entry)(void *), void *arg, int slot)
{
    *f = emu_fiber{};
    f->stack = stack_take();
    f->stack_size = STACK_BYTES;
    f->entry = entry;
    f->arg = arg;
#ifdef CUVAE_EMU_TSAN
    if ((size_t)slot >= tsan_slots.size())
        tsan_slots.resize((size_t)slot + 1, nullptr);
    if (tsan_slots[(size_t)slot] == nullptr)
        tsan_slots[(size_t)slot] = __tsan_create_fiber(0);
    f->tsan_fiber = tsan_slots[(size_t)slot];
#else
    (void)slot;
#endif
    /* From the top down: the return address cuda_emu_ctx_switch's `ret` takes, then the six
     * registers it pops (r12 = f, r13 = fiber_main), then the control words. */
    uintptr_t top = ((uintptr_t)(f->stack + f->stack_size)) & ~(uintptr_t)15;
    void **sp = (void **)(top - 16);
    *--sp = (void *)cuda_emu_ctx_entry;
    *--sp = nullptr;                   /* rbp */
    *--sp = nullptr;                   /* rbx */
    *--sp = (void *)f;                 /* r12 */
    *--sp = (void *)fiber_main;        /* r13 */
    *--sp = nullptr;                   /* r14 */
    *--sp = nullptr;                   /* r15 */
    unsigned int mxcsr;
    unsigned short fpucw;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpucw));
    --sp;
    memcpy((char *)sp, &mxcsr, 4);
    memcpy((char *)sp + 4, &fpucw, 2);
    f->sp = sp;
}

void emu_fiber_release(emu_fiber *f, int finished)
{
#if EMU_ASAN
    /* A fiber abandoned mid-kernel (a failed launch) leaves its frames' redzones poisoned; one
     * that finished has unwound them. (Unpoisoning every stack would cost 64 KiB of shadow
     * writes per CUDA thread.) */
    if (f->stack && !finished)
        ASAN_UNPOISON_MEMORY_REGION(f->stack, f->stack_size);
#else
    (void)finished;
#endif
    if (f->stack)
        stack_pool.push_back(f->stack);
    f->stack = nullptr;
    f->tsan_fiber = nullptr; /* the slot's TSan fiber stays, for the next block */
}

/* After a switch lands in `to`: ASan learns the stack it left (the host's, the first time). */
static void landed(emu_fiber *to)
{
#if EMU_ASAN
    const void *from_bottom = nullptr;
    size_t from_size = 0;
    __sanitizer_finish_switch_fiber(to->asan_fake_stack, &from_bottom, &from_size);
    if (to->stack != nullptr && host_stack.bottom == nullptr) {
        host_stack.bottom = from_bottom;
        host_stack.size = from_size;
    }
#else
    (void)to;
#endif
}

static void leaving(emu_fiber *from, emu_fiber *to, int for_good)
{
#if EMU_ASAN
    const void *bottom = to->stack ? (const void *)to->stack : host_stack.bottom;
    size_t size = to->stack ? to->stack_size : host_stack.size;
    __sanitizer_start_switch_fiber(for_good ? nullptr : &from->asan_fake_stack, bottom, size);
#else
    (void)from;
    (void)for_good;
#endif
#ifdef CUVAE_EMU_TSAN
    __tsan_switch_to_fiber(to->tsan_fiber, EMU_TSAN_NO_SYNC);
#else
    (void)to;
#endif
}

void emu_fiber_switch(emu_fiber *from, emu_fiber *to)
{
    leaving(from, to, 0);
    cuda_emu_ctx_switch(&from->sp, to->sp);
    landed(from);
}

void emu_fiber_exit(emu_fiber *from, emu_fiber *to)
{
    leaving(from, to, 1);
    cuda_emu_ctx_switch(&from->sp, to->sp);
    abort(); /* a finished fiber is never resumed */
}

static void fiber_main(void *arg)
{
    emu_fiber *f = (emu_fiber *)arg;
    landed(f);
    f->entry(f->arg); /* never returns: the entry ends with emu_fiber_exit */
    abort();
}

void emu_fiber_sync_release(void *sync)
{
#ifdef CUVAE_EMU_TSAN
    __tsan_release(sync);
#else
    (void)sync;
#endif
}

void emu_fiber_sync_acquire(void *sync)
{
#ifdef CUVAE_EMU_TSAN
    __tsan_acquire(sync);
#else
    (void)sync;
#endif
}
