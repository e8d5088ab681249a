/* replay.c — runs one fuzz target over every file of its corpus, with no
 * libFuzzer: `replay_<target> fuzz/corpus/<target>` (directories or
 * files).  Linked with the normal compiler, it is how `make test` (and
 * `make asan`, `make ubsan`) run the corpus on every build.  A failed
 * invariant aborts with the file's name on stderr first. */
#include "fuzz.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define HAVE_DEATH_CALLBACK 1
#endif

/* The input being run, named on stderr when the process dies on it. */
static const char *current;

static void say_current(void)
{
    static const char pre[] = "\nreplay: the failing input is ";
    if (!current)
        return;
    if (write(STDERR_FILENO, pre, sizeof pre - 1) < 0 ||
        write(STDERR_FILENO, current, strlen(current)) < 0 ||
        write(STDERR_FILENO, "\n", 1) < 0)
        return;
}

static void on_signal(int sig)
{
    say_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, got;
    do {
        if (cap - len < 65536) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *b = realloc(buf, cap);
            if (!b) {
                fprintf(stderr, "%s: out of memory\n", path);
                free(buf);
                fclose(f);
                return 1;
            }
            buf = b;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    const int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: read error\n", path);
        free(buf);
        return 1;
    }
    current = path;
    LLVMFuzzerTestOneInput(buf, len);
    current = NULL;
    free(buf);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of `dir`, in name order so runs repeat exactly. */
static int run_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return 1;
    }
    char **names = NULL;
    size_t n = 0;
    int fail = 0;
    struct dirent *e;
    while (!fail && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char **more = realloc(names, (n + 1) * sizeof *names);
        fail = !more || !(more[n] = malloc(strlen(dir) +
                                           strlen(e->d_name) + 2));
        if (more)
            names = more;
        if (!fail)
            sprintf(names[n++], "%s/%s", dir, e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (!fail && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            fail = run_file(names[i]);
            ++*count;
        }
        free(names[i]);
    }
    free(names);
    return fail;
}

int main(int argc, char **argv)
{
    size_t count = 0;
    int fail = 0;
    signal(SIGABRT, on_signal);
    signal(SIGSEGV, on_signal);
    signal(SIGFPE, on_signal);
#ifdef HAVE_DEATH_CALLBACK
    __sanitizer_set_death_callback(say_current);
#endif
    for (int i = 1; i < argc && !fail; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            fail = run_dir(argv[i], &count);
        } else {
            fail = run_file(argv[i]);
            count++;
        }
    }
    if (argc < 2 || fail) {
        fprintf(stderr, argc < 2 ? "usage: %s DIR|FILE...\n" : "%s: failed\n",
                argv[0]);
        return 1;
    }
    printf("%s: %zu inputs replayed\n", argv[0], count);
    return 0;
}
