# tests/fuzz/fuzz.mk - libFuzzer harness of the serial protocol; included by
# firmware/Makefile (paths are relative to firmware/). See tests/fuzz/README.md.
#
#   make -C firmware fuzz FUZZ_SECONDS=60   build, then fuzz for N seconds;
#                                           summary in build/fuzz/summary.json,
#                                           crash inputs in build/fuzz/artifacts/
#   make -C firmware fuzz-build             build/fuzz/fuzz_protocol (real front
#                                           end + model) and fuzz_protocol_stubs
#   make -C firmware fuzz-regress           replay tests/fuzz/regressions/*.hex
#   make -C firmware fuzz-cov [FUZZ_CORPUS=dir]  line/branch coverage of the
#                                           protocol sources by a corpus (llvm-cov)
#
# Options: FUZZ_VARIANT (real | stubs), FUZZ_SECONDS (60), FUZZ_TIMEOUT
# (per-input hang limit, s), FUZZ_RSS_MB, FUZZ_MAX_LEN, FUZZ_CORPUS (working
# corpus folder; new inputs are written there), FUZZ_SUMMARY, FUZZ_ARGS (more
# libFuzzer flags, e.g. -seed=1), FUZZ_CC (clang).

FUZZ_CC ?= clang
FUZZ_PYTHON ?= python3
FUZZ_VARIANT ?= real
FUZZ_SECONDS ?= 60
FUZZ_TIMEOUT ?= 10
FUZZ_RSS_MB ?= 2048
FUZZ_MAX_LEN ?= 16384
FUZZ_ARGS ?=
FUZZ_DIR := build/fuzz
FUZZ_CORPUS ?= $(FUZZ_DIR)/corpus-$(FUZZ_VARIANT)
FUZZ_SUMMARY ?= $(FUZZ_DIR)/summary.json
FUZZ_ARTIFACTS := $(FUZZ_DIR)/artifacts
FUZZ_SEEDS := $(FUZZ_DIR)/seeds
FUZZ_SRC := tests/fuzz

FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -std=c99 -O2 -g -fno-omit-frame-pointer -ffp-contract=off $(FUZZ_SAN)
FUZZ_WARN := -Wall -Wextra -Werror
# Coverage feedback for our code.
FUZZ_COV := -fsanitize=fuzzer-no-link

