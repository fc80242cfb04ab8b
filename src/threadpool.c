/* Persistent worker pool (see threadpool.h).
 *
 * One 64-bit word, `state`, holds the current generation (high half) and the
 * next unclaimed part (low half). The caller publishes a task by storing
 * (generation + 1, 0); any thread claims part i with a compare-and-swap from
 * (g, i) to (g, i + 1), which also proves the task is still generation g, so
 * a worker that woke late can never run a part of a task it did not see.
 * `done` counts finished parts; the caller returns when it reaches nth.
 * Waiting (workers for a task, the caller for the last parts) spins with a
 * pause, then yields the CPU, then (workers only) sleeps on a condition
 * variable; the generation is bumped under the mutex so no sleeper misses it. */
#include "threadpool.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#ifdef __APPLE__
#include <sys/sysctl.h>
#endif

#define SPIN_PAUSE (1 << 11)    /* polls with a pause before yielding */
#define SPIN_YIELD (1 << 7)     /* polls with sched_yield before a worker sleeps */

struct bn_threadpool {
    int n_threads;
    pthread_t *threads;         /* n_threads - 1 workers */
    int n_started;

    _Atomic(bn_task_fn) fn;     /* the current task */
    _Atomic(void *) ctx;
    atomic_ullong state;        /* generation << 32 | next part */
    atomic_int done;            /* parts finished in this generation */
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

static unsigned generation_of(unsigned long long st) { return (unsigned)(st >> 32); }

/* Claims and runs parts of generation `gen` until none is left. */
static void run_parts(bn_threadpool *pool, unsigned gen) {
    bn_task_fn fn = atomic_load_explicit(&pool->fn, memory_order_relaxed);
    void *ctx = atomic_load_explicit(&pool->ctx, memory_order_relaxed);
    unsigned long long st = atomic_load_explicit(&pool->state, memory_order_acquire);
    for (;;) {
        unsigned part = (unsigned)(st & 0xffffffffu);
        if (generation_of(st) != gen || part >= (unsigned)pool->n_threads) return;
        if (!atomic_compare_exchange_weak_explicit(&pool->state, &st, st + 1,
                                                   memory_order_acq_rel, memory_order_acquire))
            continue;
        fn(ctx, (int)part, pool->n_threads);
        atomic_fetch_add_explicit(&pool->done, 1, memory_order_acq_rel);
        st = atomic_load_explicit(&pool->state, memory_order_acquire);
    }
}

/* Waits until the generation differs from `seen`; returns the new one. */
static unsigned wait_for_task(bn_threadpool *pool, unsigned seen) {
    for (int i = 0; i < SPIN_PAUSE + SPIN_YIELD; i++) {
        unsigned g = generation_of(atomic_load_explicit(&pool->state, memory_order_acquire));
        if (g != seen) return g;
        if (i < SPIN_PAUSE) cpu_relax();
        else sched_yield();
    }
    pthread_mutex_lock(&pool->mutex);
    unsigned g;
    while ((g = generation_of(atomic_load_explicit(&pool->state, memory_order_acquire))) == seen)
        pthread_cond_wait(&pool->wake, &pool->mutex);
    pthread_mutex_unlock(&pool->mutex);
    return g;
}

static void *worker_main(void *arg) {
    bn_threadpool *pool = arg;
    unsigned seen = 0;
    for (;;) {
        seen = wait_for_task(pool, seen);
        if (atomic_load_explicit(&pool->quit, memory_order_acquire)) break;
        run_parts(pool, seen);
    }
    return NULL;
}

/* Starts the next generation with all parts unclaimed and wakes sleepers. */
static unsigned publish(bn_threadpool *pool) {
    pthread_mutex_lock(&pool->mutex);
    unsigned gen = generation_of(atomic_load_explicit(&pool->state, memory_order_relaxed)) + 1;
    atomic_store_explicit(&pool->state, (unsigned long long)gen << 32, memory_order_release);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    return gen;
}

void bn_threadpool_free(bn_threadpool *pool) {
    if (!pool) return;
    if (pool->n_started > 0) {
        atomic_store_explicit(&pool->quit, 1, memory_order_release);
        publish(pool);
        for (int i = 0; i < pool->n_started; i++) pthread_join(pool->threads[i], NULL);
    }
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->mutex);
    free(pool->threads);
    free(pool);
}

