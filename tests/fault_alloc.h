/* fault_alloc.h — counts the library's allocations and fails the Nth one,
 * for the allocation-failure sweep (test_alloc_*.c; header-only, one
 * translation unit each).
 *
 * The Makefile links test_alloc_* with -Wl,--wrap=malloc,... so that every
 * call the test and libcalib.a make to one of the wrapped functions lands in
 * a __wrap_ function here; __real_ reaches the C library (or ASan's
 * interceptor, under `make asan`).  Shared libraries are not relinked, so
 * only calib's own calls are counted.  Besides the malloc family, the calls
 * calib makes that allocate inside other libraries are failed the way each
 * library reports it: jansson's json_loadb (NULL, json_error_out_of_memory),
 * json_object (NULL) and json_object_set_new (-1, the value released);
 * newlocale (NULL, ENOMEM); pthread_create (EAGAIN: a thread stack); zlib's
 * inflateInit2_ (Z_MEM_ERROR).
 *
 * Not covered: allocations inside jansson's parser (jansson is routed here
 * with json_set_alloc_funcs so that its blocks are tracked for leaks, but
 * they are failed only with CALIB_FAULT_JANSSON=1: Debian's jansson 2.14
 * itself crashes in json_loadb, or reports a syntax error, when some of
 * them fail), inside cairo, inside zlib after inflateInit2 (its window,
 * allocated on the first inflate) and inside the C library (stdio buffers,
 * qsort).
 *
 * While armed, every counted call is one event; event number fail_at fails
 * (once: the calls after it succeed again, as SQLite's transient faults;
 * or, with fa.persist, every call from it on).
 * Every block handed out while armed is remembered until it is freed, so a
 * step's leak is seen directly (fa_live()), in every build; under ASan the
 * sweep asks LeakSanitizer as well.  FA_TRACE=1 in the environment prints
 * a backtrace of every injected failure, to find where one lands.
 */
#ifndef CALIB_TEST_FAULT_ALLOC_H
#define CALIB_TEST_FAULT_ALLOC_H

#include <errno.h>
#include <execinfo.h>
#include <jansson.h>
#include <locale.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
locale_t __real_newlocale(int mask, const char *name, locale_t base);
int __real_pthread_create(pthread_t *t, const pthread_attr_t *a,
                          void *(*fn)(void *), void *arg);
int __real_inflateInit2_(z_streamp s, int bits, const char *version,
                         int size);
json_t *__real_json_loadb(const char *b, size_t n, size_t flags,
                          json_error_t *e);
json_t *__real_json_object(void);
int __real_json_object_set_new(json_t *o, const char *key, json_t *v);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
locale_t __wrap_newlocale(int mask, const char *name, locale_t base);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a,
                          void *(*fn)(void *), void *arg);
int __wrap_inflateInit2_(z_streamp s, int bits, const char *version,
                         int size);
json_t *__wrap_json_loadb(const char *b, size_t n, size_t flags,
                          json_error_t *e);
json_t *__wrap_json_object(void);
int __wrap_json_object_set_new(json_t *o, const char *key, json_t *v);

/* Blocks handed out while armed: an open-addressed set of pointers, with
 * tombstones, rebuilt when live blocks and tombstones fill half of it. */
#define FA_SLOTS (1u << 15)
#define FA_TOMB ((void *)1)

static struct {
    pthread_mutex_t mu;
    int armed;
    unsigned long events;     /* counted calls since fa_arm()           */
    unsigned long fail_at;    /* 0: never                               */
    unsigned long failed;     /* failures injected since fa_arm()       */
    int persist;              /* every event after fail_at fails too    */
    size_t live;              /* remembered blocks not yet freed        */
    size_t used;              /* live blocks and tombstones             */
    void *slot[FA_SLOTS];
} fa = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, 0, 0, 0, {0}};

static size_t fa_hash(const void *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 40) & (FA_SLOTS - 1);
}

static void fa_insert(void *p)
{
    size_t i = fa_hash(p);
    while (fa.slot[i] && fa.slot[i] != FA_TOMB)
        i = (i + 1) & (FA_SLOTS - 1);
    fa.used += !fa.slot[i];
    fa.slot[i] = p;
    fa.live++;
}

/* With fa.mu held. */
static void fa_remember(void *p)
{
    if (fa.used >= FA_SLOTS / 2) {
        static void *keep[FA_SLOTS / 2];
        size_t n = 0;
        for (size_t i = 0; i < FA_SLOTS; i++)
            if (fa.slot[i] && fa.slot[i] != FA_TOMB)
                keep[n++] = fa.slot[i];
        if (n >= FA_SLOTS / 4)
            abort(); /* a call that keeps 8192 blocks: not in these tests */
        memset(fa.slot, 0, sizeof fa.slot);
        fa.live = fa.used = 0;
        for (size_t i = 0; i < n; i++)
            fa_insert(keep[i]);
    }
    fa_insert(p);
}

