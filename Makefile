# calib — plain Makefile.  `make` builds the library and the CLI into build/;
# `make test` builds with -Werror and runs every test; see `make help`.

CC      ?= cc
PREFIX  ?= /usr/local
O       ?= build
OPT     ?= -O3
CFLAGS  ?= $(OPT) -g
WARN     = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter
CAIRO_CFLAGS := $(shell pkg-config --cflags cairo 2>/dev/null)
CAIRO_LIBS   := $(shell pkg-config --libs cairo 2>/dev/null || echo -lcairo)
CPPFLAGS += -D_DEFAULT_SOURCE -D_FILE_OFFSET_BITS=64 -Iinclude -Isrc $(CAIRO_CFLAGS)
ALL_CFLAGS = -std=c11 -fPIC -pthread $(WARN) $(EXTRA_CFLAGS) $(CFLAGS)
LDLIBS   = -ljansson $(CAIRO_LIBS) -lz -lm -lpthread
TEST_LDLIBS = -lcmocka

LIB_SRC  = $(sort $(wildcard src/*.c))
CLI_SRC  = $(sort $(wildcard cli/*.c))
TEST_SRC = $(sort $(wildcard tests/test_*.c))
LIB_OBJ  = $(LIB_SRC:%.c=$(O)/%.o)
CLI_OBJ  = $(CLI_SRC:%.c=$(O)/%.o)
TESTS    = $(TEST_SRC:tests/%.c=$(O)/tests/%)

.PHONY: all lib cli test unit-test cli-test golden asan ubsan bench demo \
        install uninstall format clean help deps

all: $(O)/libcalib.a $(O)/libcalib.so $(O)/calib

$(O)/%.o: %.c include/calib.h $(wildcard src/*.h cli/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(O)/libcalib.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(O)/libcalib.so: $(LIB_OBJ)
	$(CC) -shared -pthread $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(O)/calib: $(CLI_OBJ) $(O)/libcalib.a
	$(CC) -pthread $(ALL_CFLAGS) -o $@ $(CLI_OBJ) $(O)/libcalib.a $(LDLIBS)

$(O)/tests/%: tests/%.c tests/golden.h $(wildcard tests/fault_*.h tests/fixtures.h) $(O)/libcalib.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(O)/libcalib.a $(TEST_WRAP) $(TEST_LDLIBS) $(LDLIBS)

# The allocation-failure sweep (tests/fault_alloc.h) counts and fails the
# calls that libcalib.a and the test make to these functions.
$(O)/tests/test_alloc_%: TEST_WRAP = -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,--wrap=strdup,--wrap=strndup,--wrap=newlocale,--wrap=pthread_create,--wrap=inflateInit2_,--wrap=json_loadb,--wrap=json_object,--wrap=json_object_set_new

# Golden cases: computed now by numpy/scikit-learn/scipy (Debian's), never by calib.
PY ?= /usr/bin/python3
GOLDEN_GEN = $(sort $(wildcard tests/golden/gen_*.py))
$(O)/golden/.stamp: $(GOLDEN_GEN)
	@mkdir -p $(O)/golden
	@for g in $(GOLDEN_GEN); do echo "golden: $$g"; $(PY) $$g $(O)/golden || exit 1; done
	@touch $@
golden: $(O)/golden/.stamp

# Fuzz targets (fuzz/README.md): each fuzz/fuzz_<t>.c replayed over its
# corpus fuzz/corpus/<t>/ by fuzz/replay.c, built with $(CC), on every test.
FUZZ_TARGETS = $(sort $(patsubst fuzz/fuzz_%.c,%,$(filter-out \
                 fuzz/fuzz_common.c,$(wildcard fuzz/fuzz_*.c))))
FUZZ_REPLAYS = $(FUZZ_TARGETS:%=$(O)/fuzz/replay_%)
FUZZ_DEPS    = fuzz/fuzz.h fuzz/fuzz_common.c $(O)/libcalib.a

$(O)/fuzz/replay_%: fuzz/replay.c fuzz/fuzz_%.c $(FUZZ_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ifuzz $(ALL_CFLAGS) -o $@ fuzz/replay.c fuzz/fuzz_$*.c \
	  fuzz/fuzz_common.c $(O)/libcalib.a $(LDLIBS)

fuzz-replay: $(FUZZ_REPLAYS)
	@fail=0; for t in $(FUZZ_TARGETS); do \
	  $(O)/fuzz/replay_$$t fuzz/corpus/$$t || fail=1; done; test $$fail = 0

unit-test: $(TESTS) $(O)/golden/.stamp
	@fail=0; for t in $(TESTS); do \
	  echo "== $$t"; CALIB_GOLDEN=$(O)/golden CALIB_BUILD=$(O) $$t || fail=1; done; \
	  test $$fail = 0

cli-test: $(O)/calib $(O)/golden/.stamp
	CALIB=$(O)/calib CALIB_GOLDEN=$(O)/golden $(PY) tests/cli/run.py

# `make test` is what CI runs: warnings are errors here.
test:
	$(MAKE) EXTRA_CFLAGS=-Werror all
	$(MAKE) EXTRA_CFLAGS=-Werror unit-test cli-test python-test fuzz-replay

# The Python binding's tests, against this tree's library and golden cases
# (pytest when installed, else unittest; either ends with its summary line).
.PHONY: python-test install-python
PY_TEST_ENV = PYTHONPATH=python CALIB_LIBRARY=$(O)/libcalib.so \
              CALIB_GOLDEN=$(O)/golden
python-test: $(O)/libcalib.so $(O)/golden/.stamp
	@if $(PY) -c 'import pytest' 2>/dev/null; then \
	  $(PY_TEST_ENV) $(PY) -m pytest -q -rs -p no:cacheprovider python/tests; \
	else \
	  echo "pytest is missing (Debian: python3-pytest): running unittest"; \
	  $(PY_TEST_ENV) $(PY) -m unittest discover -s python/tests -t python/tests; \
	fi

# `make install-python`: pip installs python/ offline (Debian's setuptools
# and numpy; --break-system-packages where Debian marks the interpreter
# externally managed, so it lands in /usr/local/lib/python3.X/dist-packages)
# and copies libcalib.so into the installed package directory.
PIP_FLAGS ?= --no-build-isolation --no-index $(shell $(PY) -c 'import os, sysconfig; \
  print("--break-system-packages" if os.path.exists(os.path.join( \
  sysconfig.get_paths()["stdlib"], "EXTERNALLY-MANAGED")) else "")' 2>/dev/null)
install-python: $(O)/libcalib.so
	$(PY) -m pip install $(PIP_FLAGS) ./python
	@dir=$$(cd / && env -u PYTHONPATH $(PY) -c 'import importlib.util as u; \
	  print(u.find_spec("calib").submodule_search_locations[0])') && \
	  install -m 755 $(O)/libcalib.so "$$dir/libcalib.so" && \
	  echo "installed $$dir/libcalib.so"

# fontconfig (under cairo's text) keeps process-lifetime caches that
# LeakSanitizer reports at exit; they are not calib's, so just they are
# suppressed.
LSAN = LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0
asan:
	$(LSAN) $(MAKE) O=build-asan OPT=-O1 EXTRA_CFLAGS="-Werror -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" all unit-test cli-test fuzz-replay

ubsan:
	$(MAKE) O=build-ubsan OPT=-O1 EXTRA_CFLAGS="-Werror -fsanitize=undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" all unit-test cli-test fuzz-replay

# `make fuzz`: every target built with clang's libFuzzer, ASan and UBSan
# (`make fuzz-build` only builds), then run FUZZ_SECONDS each, one at a
# time, from the committed corpus; new inputs go to build-fuzz/corpus/<t>,
# crashes to build-fuzz/crash-<t>-*.  FUZZ_TARGETS=csv limits the set.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   ?= -timeout=10 -rss_limit_mb=2048 -max_len=65536
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
FO = build-fuzz
.PHONY: fuzz fuzz-build fuzz-replay
fuzz-build:
	$(MAKE) O=$(FO) CC=$(FUZZ_CC) OPT=-O1 \
	  EXTRA_CFLAGS="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" $(FO)/libcalib.a
	@for t in $(FUZZ_TARGETS); do \
	  echo "fuzz: $(FO)/fuzz/fuzz_$$t"; mkdir -p $(FO)/fuzz; \
	  $(FUZZ_CC) $(CPPFLAGS) -Ifuzz -std=c11 -pthread -O1 -g \
	    -fsanitize=fuzzer $(FUZZ_SAN) -o $(FO)/fuzz/fuzz_$$t \
	    fuzz/fuzz_$$t.c fuzz/fuzz_common.c $(FO)/libcalib.a $(LDLIBS) \
	    || exit 1; done

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; mkdir -p $(FO)/corpus/$$t; \
	  $(FO)/fuzz/fuzz_$$t $(FUZZ_FLAGS) -max_total_time=$(FUZZ_SECONDS) \
	    -artifact_prefix=$(FO)/crash-$$t- $(FO)/corpus/$$t fuzz/corpus/$$t \
	    || exit 1; done

deps:
	@sh scripts/deps.sh

demo: deps all
	@sh examples/demo.sh $(O)/calib

$(O)/calib-bench: bench/bench.c $(O)/libcalib.a
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(O)/libcalib.a $(LDLIBS)

bench: all $(O)/calib-bench
	@sh bench/run.sh $(O)

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	  $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 $(O)/libcalib.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(O)/libcalib.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/calib.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(O)/calib $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|0.1.0|' calib.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/calib.pc
	install -m 644 docs/calib.1 $(DESTDIR)$(PREFIX)/share/man/man1/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/libcalib.a $(DESTDIR)$(PREFIX)/lib/libcalib.so \
	  $(DESTDIR)$(PREFIX)/include/calib.h $(DESTDIR)$(PREFIX)/bin/calib \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/calib.pc $(DESTDIR)$(PREFIX)/share/man/man1/calib.1

format:
	clang-format -i include/*.h src/*.[ch] cli/*.[ch] tests/*.[ch]

clean:
	rm -rf build build-asan build-ubsan build-fuzz

help:
	@echo "make | make test | make asan | make ubsan | make fuzz | make bench | make demo | make install"