bn_threadpool *bn_threadpool_new(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    bn_threadpool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->n_threads = n_threads;
    atomic_init(&pool->fn, NULL);
    atomic_init(&pool->ctx, NULL);
    atomic_init(&pool->state, 0);
    atomic_init(&pool->done, 0);
    atomic_init(&pool->quit, 0);
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->wake, NULL);
    if (n_threads > 1) {
        pool->threads = calloc((size_t)(n_threads - 1), sizeof *pool->threads);
        if (!pool->threads) {
            bn_threadpool_free(pool);
            return NULL;
        }
    }
    /* Kernels keep tiles on the stack (avx2-tl's prompt path about 130 KB):
     * ask for glibc's default 8 MB everywhere, as musl's is 128 KB. Only
     * the pages touched are committed. */
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0) {
        bn_threadpool_free(pool);
        return NULL;
    }
    pthread_attr_setstacksize(&attr, BN_THREAD_STACK);
    for (int i = 0; i < n_threads - 1; i++) {
        if (pthread_create(&pool->threads[i], &attr, worker_main, pool) != 0) {
            pthread_attr_destroy(&attr);
            bn_threadpool_free(pool);
            return NULL;
        }
        pool->n_started++;
    }
    pthread_attr_destroy(&attr);
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
    /* The previous generation is complete (all parts done), so no thread
     * reads fn/ctx for it any more except to discover it is stale. */
    atomic_store_explicit(&pool->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&pool->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&pool->done, 0, memory_order_relaxed);
    unsigned gen = publish(pool);
    run_parts(pool, gen);
    for (int i = 0; atomic_load_explicit(&pool->done, memory_order_acquire) < pool->n_threads; i++) {
        if (i < SPIN_PAUSE) cpu_relax();
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

/* A CPU quota (containers: cgroup v2 cpu.max "QUOTA PERIOD", v1 cfs files)
 * limits the cores that can be busy at once even when the affinity mask shows
 * more. Returns ceil(quota / period), or 0 when there is no quota. */
static int cgroup_cpu_limit(void) {
    long long quota = -1, period = 0;
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f) {
        if (fscanf(f, "%lld %lld", &quota, &period) != 2) quota = -1;
        fclose(f);
    } else {
        int q, pr;
        if (read_int_file("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", &q) == 0 &&
            read_int_file("/sys/fs/cgroup/cpu/cpu.cfs_period_us", &pr) == 0) {
            quota = q;
            period = pr;
        }
    }
    if (quota <= 0 || period <= 0) return 0;   /* "max" parses as no quota */
    long long n = (quota + period - 1) / period;
    return n > INT_MAX ? 0 : (int)n;
}

/* The online CPUs (hardware threads): what POSIX alone can tell. */
static int online_cpus(void) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)(online < INT_MAX ? online : INT_MAX) : 1;
}

#if defined(__linux__) && defined(CPU_SETSIZE)
/* Distinct physical cores in the affinity mask. */
static int count_cores(void) {
    int fallback = online_cpus();

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
#elif defined(__APPLE__)
/* macOS: the performance cores where the kernel reports core kinds (Apple
 * silicon), else every physical core. */
static int count_cores(void) {
    int n = 0;
    size_t len = sizeof n;
    if (sysctlbyname("hw.perflevel0.physicalcpu", &n, &len, NULL, 0) == 0 && n > 0) return n;
    len = sizeof n;
    if (sysctlbyname("hw.physicalcpu", &n, &len, NULL, 0) == 0 && n > 0) return n;
    return online_cpus();
}
#else
/* Other systems (and a build without _GNU_SOURCE, BITNET_PORTABLE): no
 * portable way to tell cores from hardware threads. */
static int count_cores(void) {
    return online_cpus();
}
#endif

int bn_physical_cores(void) {
    int cores = count_cores();
    int limit = cgroup_cpu_limit();
    return limit > 0 && limit < cores ? limit : cores;
}