static void fa_forget(void *p)
{
    if (!fa.live)
        return;
    for (size_t i = fa_hash(p); fa.slot[i]; i = (i + 1) & (FA_SLOTS - 1))
        if (fa.slot[i] == p) {
            fa.slot[i] = FA_TOMB;
            fa.live--;
            return;
        }
}

/* One counted call: returns 1 when it is to fail. */
static int fa_event(void)
{
    pthread_mutex_lock(&fa.mu);
    int fail = 0;
    if (fa.armed && (++fa.events == fa.fail_at ||
                     (fa.persist && fa.fail_at && fa.events > fa.fail_at))) {
        fa.failed++;
        fail = 1;
    }
    pthread_mutex_unlock(&fa.mu);
    if (fail && getenv("FA_TRACE")) { /* where each fault lands */
        fprintf(stderr, "fault %lu:\n", fa.fail_at);
        void *frames[16];
        backtrace_symbols_fd(frames, backtrace(frames, 16), 2);
    }
    return fail;
}

static void *fa_note(void *p)
{
    if (p) {
        pthread_mutex_lock(&fa.mu);
        if (fa.armed)
            fa_remember(p);
        pthread_mutex_unlock(&fa.mu);
    }
    return p;
}

void *__wrap_malloc(size_t n)
{
    return fa_event() ? NULL : fa_note(__real_malloc(n));
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fa_event() ? NULL : fa_note(__real_calloc(n, size));
}

void *__wrap_realloc(void *p, size_t n)
{
    if (fa_event())
        return NULL;
    void *q = __real_realloc(p, n);
    if (q) {
        pthread_mutex_lock(&fa.mu);
        if (p)
            fa_forget(p);
        if (fa.armed)
            fa_remember(q);
        pthread_mutex_unlock(&fa.mu);
    }
    return q;
}

void __wrap_free(void *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&fa.mu);
    fa_forget(p);
    pthread_mutex_unlock(&fa.mu);
    __real_free(p);
}

char *__wrap_strdup(const char *s)
{
    return fa_event() ? NULL : fa_note(__real_strdup(s));
}

char *__wrap_strndup(const char *s, size_t n)
{
    return fa_event() ? NULL : fa_note(__real_strndup(s, n));
}

locale_t __wrap_newlocale(int mask, const char *name, locale_t base)
{
    if (fa_event()) {
        errno = ENOMEM;
        return (locale_t)0;
    }
    return __real_newlocale(mask, name, base);
}

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a,
                          void *(*fn)(void *), void *arg)
{
    return fa_event() ? EAGAIN : __real_pthread_create(t, a, fn, arg);
}

int __wrap_inflateInit2_(z_streamp s, int bits, const char *version,
                         int size)
{
    return fa_event() ? Z_MEM_ERROR
                      : __real_inflateInit2_(s, bits, version, size);
}

json_t *__wrap_json_loadb(const char *b, size_t n, size_t flags,
                          json_error_t *e)
{
    if (!fa_event())
        return __real_json_loadb(b, n, flags, e);
    if (e) { /* as jansson's own out-of-memory report */
        memset(e, 0, sizeof *e);
        e->line = e->column = -1;
        snprintf(e->text, sizeof e->text, "out of memory");
        e->text[JSON_ERROR_TEXT_LENGTH - 1] = (char)json_error_out_of_memory;
    }
    return NULL;
}

json_t *__wrap_json_object(void)
{
    return fa_event() ? NULL : __real_json_object();
}

int __wrap_json_object_set_new(json_t *o, const char *key, json_t *v)
{
    if (!fa_event())
        return __real_json_object_set_new(o, key, v);
    json_decref(v);
    return -1;
}

/* jansson's blocks: tracked for leaks, failed only when the environment
 * has CALIB_FAULT_JANSSON=1 (to watch jansson itself; see the top). */
static int fa_fail_jansson;
static void *fa_json_malloc(size_t n)
{
    return fa_fail_jansson && fa_event() ? NULL : fa_note(__real_malloc(n));
}
static void fa_json_free(void *p) { __wrap_free(p); }

/* Routes jansson's blocks through the leak tracker; call once before any
 * JSON. */
static void fa_init(void)
{
    const char *j = getenv("CALIB_FAULT_JANSSON");
    fa_fail_jansson = j && strcmp(j, "1") == 0;
    json_set_alloc_funcs(fa_json_malloc, fa_json_free);
}

/* Starts counting with event number `fail_at` to fail (0: none). */
static void fa_arm(unsigned long fail_at)
{
    pthread_mutex_lock(&fa.mu);
    if (fa.used)
        memset(fa.slot, 0, sizeof fa.slot);
    fa.live = fa.used = 0;
    fa.events = fa.failed = 0;
    fa.fail_at = fail_at;
    fa.persist = 0;
    fa.armed = 1;
    pthread_mutex_unlock(&fa.mu);
}

/* Stops counting; returns the number of events seen. */
static unsigned long fa_disarm(void)
{
    pthread_mutex_lock(&fa.mu);
    fa.armed = 0;
    const unsigned long n = fa.events;
    pthread_mutex_unlock(&fa.mu);
    return n;
}

