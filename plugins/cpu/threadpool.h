/*
 * threadpool.h - persistent worker threads for the CPU plugin.
 *
 * Workers are created once (cpu_pool_create) and woken for each task; the
 * calling thread takes part as thread 0.  Idle workers spin briefly, then
 * sleep on a condition variable, so an idle backend burns no CPU.
 */
#ifndef LAMINA_CPU_THREADPOOL_H
#define LAMINA_CPU_THREADPOOL_H

#include <stddef.h>

typedef struct cpu_pool cpu_pool;

/* One task: called once on each of nth threads with ith = 0 .. nth-1. */
typedef void (*cpu_task_fn)(void *arg, int ith, int nth);

/* Create a pool of n_threads threads in all (n_threads - 1 workers).
 * On success *out is owned by the caller, released with cpu_pool_destroy.
 * Returns 0 or LAMINA_ENOMEM / LAMINA_EIO with a message in err. */
int cpu_pool_create(int n_threads, cpu_pool **out, char *err, size_t err_size);

/* Stop and join the workers, free the pool.  NULL is a no-op. */
void cpu_pool_destroy(cpu_pool *pool);

/* Threads in the pool, counting the caller. */
int cpu_pool_size(const cpu_pool *pool);

/* Run fn on min(nth, size) threads and wait until all have returned.
 * Not reentrant: one task at a time per pool. */
void cpu_pool_run(cpu_pool *pool, cpu_task_fn fn, void *arg, int nth);

#endif
