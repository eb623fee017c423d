/*
 * emu.cc - the kernel emulator of the fake GPU runtimes (see emu.h).
 *
 * A block's threads run on fibers: small stacks of their own, switched by
 * a few lines of assembly on x86-64 (callee-saved registers, MXCSR and
 * the x87 control word; no system call, unlike swapcontext) and by
 * ucontext elsewhere.  The scheduler starts the block's threads one after
 * the other; a thread runs until it returns or calls gpu_sync().  A thread
 * that returned gives its fiber to the next thread, so a kernel without
 * barriers needs one fiber; one that waits at a barrier keeps its fiber
 * until the round of every thread reaching that barrier is complete, then
 * they all go on.  That is __syncthreads' meaning: no thread passes a
 * barrier before every thread of the block has reached it.
 *
 * One launch runs at a time in the process (a mutex), so the indices and
 * GPU_SHARED arrays are plain globals; the fibers are reused by every
 * launch.  The kernels are not instrumented by the sanitizers, which never
 * see these stacks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mutex>
#include <vector>

#include "emu.h"

gpu_emu_idx gpu_emu_cur;

namespace {

struct kernel_entry {
    const char *name;
    gpu_emu_fn fn;
};

std::vector<kernel_entry> &table()
{
    static std::vector<kernel_entry> t;
    return t;
}

const size_t STACK = 64 * 1024;

} // namespace

#if defined(__x86_64__)
/* lamina_emu_switch(&save, to): save this context's stack pointer in
 * *save, continue the one whose stack pointer is `to`. */
extern "C" void lamina_emu_switch(void **save, void *to);
__asm__(".text\n"
        ".globl lamina_emu_switch\n"
        ".hidden lamina_emu_switch\n"
        ".type lamina_emu_switch, @function\n"
        "lamina_emu_switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $8, %rsp\n"
        "    stmxcsr (%rsp)\n"
        "    fnstcw 4(%rsp)\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    ldmxcsr (%rsp)\n"
        "    fldcw 4(%rsp)\n"
        "    addq $8, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size lamina_emu_switch, .-lamina_emu_switch\n");
#else
#include <ucontext.h>
#endif

