# hasten: build, test, run, deps, install.
# `make` builds ./hasten (objects under build/); the CUDA part only where nvcc is found.

PREFIX   ?= /usr/local
BUILD    := build
CC       ?= cc
PKGS     := ncursesw lua5.4 openblas libcurl zlib libcjson libcrypto libarchive
TESTPKGS := cmocka

# Debian packages the project needs; `make deps` installs the missing ones.
DEB_PKGS := build-essential pkg-config libncurses-dev liblua5.4-dev libopenblas-dev \
            libcurl4-openssl-dev zlib1g-dev libcjson-dev libssl-dev libarchive-dev \
            libcmocka-dev dataset-fashion-mnist tmux

VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo dev)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Probe once per make invocation; say what was found.
HAVE_PKGS := $(shell pkg-config --exists $(PKGS) 2>/dev/null && echo yes)
NVCC      := $(shell command -v nvcc 2>/dev/null)

# -ffp-contract=off (ISO C's default, kept whatever CFLAGS says): a * b + c is rounded twice, as
# written, so that the CPU's batch-norm backward can recompute the forward's ReLU mask bit for bit.
CFLAGS   ?= -O3 -march=native -g
CFLAGS   += -std=c11 -ffp-contract=off -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wno-unused-parameter -Wno-format-truncation -Werror=implicit-function-declaration \
            -pthread -MMD -MP -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
            -DHASTEN_SHARE='"$(PREFIX)/share/hasten"'
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -pthread

