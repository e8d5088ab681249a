/* parallel.c — contiguous row ranges on pthreads.
 *
 * Every sum over rows is exact (xsum.c), so how rows are split over
 * threads never changes a result; this file only has to be correct and
 * cheap.  Threads are started per call: calls are coarse (a pass over
 * millions of rows), and a pool would be global state.
 */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define MAX_THREADS 256

int calib__threads(int requested)
{
    if (requested > 0)
        return requested > MAX_THREADS ? MAX_THREADS : requested;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

typedef struct task {
    calib__range_fn fn;
    void *ctx;
    size_t begin, end;
    int worker;
} task;

static void *run_task(void *arg)
{
    const task *t = arg;
    t->fn(t->ctx, t->begin, t->end, t->worker);
    return NULL;
}

/* How many workers n items take: at most `threads`, each at least
 * `grain` items. */
static size_t workers_for(size_t n, int threads, size_t grain)
{
    const size_t used = (size_t)calib__threads(threads);
    grain = grain < 1 ? 1 : grain;
    return used > n / grain ? n / grain : used;
}

int calib__parallel_for(size_t n, int threads, size_t grain,
                        calib__range_fn fn, void *ctx)
{
    const size_t used = workers_for(n, threads, grain);
    if (used <= 1) {
        fn(ctx, 0, n, 0);
        return 1;
    }
    task tasks[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    for (size_t w = 0; w < used; w++)
        tasks[w] = (task){fn, ctx, n * w / used, n * (w + 1) / used, (int)w};
    /* A range whose thread cannot be started runs here instead: slower,
     * never wrong, and the call cannot fail. */
    int started[MAX_THREADS] = {0};
    for (size_t w = 1; w < used; w++)
        started[w] = !pthread_create(&tid[w], NULL, run_task, &tasks[w]);
    run_task(&tasks[0]);
    for (size_t w = 1; w < used; w++) {
        if (started[w])
            pthread_join(tid[w], NULL);
        else
            run_task(&tasks[w]);
    }
    return (int)used;
}

typedef struct chunks {
    calib__range_fn fn;
    void *ctx;
    size_t n, chunk;
    atomic_size_t next;
} chunks;

static void chunk_range(void *vp, size_t begin, size_t end, int worker)
{
    chunks *c = vp;
    (void)begin, (void)end;
    for (;;) {
        const size_t b = atomic_fetch_add(&c->next, c->chunk);
        if (b >= c->n)
            return;
        c->fn(c->ctx, b, c->n - b < c->chunk ? c->n : b + c->chunk, worker);
    }
}

int calib__parallel_chunks(size_t n, int threads, size_t grain, size_t chunk,
                           calib__range_fn fn, void *ctx)
{
    chunks c = {fn, ctx, n, chunk < 1 ? 1 : chunk, 0};
    const size_t used = workers_for(n, threads, grain);
    if (used <= 1) {
        fn(ctx, 0, n, 0);
        return 1;
    }
    /* one range per worker: each then loops over the chunks */
    return calib__parallel_for(used, (int)used, 1, chunk_range, &c);
}