namespace {

struct fiber {
    char *stack;
#if defined(__x86_64__)
    void *sp;
#else
    ucontext_t ctx;
#endif
    /* the thread it runs, set by the scheduler */
    int tid;
    int done;                   /* the thread returned */
};

struct sched {
    std::vector<fiber *> pool;  /* every fiber of this host thread */
#if defined(__x86_64__)
    void *sp;
#else
    ucontext_t ctx;
#endif
    fiber *cur;
    gpu_emu_fn fn;
    const kargs *args;
    gpu_emu_idx idx;            /* block indices of the block running */
    std::vector<fiber *> wait_a, wait_b;   /* at a barrier (no allocation per block) */
};

sched *g_sched;
std::mutex g_launch;

void to_sched(fiber *f)
{
#if defined(__x86_64__)
    lamina_emu_switch(&f->sp, g_sched->sp);
#else
    swapcontext(&f->ctx, &g_sched->ctx);
#endif
}

void to_fiber(sched *s, fiber *f)
{
    s->cur = f;
    gpu_emu_cur = s->idx;
    gpu_emu_cur.tid = f->tid;
#if defined(__x86_64__)
    lamina_emu_switch(&s->sp, f->sp);
#else
    swapcontext(&s->ctx, &f->ctx);
#endif
}

/* A fiber's life: run the thread it was given, report, wait for the next. */
[[noreturn]] void fiber_main()
{
    for (;;) {
        sched *s = g_sched;
        fiber *f = s->cur;
        s->fn(s->args);
        f->done = 1;
        to_sched(f);
    }
}

fiber *fiber_new()
{
    fiber *f = new fiber();
    f->stack = (char *)malloc(STACK);
    if (f->stack == NULL) {
        delete f;
        return NULL;
    }
#if defined(__x86_64__)
    /* the frame lamina_emu_switch pops: control words, six registers,
     * then fiber_main as the return address (16-byte aligned slot) */
    uintptr_t top = ((uintptr_t)f->stack + STACK - 64) & ~(uintptr_t)15;
    uint64_t *p = (uint64_t *)top;
    *--p = 0;                                   /* alignment */
    *--p = (uint64_t)(uintptr_t)&fiber_main;    /* at a 16-byte boundary */
    for (int i = 0; i < 6; i++)
        *--p = 0;                               /* rbp rbx r12 r13 r14 r15 */
    uint32_t cw[2];
    __asm__ volatile("stmxcsr %0" : "=m"(cw[0]));
    __asm__ volatile("fnstcw %0" : "=m"(cw[1]));
    *--p = (uint64_t)cw[0] | ((uint64_t)(cw[1] & 0xffff) << 32);
    f->sp = p;
#else
    getcontext(&f->ctx);
    f->ctx.uc_stack.ss_sp = f->stack;
    f->ctx.uc_stack.ss_size = STACK;
    f->ctx.uc_link = NULL;
    makecontext(&f->ctx, (void (*)())fiber_main, 0);
#endif
    return f;
}

sched *sched_get()
{
    if (g_sched == NULL) {
        g_sched = new sched();   /* one, for the process's lifetime */
        g_sched->wait_a.reserve(1024);
        g_sched->wait_b.reserve(1024);
        g_sched->pool.reserve(1024);
    }
    return g_sched;
}

/* All threads of one block, to completion.  0, or -1 when out of memory. */
int run_block(sched *s, unsigned bx)
{
    std::vector<fiber *> *waiting = &s->wait_a, *still = &s->wait_b;
    size_t next_free = 0;            /* pool[next_free..] are idle */
    fiber *spare = NULL;             /* the fiber of a thread that returned */

    waiting->clear();
    /* 1. start every thread; those reaching a barrier keep their fiber */
    for (unsigned t = 0; t < bx; t++) {
        fiber *f = spare;
        spare = NULL;
        if (f == NULL) {
            if (next_free == s->pool.size()) {
                fiber *n = fiber_new();
                if (n == NULL)
                    return -1;
                s->pool.push_back(n);
            }
            f = s->pool[next_free++];
        }
        f->tid = (int)t;
        f->done = 0;
        to_fiber(s, f);
        if (f->done)
            spare = f;
        else
            waiting->push_back(f);
    }
    /* 2. rounds: every waiting thread on to its next barrier, or its end */
    while (!waiting->empty()) {
        still->clear();
        for (fiber *f : *waiting) {
            to_fiber(s, f);
            if (!f->done)
                still->push_back(f);
        }
        std::swap(waiting, still);
    }
    return 0;
}

} // namespace

void gpu_emu_register(const char *name, gpu_emu_fn fn)
{
    table().push_back(kernel_entry{ name, fn });
}

void gpu_emu_sync(void)
{
    if (g_sched != NULL && g_sched->cur != NULL)
        to_sched(g_sched->cur);
}

gpu_emu_fn emu_find(const char *name)
{
    for (const kernel_entry &e : table())
        if (strcmp(e.name, name) == 0)
            return e.fn;
    return NULL;
}

int emu_launch(gpu_emu_fn fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
               unsigned by, unsigned bz, const kargs *args, char *err, size_t err_size)
{
    if (fn == NULL || gx == 0 || gy == 0 || gz != 1 || bx == 0 || bx > 1024 || by != 1 ||
        bz != 1) {
        snprintf(err, err_size, "emulator: launch grid %ux%ux%u block %ux%ux%u not supported",
                 gx, gy, gz, bx, by, bz);
        return -1;
    }
    std::lock_guard<std::mutex> hold(g_launch);
    sched *s = sched_get();
    if (s->cur != NULL) {
        snprintf(err, err_size, "emulator: launch from inside a kernel");
        return -1;
    }
    s->fn = fn;
    s->args = args;
    s->idx.nth = (int)bx;
    s->idx.grid_x = gx;
    for (unsigned y = 0; y < gy; y++) {
        for (unsigned x = 0; x < gx; x++) {
            s->idx.bid_x = x;
            s->idx.bid_y = y;
            if (run_block(s, bx) < 0) {
                s->cur = NULL;
                snprintf(err, err_size, "emulator: out of memory for fiber stacks");
                return -1;
            }
        }
    }
    s->cur = NULL;
    return 0;
}
