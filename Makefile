# Spoken digits on a microcontroller, with proof of parity.
#   make demo   - set up, then released model -> int8 -> firmware -> parity on the emulated board
#   make test   - set up, then the test suite (about 15 minutes on 2 cores)
#   make bench  - full-dataset benchmarks, rewrites BENCHMARKS.md
# Set-up is automatic: a local venv (.venv) with the pinned Python packages and,
# when missing, the Debian packages for the firmware (gcc-arm-none-eabi,
# libnewlib-arm-none-eabi, qemu-system-arm; needs root or sudo).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
MODEL  ?= models/released
DATA   ?= $(firstword $(wildcard ../shared/data/fsdd) $(FSDD_DIR))
DATA_ARG := $(if $(DATA),--data-dir $(DATA),)

.PHONY: setup venv deps demo test test-fast bench train convert firmware clean help fuzz

help:
	@sed -n '2,8p' Makefile

setup: venv deps

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,piper]'
	touch $@

deps:
	bash firmware/tools/install-deps.sh

# The release process (train/release.py): the release recipe on three seeds, one chosen on training data only
# (streams of training-split digits and the training noise), installed into models/released with firmware/generated.
train: venv
	$(PY) -m train.release $(DATA_ARG) --install

# The chain: the released model (trained first if absent) -> int8 + generated C
# (converted again only when the model changed) -> firmware -> parity against
# QEMU's Cortex-M4F on the 300 test clips.
DEMO_BOARD ?= mps2-an386
demo: setup
	@if [ ! -f $(MODEL)/model.keras ]; then $(PY) -m train $(DATA_ARG) --out $(MODEL); fi
	$(PY) -m train.evaluate --model $(MODEL) $(DATA_ARG) --no-progress > /dev/null
	@if [ ! -f $(MODEL)/model_int8.tflite ] || [ $(MODEL)/model.keras -nt $(MODEL)/model_int8.tflite ]; then \
	    $(PY) -m convert.quantize --model $(MODEL) $(DATA_ARG); fi
	$(MAKE) -C firmware BOARD=$(DEMO_BOARD)
	$(PY) -m host.parity --port emulator:$(DEMO_BOARD) --model $(MODEL) $(DATA_ARG) --split test \
	    --report out/parity-$(DEMO_BOARD).json --plots out/plots-$(DEMO_BOARD)

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) -m benchmarks.run $(DATA_ARG)

# libFuzzer + ASan/UBSan on the firmware's protocol for FUZZ_SECONDS (60);
# summary in firmware/build/fuzz/summary.json (firmware/tests/fuzz/README.md).
FUZZ_SECONDS ?= 60
fuzz:
	$(MAKE) -C firmware fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)

clean:
	rm -rf firmware/build .pytest_cache
