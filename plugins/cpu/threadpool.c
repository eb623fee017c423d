/*
 * threadpool.c - persistent workers woken per task.
 *
 * Hand-off: the caller publishes (fn, arg, nth), then bumps `gen`.  A worker
 * that saw the previous generation spins on `gen` for a short while, then
 * registers as a sleeper under the mutex and waits on the condition
 * variable; the caller broadcasts only when sleepers exist.  Both sides use
 * sequentially consistent operations on `gen` and `sleepers`, so either the
 * worker sees the new generation or the caller sees the sleeper.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lamina/plugin.h"
#include "threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* How long an idle worker spins before it sleeps. */
#define SPIN_NS 300000L

struct cpu_pool {
    int n_threads;
    pthread_t *threads;
    int n_started;

    pthread_mutex_t mu;
    pthread_cond_t cv;

    /* the current task */
    cpu_task_fn fn;
    void *arg;
    int nth;

    atomic_uint gen;        /* bumped once per task */
    atomic_int  pending;    /* workers still running the current task */
    atomic_int  sleepers;   /* workers blocked on cv */
    atomic_int  quit;
};

typedef struct {
    cpu_pool *pool;
    int ith;
} worker_arg;

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Wait until gen differs from `seen`; returns the new generation. */
static unsigned wait_gen(cpu_pool *p, unsigned seen)
{
    unsigned g;
    long t0 = now_ns();
    for (int i = 0;; i++) {
        g = atomic_load(&p->gen);
        if (g != seen || atomic_load(&p->quit)) return g;
        cpu_relax();
        if ((i & 255) == 255 && now_ns() - t0 > SPIN_NS) break;
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->quit))
        pthread_cond_wait(&p->cv, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker_main(void *argp)
{
    worker_arg *wa = argp;
    cpu_pool *p = wa->pool;
    const int ith = wa->ith;
    free(wa);
    /* gen was 0 when the pool was created: a worker that starts late must
     * still run the tasks published before it got here */
    unsigned seen = 0;
    for (;;) {
        seen = wait_gen(p, seen);
        if (atomic_load(&p->quit)) break;
        /* run our share if this task uses us; every worker acknowledges
         * every generation, so the task fields stay stable until then */
        if (ith < p->nth) p->fn(p->arg, ith, p->nth);
        atomic_fetch_sub(&p->pending, 1);
    }
    return NULL;
}

static void wake_all(cpu_pool *p)
{
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

int cpu_pool_create(int n_threads, cpu_pool **out, char *err, size_t err_size)
{
    int rc;
    if (n_threads < 1) n_threads = 1;
    cpu_pool *p = calloc(1, sizeof *p);
    if (!p) goto fail_nomem;
    p->n_threads = n_threads;
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->quit, 0);
    if (pthread_mutex_init(&p->mu, NULL) != 0) { free(p); goto fail_nomem; }
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        goto fail_nomem;
    }
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) { rc = LAMINA_ENOMEM; goto fail_pool; }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) { rc = LAMINA_ENOMEM; goto fail_pool; }
        wa->pool = p;
        wa->ith = i;
        int e = pthread_create(&p->threads[i], NULL, worker_main, wa);
        if (e != 0) {
            free(wa);
            if (err && err_size)
                snprintf(err, err_size, "cpu: pthread_create failed: %s", strerror(e));
            cpu_pool_destroy(p);
            return LAMINA_EIO;
        }
        p->n_started = i;
    }
    *out = p;
    return 0;

fail_pool:
    cpu_pool_destroy(p);
    if (err && err_size) snprintf(err, err_size, "cpu: out of memory creating %d threads", n_threads);
    return rc;
fail_nomem:
    if (err && err_size) snprintf(err, err_size, "cpu: out of memory creating the thread pool");
    return LAMINA_ENOMEM;
}

void cpu_pool_destroy(cpu_pool *p)
{
    if (!p) return;
    atomic_store(&p->quit, 1);
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i <= p->n_started; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int cpu_pool_size(const cpu_pool *p)
{
    return p->n_threads;
}

void cpu_pool_run(cpu_pool *p, cpu_task_fn fn, void *arg, int nth)
{
    if (nth > p->n_threads) nth = p->n_threads;
    if (nth <= 1) {
        fn(arg, 0, 1);
        return;
    }
    /* publish the task, then the generation that announces it */
    p->fn = fn;
    p->arg = arg;
    p->nth = nth;
    atomic_store(&p->pending, p->n_threads - 1);
    atomic_fetch_add(&p->gen, 1);
    wake_all(p);
    fn(arg, 0, nth);
    /* wait until every worker has acknowledged this generation */
    for (int i = 0; atomic_load(&p->pending) > 0; i++) {
        cpu_relax();
        if (i > 4096) sched_yield();
    }
}
