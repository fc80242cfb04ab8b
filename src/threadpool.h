/* A persistent worker pool: the forward pass hands it one task at a time,
 * cut into nth parts (nth = the pool's thread count); every part runs exactly
 * once and the call returns when all have. Parts are claimed dynamically, so
 * when a worker is descheduled (an oversubscribed machine) the others take
 * its part instead of waiting; a part's index, not the thread running it,
 * decides its work and its scratch, so results never depend on who ran what.
 * Workers spin briefly between tasks, then yield, then sleep, so the many
 * short tasks of a decode step do not pay a wake-up each. */
#ifndef BN_THREADPOOL_H
#define BN_THREADPOOL_H

#include "bitnet.h"

typedef struct bn_threadpool bn_threadpool;

/* A task: called once for each part ith = 0 .. nth-1, each on some thread. */
typedef void (*bn_task_fn)(void *ctx, int ith, int nth);

/* Stack of the workers, and what a thread that calls bn_threadpool_run
 * needs too (kernels keep tiles on the stack; bitnet.h, bn_decode). */
#define BN_THREAD_STACK BN_DECODE_STACK

/* n_threads >= 1 counts the caller; n_threads - 1 workers are started.
 * Returns NULL when a thread cannot be created. */
bn_threadpool *bn_threadpool_new(int n_threads);
void bn_threadpool_free(bn_threadpool *pool);
int bn_threadpool_n_threads(const bn_threadpool *pool);

/* Runs fn(ctx, ith, nth) for every part and returns when all are done.
 * Only one thread may call this at a time. */
void bn_threadpool_run(bn_threadpool *pool, bn_task_fn fn, void *ctx);

/* Physical cores this process may run on (SMT siblings counted once): on
 * Linux from the affinity mask and /sys/devices/system/cpu/cpuN/topology,
 * on macOS the performance cores (sysctl), elsewhere (or where those fail)
 * the online CPU count; capped by a cgroup CPU quota when there is one. */
int bn_physical_cores(void);

#endif