/* Blocks handed out while armed and not freed since. */
static size_t fa_live(void)
{
    pthread_mutex_lock(&fa.mu);
    const size_t n = fa.live;
    pthread_mutex_unlock(&fa.mu);
    return n;
}


/* ---- the sweep --------------------------------------------------------- */

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define FA_LSAN_CHECK() __lsan_do_recoverable_leak_check()
#else
#define FA_LSAN_CHECK() 0
#endif

#define FA_DENSE 200

/* One call path: does its calls, frees everything it made, and returns a
 * status (with *err) and, on success, a digest of what it computed. */
typedef int (*fa_path)(const void *ctx, uint64_t *digest, calib_error *err);

/* FNV-1a, to digest what a path computed. */
static uint64_t fa_hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
#define FA_SEED 0xcbf29ce484222325ull

typedef struct fa_stats {
    unsigned long events;    /* counted calls of the fault-free run      */
    unsigned long steps;     /* runs with a fault injected               */
    unsigned long recovered; /* of which the call still succeeded, with
                                the same result                          */
} fa_stats;

/* One run with event n failing (and every later one, with `persist`).
 * Returns 0 when the run saw fewer than n events (no fault), else 1 after
 * checking it: CALIB_ENOMEM with err->code equal to it and a message, or
 * success with the fault-free digest; nothing left allocated. */
static int fa_step(const char *name, fa_path fn, const void *ctx,
                   unsigned long n, int persist, uint64_t want, fa_stats *st)
{
    uint64_t got = 0;
    calib_error ef = {0};
    fa_arm(n);
    fa.persist = persist;
    const int rc = fn(ctx, &got, &ef);
    fa_disarm();
    const char *mode = persist ? "and every later one " : "";
    if (!fa.failed) {
        if (rc != CALIB_OK || got != want)
            fail_msg("%s: the run past the last event differs", name);
        return 0;
    }
    st->steps++;
    if (fa_live())
        fail_msg("%s: allocation %lu %sfailed: %zu blocks leak (rc %d: %s)",
                 name, n, mode, fa_live(), rc, ef.message);
    /* LeakSanitizer scans the whole heap (cairo's and fontconfig's caches
     * too), ~20 ms a scan: on the first 8 transient steps of a path and
     * every 64th after it; fa_live() above is exact on every step. */
    if (!persist && (n <= 8 || n % 64 == 0) && FA_LSAN_CHECK())
        fail_msg("%s: allocation %lu %sfailed: LeakSanitizer found a leak",
                 name, n, mode);
    if (rc == CALIB_OK) {
        if (got != want)
            fail_msg("%s: allocation %lu %sfailed, yet the call succeeded "
                     "with a different result", name, n, mode);
        st->recovered++;
    } else if (rc != CALIB_ENOMEM) {
        fail_msg("%s: allocation %lu %sfailed: status %d (%s), expected "
                 "CALIB_ENOMEM", name, n, mode, rc, ef.message);
    } else if (ef.code != rc || !ef.message[0]) {
        fail_msg("%s: allocation %lu %sfailed: err->code %d, status %d, "
                 "message '%s'", name, n, mode, ef.code, rc, ef.message);
    }
    return 1;
}

/* Runs `fn` once without faults, then with event N failing for N = 1, 2,
 * ... until a run sees fewer than N events; then again with every event
 * from N on failing (SQLite's persistent faults: the error paths must not
 * need memory either).  Past FA_DENSE events (a solver that evaluates its
 * objective a thousand times repeats the same allocation sites), N takes a
 * stride that spreads FA_DENSE more steps over the rest. */
static fa_stats fa_sweep(const char *name, fa_path fn, const void *ctx)
{
    fa_stats st = {0, 0, 0};
    uint64_t want = 0;
    calib_error e = {0};
    fa_arm(0);
    const int rc = fn(ctx, &want, &e);
    st.events = fa_disarm();
    if (rc != CALIB_OK)
        fail_msg("%s: fails without faults: %d %s", name, rc, e.message);
    if (fa_live())
        fail_msg("%s: leaks %zu blocks without faults", name, fa_live());
    const unsigned long stride =
        st.events > 2 * FA_DENSE ? (st.events - FA_DENSE) / FA_DENSE : 1;
    for (int persist = 0; persist < 2; persist++) {
        unsigned long n = 1;
        while (fa_step(name, fn, ctx, n, persist, want, &st))
            n += n < FA_DENSE ? 1 : stride;
    }
    return st;
}

/* Fails the path when a call left its out-pointer set on failure. */
#define FA_OUT_NULL(rc, p)                                                   \
    do {                                                                     \
        if ((rc) && (p))                                                     \
            fail_msg("%s:%d: failed call left its out-pointer set",          \
                     __FILE__, __LINE__);                                    \
    } while (0)

#endif /* CALIB_TEST_FAULT_ALLOC_H */