# real: the device's front end and model; stubs: tests/protocol's stand-ins.
FUZZ_CORE := src/sd_frame.c src/sd_protocol.c src/sd_decide.c src/sd_app.c
FUZZ_REAL_SRCS := $(FUZZ_CORE) src/sd_frontend.c src/sd_rfft_q15.c src/sd_stream.c src/sd_model.c \
                  $(wildcard src/kernels/*.c generated/*.c)
FUZZ_STUB_SRCS := $(FUZZ_CORE) tests/protocol/stub_frontend.c tests/protocol/stub_model.c
FUZZ_REAL_INCS := -Iinclude -Isrc -Igenerated
FUZZ_STUB_INCS := -Itests/protocol -Iinclude -Isrc

FUZZ_BIN_real := $(FUZZ_DIR)/fuzz_protocol
FUZZ_BIN_stubs := $(FUZZ_DIR)/fuzz_protocol_stubs
FUZZ_BIN := $(FUZZ_BIN_$(FUZZ_VARIANT))
ifeq ($(FUZZ_BIN),)
$(error FUZZ_VARIANT must be real or stubs)
endif

fuzz_objs = $(patsubst %.c,$(FUZZ_DIR)/obj-$(1)/%.o,$(2) $(FUZZ_SRC)/fuzz_protocol.c)
FUZZ_OBJS_real := $(call fuzz_objs,real,$(FUZZ_REAL_SRCS))
FUZZ_OBJS_stubs := $(call fuzz_objs,stubs,$(FUZZ_STUB_SRCS))

.PHONY: fuzz fuzz-build fuzz-seeds fuzz-regress fuzz-cov

# Flags per object: sd_app.c's main() becomes sd_app_main(), which the harness drives.
fuzz_flags = $(FUZZ_CFLAGS) \
    $(FUZZ_WARN) $(FUZZ_COV) \
    $(if $(filter src/sd_app.c,$(1)),-Dmain=sd_app_main)

# $(1) = variant, $(2) = includes, $(3) = defines
define fuzz_rules
$(FUZZ_DIR)/flags-$(1).txt: FORCE
	@mkdir -p $$(@D)
	@echo '$$(FUZZ_CC) $$(FUZZ_CFLAGS) $$(FUZZ_WARN) $$(FUZZ_COV) $(2) $(3)' | cmp -s - $$@ || \
	    echo '$$(FUZZ_CC) $$(FUZZ_CFLAGS) $$(FUZZ_WARN) $$(FUZZ_COV) $(2) $(3)' > $$@
$(FUZZ_DIR)/obj-$(1)/%.o: %.c $(FUZZ_DIR)/flags-$(1).txt
	@mkdir -p $$(@D)
	$$(FUZZ_CC) $$(call fuzz_flags,$$<) $(2) $(3) -MMD -MP -c $$< -o $$@
$$(FUZZ_BIN_$(1)): $$(FUZZ_OBJS_$(1))
	$$(FUZZ_CC) -fsanitize=fuzzer $$(FUZZ_SAN) -o $$@ $$^ -lm
endef
$(eval $(call fuzz_rules,real,$(FUZZ_REAL_INCS),-DFUZZ_STUBS=0))
$(eval $(call fuzz_rules,stubs,$(FUZZ_STUB_INCS),-DFUZZ_STUBS=1))

fuzz-build: $(FUZZ_BIN_real) $(FUZZ_BIN_stubs)

# Seed corpus: valid sessions written by host/protocol.py's encoder.
fuzz-seeds: $(FUZZ_SEEDS)/.stamp
$(FUZZ_SEEDS)/.stamp: $(FUZZ_SRC)/gen_seeds.py ../host/protocol.py
	rm -rf $(FUZZ_SEEDS)
	$(FUZZ_PYTHON) $(FUZZ_SRC)/gen_seeds.py $(FUZZ_SEEDS)
	@touch $@

fuzz: $(FUZZ_BIN) fuzz-seeds
	$(FUZZ_PYTHON) $(FUZZ_SRC)/run_fuzz.py run --binary $(FUZZ_BIN) --seconds $(FUZZ_SECONDS) \
	    --corpus $(FUZZ_CORPUS) --seeds $(FUZZ_SEEDS) --dict $(FUZZ_SRC)/protocol.dict \
	    --artifacts $(FUZZ_ARTIFACTS) --timeout $(FUZZ_TIMEOUT) --rss-limit-mb $(FUZZ_RSS_MB) \
	    --max-len $(FUZZ_MAX_LEN) --summary $(FUZZ_SUMMARY) $(if $(strip $(FUZZ_ARGS)),--extra="$(FUZZ_ARGS)")

fuzz-regress: $(FUZZ_BIN_real) $(FUZZ_BIN_stubs)
	$(FUZZ_PYTHON) $(FUZZ_SRC)/run_fuzz.py regress --binary $(FUZZ_BIN_real) --binary $(FUZZ_BIN_stubs) \
	    --regressions $(FUZZ_SRC)/regressions --work $(FUZZ_DIR)/regressions

# Source coverage: the real variant built with clang's coverage mapping (no
# sanitizers), run once over the corpus and the seeds, reported by llvm-cov.
FUZZ_COV_BIN := $(FUZZ_DIR)/fuzz_protocol_cov
FUZZ_COV_OBJS := $(call fuzz_objs,cov,$(FUZZ_REAL_SRCS))
FUZZ_COV_FILES := src/sd_frame.c src/sd_protocol.c src/sd_decide.c src/sd_app.c src/sd_frontend.c src/sd_model.c
LLVM_PROFDATA ?= llvm-profdata
LLVM_COV ?= llvm-cov
$(FUZZ_DIR)/obj-cov/%.o: %.c $(FUZZ_DIR)/flags-real.txt
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=c99 -O1 -g -ffp-contract=off -fprofile-instr-generate -fcoverage-mapping \
	    -fsanitize=fuzzer-no-link $(FUZZ_REAL_INCS) -DFUZZ_STUBS=0 \
	    $(if $(filter src/sd_app.c,$<),-Dmain=sd_app_main) -MMD -MP -c $< -o $@
$(FUZZ_COV_BIN): $(FUZZ_COV_OBJS)
	$(FUZZ_CC) -fsanitize=fuzzer -fprofile-instr-generate -o $@ $^ -lm
fuzz-cov: $(FUZZ_COV_BIN) fuzz-seeds
	rm -f $(FUZZ_DIR)/cov.profraw
	LLVM_PROFILE_FILE=$(FUZZ_DIR)/cov.profraw $(FUZZ_COV_BIN) -runs=0 $(wildcard $(FUZZ_CORPUS)) $(FUZZ_SEEDS) \
	    > $(FUZZ_DIR)/cov.log 2>&1
	$(LLVM_PROFDATA) merge -o $(FUZZ_DIR)/cov.profdata $(FUZZ_DIR)/cov.profraw
	$(LLVM_COV) report $(FUZZ_COV_BIN) -instr-profile=$(FUZZ_DIR)/cov.profdata $(FUZZ_COV_FILES)

-include $(shell find $(FUZZ_DIR) -name '*.d' 2>/dev/null)
