/* Persistent worker pool (see threadpool.h).
 *
 * Hand-off: the caller publishes (fn, ctx), sets `pending` to the number of
 * workers and bumps `generation`; a worker that sees a new generation runs the
 * task and decrements `pending`. Workers spin on `generation` for a while
 * (decode steps issue hundreds of short tasks per token) and then block on a
 * condition variable; the generation is bumped under the mutex so a worker
 * about to block cannot miss it. */
#include "threadpool.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define SPIN_WORKER (1 << 15)   /* polls before a worker goes to sleep */
#define SPIN_CALLER (1 << 12)   /* polls before the caller starts yielding */

struct worker {
    bn_threadpool *pool;
    int ith;
    pthread_t thread;
};

struct bn_threadpool {
    int n_threads;
    struct worker *workers;     /* n_threads - 1 */
    int n_started;

    bn_task_fn fn;              /* the current task, valid for `generation` */
    void *ctx;
    atomic_uint generation;
    atomic_int pending;         /* workers still running the current task */
    atomic_int quit;

    pthread_mutex_t mutex;
    pthread_cond_t wake;
};

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Waits until the generation differs from `seen`; returns the new one. */
static unsigned wait_for_task(bn_threadpool *pool, unsigned seen) {
    for (int i = 0; i < SPIN_WORKER; i++) {
        unsigned g = atomic_load_explicit(&pool->generation, memory_order_acquire);
        if (g != seen) return g;
        cpu_relax();
    }
    pthread_mutex_lock(&pool->mutex);
    unsigned g;
    while ((g = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen)
        pthread_cond_wait(&pool->wake, &pool->mutex);
    pthread_mutex_unlock(&pool->mutex);
    return g;
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    bn_threadpool *pool = w->pool;
    unsigned seen = 0;
    for (;;) {
        seen = wait_for_task(pool, seen);
        if (atomic_load_explicit(&pool->quit, memory_order_acquire)) break;
        pool->fn(pool->ctx, w->ith, pool->n_threads);
        atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_acq_rel);
    }
    return NULL;
}

/* Publishes the next generation (a task or the quit flag) and wakes sleepers. */
static void publish(bn_threadpool *pool) {
    pthread_mutex_lock(&pool->mutex);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_acq_rel);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
}

void bn_threadpool_free(bn_threadpool *pool) {
    if (!pool) return;
    if (pool->n_started > 0) {
        atomic_store_explicit(&pool->quit, 1, memory_order_release);
        publish(pool);
        for (int i = 0; i < pool->n_started; i++) pthread_join(pool->workers[i].thread, NULL);
    }
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->mutex);
    free(pool->workers);
    free(pool);
}

bn_threadpool *bn_threadpool_new(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    bn_threadpool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->n_threads = n_threads;
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->pending, 0);
    atomic_init(&pool->quit, 0);
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->wake, NULL);
    if (n_threads > 1) {
        pool->workers = calloc((size_t)(n_threads - 1), sizeof *pool->workers);
        if (!pool->workers) {
            bn_threadpool_free(pool);
            return NULL;
        }
    }
    for (int i = 0; i < n_threads - 1; i++) {
        struct worker *w = &pool->workers[i];
        w->pool = pool;
        w->ith = i + 1;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            bn_threadpool_free(pool);
            return NULL;
        }
        pool->n_started++;
    }
    return pool;
}

int bn_threadpool_n_threads(const bn_threadpool *pool) {
    return pool->n_threads;
}

void bn_threadpool_run(bn_threadpool *pool, bn_task_fn fn, void *ctx) {
    if (pool->n_threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store_explicit(&pool->pending, pool->n_threads - 1, memory_order_release);
    publish(pool);
    fn(ctx, 0, pool->n_threads);
    for (int i = 0; atomic_load_explicit(&pool->pending, memory_order_acquire) > 0; i++) {
        if (i < SPIN_CALLER) cpu_relax();
        else sched_yield();
    }
}

/* ---- core count ------------------------------------------------------------ */

static int read_int_file(const char *path, int *out) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int ok = fscanf(f, "%d", out) == 1;
    fclose(f);
    return ok ? 0 : -1;
}

int bn_physical_cores(void) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int fallback = online > 0 ? (int)(online < INT_MAX ? online : INT_MAX) : 1;

    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return fallback;

    /* A core is a distinct (package, core id) pair among the CPUs we may use. */
    enum { MAX_CORES = 1024 };
    int seen_pkg[MAX_CORES], seen_core[MAX_CORES];
    int n = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &allowed)) continue;
        char path[128];
        int pkg, core;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", cpu);
        if (read_int_file(path, &pkg) != 0) return fallback;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", cpu);
        if (read_int_file(path, &core) != 0) return fallback;
        int dup = 0;
        for (int i = 0; i < n && !dup; i++) dup = seen_pkg[i] == pkg && seen_core[i] == core;
        if (dup) continue;
        if (n == MAX_CORES) break;
        seen_pkg[n] = pkg;
        seen_core[n] = core;
        n++;
    }
    return n > 0 ? n : fallback;
}