ENGINE_SRC   := $(wildcard engine/*.c engine/cpu/*.c)

# CUDA: engine/cuda/*.cu for Hopper (sm_90 code, plus PTX that newer GPUs compile at load), cudart
# linked statically and cuBLAS loaded when a device opens, so the same binary runs (and CPU runs
# stay lean) where no GPU or CUDA library is present. Without nvcc, engine/cuda/none.c says so.
ifneq ($(NVCC),)
CUDA_HOME  := $(patsubst %/bin/nvcc,%,$(realpath $(NVCC)))
CUDA_SRC   := $(wildcard engine/cuda/*.cu)
CUDA_OBJ   := $(CUDA_SRC:%.cu=$(BUILD)/%.o)
CUDA_ARCH  ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
NVCCFLAGS  ?= -O3 -g -lineinfo
NVCCFLAGS  += -std=c++17 $(CUDA_ARCH) -I. -MMD -MP -Xcompiler -Wall,-Wextra,-Wno-unused-parameter,-Wno-format-truncation \
              -DHASTEN_CUDA
CFLAGS     += -DHASTEN_CUDA
LDLIBS     += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart_static -ldl -lrt -lstdc++
else
ENGINE_SRC += engine/cuda/none.c
endif
DATASETS_SRC := $(wildcard datasets/*.c)
LUA_SRC      := $(wildcard lua/*.c)
TUI_SRC      := $(filter-out tui/main.c,$(wildcard tui/*.c))
LIB_SRC      := $(ENGINE_SRC) $(DATASETS_SRC) $(LUA_SRC) $(TUI_SRC)
LIB_OBJ      := $(LIB_SRC:%.c=$(BUILD)/%.o) $(CUDA_OBJ) $(BUILD)/version.o

# The version `hasten --version` prints and every run records (engine/version.h): build/version.c
# is rewritten whenever `git describe` says something else, so the binary names the tree it was
# built from (a -D flag reached only the files that happened to recompile).
VERSION_C    := $(BUILD)/version.c
VERSION_LINE := const char hasten_version[] = "$(VERSION)";
$(shell mkdir -p $(BUILD) && grep -qxF '$(VERSION_LINE)' $(VERSION_C) 2>/dev/null || echo '$(VERSION_LINE)' >$(VERSION_C))

TEST_SRC  := $(wildcard tests/unit/test_*.c)
TEST_BIN  := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TEST_SUPPORT := $(BUILD)/tests/support.o $(BUILD)/tests/http_server.o

.PHONY: all run test deps install clean probe check-unit check-integration bench fuzz
all: probe hasten

probe:
	@if [ -z "$(HAVE_PKGS)" ]; then echo "libraries: missing (run 'make deps')"; \
	  pkg-config --print-errors --exists $(PKGS); exit 1; fi
	@echo "OpenBLAS: found ($$(pkg-config --modversion openblas))"
	@echo "Lua: found ($$(pkg-config --modversion lua5.4))"
	@$(if $(NVCC),echo "nvcc: found ($(NVCC))",echo "nvcc: not found, CPU only")

# V=1 shows the full compiler lines.
Q := $(if $(V),,@)

hasten: $(LIB_OBJ) $(BUILD)/tui/main.o
	@echo "LINK $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "CC   $<"
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/version.o: $(VERSION_C)
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	@echo "NVCC $<"
	$(Q)$(NVCC) $(NVCCFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJ) $(TEST_SUPPORT)
	@mkdir -p $(dir $@)
	@echo "CC   $<"
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(LIB_OBJ) $(TEST_SUPPORT) $(LDLIBS) $(shell pkg-config --libs $(TESTPKGS))

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "deps: all Debian packages present"; fi

run: deps
	@$(MAKE) --no-print-directory all
	./hasten

test: deps
	@$(MAKE) --no-print-directory all $(TEST_BIN)
	@sh tests/run.sh $(TEST_BIN)

bench: all
	./hasten bench

# Fuzz targets for the readers of files hasten did not just write: IDX, CIFAR-10 binary, UTF-8 text,
# a run folder (summary.json, metrics.jsonl: as compare and the workbench read it) and weights.bin
# (libFuzzer with ASan and UBSan; needs clang). The library is built once, instrumented, under
# build/fuzz/obj/. `make fuzz` runs each target for FUZZ_SECONDS from the seeds in
# tests/fuzz/corpus/ (their output hidden: -close_fd_mask); findings land in build/fuzz/.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := idx cifar text rundir weights recipe
FUZZ_CFLAGS  := -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -std=c11 -D_GNU_SOURCE -Wno-psabi -Wno-unknown-attributes \
                -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -DHASTEN_SHARE='"$(PREFIX)/share/hasten"'
FUZZ_LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -pthread
FUZZ_SRC     := $(filter-out engine/cuda/%,$(ENGINE_SRC)) engine/cuda/none.c $(DATASETS_SRC) $(LUA_SRC) $(TUI_SRC)
FUZZ_OBJ     := $(FUZZ_SRC:%.c=$(BUILD)/fuzz/obj/%.o) $(BUILD)/fuzz/obj/version.o
.SECONDARY: $(FUZZ_OBJ)

$(BUILD)/fuzz/obj/%.o: %.c
	@command -v $(FUZZ_CC) >/dev/null || { echo "fuzz: $(FUZZ_CC) not found (sudo apt-get install clang)"; exit 1; }
	@mkdir -p $(dir $@)
	@echo "FUZZ $<"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(BUILD)/fuzz/obj/version.o: $(VERSION_C)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJ)
	@echo "FUZZ $<"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) $(FUZZ_LIBS)

fuzz: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(BUILD)/fuzz/corpus-$$t; \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	  $(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -print_final_stats=1 \
	    -close_fd_mask=3 -artifact_prefix=$(BUILD)/fuzz/ $$([ -f tests/fuzz/$$t.dict ] && echo -dict=tests/fuzz/$$t.dict) \
	    $(BUILD)/fuzz/corpus-$$t tests/fuzz/corpus/$$t || exit 1; \
	done

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/hasten/recipes $(DESTDIR)$(PREFIX)/share/hasten/plugins
	install -m 755 hasten $(DESTDIR)$(PREFIX)/bin/hasten
	install -m 644 recipes/*.lua $(DESTDIR)$(PREFIX)/share/hasten/recipes/
	-install -m 644 plugins/*.lua $(DESTDIR)$(PREFIX)/share/hasten/plugins/ 2>/dev/null

clean:
	rm -rf $(BUILD) hasten

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
