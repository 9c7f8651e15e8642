# Reface: build, model, run and test. One non-recursive Makefile.
#
# Knobs:
#   SAN=1    build with AddressSanitizer and UBSan into build/san/
#   DEBUG=1  -O0 -g3 instead of -O2 -g
#   V=1      print every command
#   DIR=...  folder with labels.csv for `make eval` (default ../shared/eval/dev)
#
# Targets: all (default), deps, model, run, test, eval, clean.

PYTHON    ?= /usr/bin/python3
CC        ?= gcc
CXX       ?= g++

ifeq ($(SAN),1)
OUT       := build/san
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer \
             -fno-sanitize-recover=undefined
else
OUT       := build
SANFLAGS  :=
endif

ifeq ($(DEBUG),1)
OPT       := -O0 -g3
else
OPT       := -O2 -g
endif

Q         := $(if $(filter 1,$(V)),,@)

WARN      := -Wall -Wextra -Werror
CPPFLAGS  := -I. -MMD -MP
CFLAGS    := -std=c11 $(OPT) $(WARN) $(SANFLAGS)
TORCH_INC := -I/usr/include/torch/csrc/api/include
CXXFLAGS  := -std=c++17 $(OPT) $(WARN) $(SANFLAGS) $(TORCH_INC)
LDLIBS    := -ltorch_cpu -lc10 -lfcgi -lmagic -ljansson -lm
LDFLAGS   := $(SANFLAGS)

CORE_C    := $(wildcard core/*.c)
CORE_OBJ  := $(CORE_C:%.c=$(OUT)/obj/%.o) $(OUT)/obj/core/model.o
FCGI_OBJ  := $(patsubst %.c,$(OUT)/obj/%.o,$(filter-out fcgi/main.c,$(wildcard fcgi/*.c)))
TOOL_BINS := $(OUT)/bin/reface-eval
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(OUT)/test/%)

MODEL     := models/faceapi.pt

.PHONY: all deps model run test eval clean unit-tests
.DELETE_ON_ERROR:

all: $(OUT)/bin/reface-fcgi $(TOOL_BINS) $(UNIT_BINS)

$(OUT)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(OUT)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(Q)$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

# Linked with the C++ driver because core/model.o needs libstdc++.
$(OUT)/bin/reface-fcgi: $(OUT)/obj/fcgi/main.o $(FCGI_OBJ) $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(Q)$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/bin/reface-%: $(OUT)/obj/tools/%.o $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(Q)$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

# Each unit test links the core and the front end minus main().
$(OUT)/test/%: $(OUT)/obj/tests/unit/%.o $(FCGI_OBJ) $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(Q)$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

unit-tests: $(UNIT_BINS)

deps:
	$(Q)scripts/install-deps.sh

# The default model is generated from the pinned npm tarball, not committed.
$(MODEL): scripts/convert_faceapi.py scripts/faceapi_nets.py scripts/fetch_faceapi.sh
	$(Q)scripts/fetch_faceapi.sh
	$(Q)$(PYTHON) scripts/convert_faceapi.py --src build/npm/face-api/model --out $@

model: deps $(MODEL)

run: deps $(MODEL) all
	$(Q)scripts/run.sh

test: deps $(MODEL)
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory SAN=1 unit-tests
	$(Q)tests/run.sh

DIR ?= ../shared/eval/dev
eval: deps $(MODEL) $(OUT)/bin/reface-eval
	$(Q)$(OUT)/bin/reface-eval --model $(MODEL) $(EVAL_FLAGS) $(DIR)

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
