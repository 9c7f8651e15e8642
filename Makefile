# Reface: build, model, run and test. One non-recursive Makefile.
#
# Knobs:
#   SAN=1    build with AddressSanitizer and UBSan into build/san/
#   DEBUG=1  -O0 -g3 instead of -O2 -g
#   V=1      print every command
#   DIR=...  folder with labels.csv for `make eval` (default ../shared/eval/dev)
#   FUZZ_TIME=seconds  per harness for `make fuzz` (default 600)
#   SOAK_REQUESTS=n    requests of `make soak` (default 100000)
#
# Targets: all (default), deps, model, run, test, eval, train, train-resnet,
# bench, fuzz, soak, clean.

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
LDLIBS    := -ltorch_cpu -lc10 -lfcgi -lmagic -ljansson -lcrypto \
             -lturbojpeg -lexif -lseccomp -lm
LDFLAGS   := $(SANFLAGS)

CORE_C    := $(wildcard core/*.c)
CORE_OBJ  := $(CORE_C:%.c=$(OUT)/obj/%.o) $(OUT)/obj/core/model.o
FCGI_OBJ  := $(patsubst %.c,$(OUT)/obj/%.o,$(filter-out fcgi/main.c,$(wildcard fcgi/*.c)))
TOOL_BINS := $(OUT)/bin/reface-eval
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(OUT)/test/%)

# The served model: face-api's trunks + the committed trained heads.
MODEL     := models/reface.pt
FACEAPI   := models/faceapi.pt
HEADS     := models/reface_heads.npz
DETECTOR  := models/detector.pt

.PHONY: all deps model run test eval train train-resnet clean unit-tests \
        fuzz fuzz-build bench soak
.DELETE_ON_ERROR:
# Keep intermediate objects (the unit tests' .o files) between builds.
.SECONDARY:

# reface-stages too, so that a change of core/ that breaks the bench fails
# the build (it once went unnoticed until the next `make bench`).
all: $(OUT)/bin/reface-fcgi $(TOOL_BINS) $(OUT)/bin/reface-stages $(UNIT_BINS)

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

# face-api's converted nets are generated from the pinned npm tarball, not
# committed; the served model adds the committed heads to their trunks.
$(FACEAPI): scripts/convert_faceapi.py scripts/faceapi_nets.py scripts/fetch_faceapi.sh models/faceapi.accuracy.json
	$(Q)scripts/fetch_faceapi.sh
	$(Q)$(PYTHON) scripts/convert_faceapi.py --src build/npm/face-api/model --out $@

$(MODEL): $(FACEAPI) $(HEADS) models/reface.card.json models/reface.accuracy.json \
    scripts/compose_reface.py scripts/reface_heads.py
	$(Q)scripts/fetch_faceapi.sh
	$(Q)$(PYTHON) scripts/compose_reface.py --src build/npm/face-api/model \
	    --heads $(HEADS) --card models/reface.card.json --out $@

# The face detector comes from the same pinned tarball (same fetch script).
$(DETECTOR): scripts/convert_detector.py scripts/faceapi_detector.py scripts/faceapi_nets.py scripts/fetch_faceapi.sh
	$(Q)scripts/fetch_faceapi.sh
	$(Q)$(PYTHON) scripts/convert_detector.py --src build/npm/face-api/model --out $@

model: deps $(FACEAPI) $(MODEL) $(DETECTOR)

run: deps $(FACEAPI) $(MODEL) $(DETECTOR) all
	$(Q)scripts/run.sh

test: deps $(FACEAPI) $(MODEL) $(DETECTOR)
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory SAN=1 unit-tests build/san/bin/reface-fcgi
	$(Q)$(MAKE) --no-print-directory fuzz-build
	$(Q)tests/run.sh

# Accuracy through the C pipeline; the JSON copy is what the model card
# quotes (models/reface.accuracy.json and models/faceapi.accuracy.json are
# committed from this command, with EVAL_MODEL=models/faceapi.pt for the
# latter).
DIR ?= ../shared/eval/dev
eval: deps $(FACEAPI) $(MODEL) $(DETECTOR) $(OUT)/bin/reface-eval
	$(Q)$(OUT)/bin/reface-eval --model $(EVAL_MODEL) --json build/eval.json $(EVAL_FLAGS) $(DIR)
EVAL_MODEL ?= $(MODEL)

# Heads on face-api's frozen features (README "Training"): the features of
# TRAIN_DIRS (default: the shared training folders) are computed once and
# cached in build/features (niced, TRAIN_JOBS processes), the heads are
# trained with the recorded configuration and composed into
# build/train/reface.pt, then compared with the committed heads.
# TRAIN_DETECT_DIRS (of TRAIN_DIRS) also train on the server's detector
# crops: reface-eval --rects writes the rectangle the C pipeline gave the
# attribute model for each photo to build/rects/<folder>.tsv, redone when
# the detector, the eval tool (the pipeline's code) or the labels change;
# the features of those crops are cached keyed on the file's bytes.
TRAIN_DIRS  ?= ../shared/train/ferplus ../shared/train/utkface ../shared/train/ffhq_azure
TRAIN_DETECT_DIRS ?= ../shared/train/ffhq_azure
TRAIN_JOBS  ?= 2
TRAIN_FLAGS ?=
TRAIN_RECTS := $(foreach d,$(TRAIN_DETECT_DIRS),build/rects/$(notdir $(d)).tsv)

# The rectangles of one folder ($(1)); faceapi.pt as the attribute model,
# because the choice of face does not depend on it and the served model
# depends on the heads trained from these files.
define train_rects_rule
build/rects/$(notdir $(1)).tsv: $(1)/labels.csv $(DETECTOR) $(FACEAPI) $(OUT)/bin/reface-eval
	@mkdir -p build/rects
	$(Q)nice $(OUT)/bin/reface-eval --model $(FACEAPI) --detector $(DETECTOR) \
	    --rects $$@.tmp $(1) >$$@.log && mv $$@.tmp $$@
endef
$(foreach d,$(TRAIN_DETECT_DIRS),$(eval $(call train_rects_rule,$(d))))

train: deps $(FACEAPI) $(DETECTOR) $(TRAIN_RECTS)
	$(Q)nice $(PYTHON) scripts/extract_features.py --src build/npm/face-api/model \
	    --out build/features --jobs $(TRAIN_JOBS) --detector $(DETECTOR) \
	    $(addprefix --rects ,$(TRAIN_RECTS)) $(TRAIN_DIRS)
	$(Q)nice $(PYTHON) scripts/train_heads.py --features build/features \
	    --out build/train/reface_heads.npz --report build/train/report.json \
	    $(addprefix --detected ,$(TRAIN_DETECT_DIRS)) $(TRAIN_FLAGS) $(TRAIN_DIRS)
	$(Q)$(PYTHON) scripts/compose_reface.py --src build/npm/face-api/model \
	    --heads build/train/reface_heads.npz --card models/reface.card.json \
	    --out build/train/reface.pt
	$(Q)$(PYTHON) scripts/compare_heads.py $(HEADS) build/train/reface_heads.npz \
	    --features build/features $(addprefix --detected ,$(TRAIN_DETECT_DIRS)) \
	    $(TRAIN_DIRS) || \
	    echo "train: the new heads differ from $(HEADS) (see above)"
	@echo "train: wrote build/train/reface_heads.npz and build/train/reface.pt;" \
	    "measure with: make eval EVAL_MODEL=build/train/reface.pt;" \
	    "ship with: cp build/train/reface_heads.npz $(HEADS)"

# The original's ResNet + CBAM from scratch (one epoch is about 2 hours on
# 2 cores), exported next to its checkpoints.
RESNET_FLAGS ?= --epochs 1
train-resnet: deps
	$(Q)$(PYTHON) scripts/train_ffhq_soft.py --out build/train-resnet $(RESNET_FLAGS) $(TRAIN_DIRS)
	$(Q)$(PYTHON) scripts/export_torchscript.py build/train-resnet/best.pt build/train-resnet/reface.pt
	@echo "train-resnet: wrote build/train-resnet/reface.pt and its card"

# libFuzzer harnesses (tests/fuzz/README.md): clang-14 with ASan, UBSan and
# coverage, each harness compiled in one step with the sources it covers.
# fuzz_handler gets tests/fuzz/fake_model.c instead of libtorch.
FUZZ_CC     := clang-14
FUZZ_CFLAGS := -std=c11 -g -O1 -I. $(WARN) -fno-omit-frame-pointer \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_BINS   := build/fuzz/fuzz_multipart build/fuzz/fuzz_image build/fuzz/fuzz_handler
FUZZ_TIME   ?= 600

build/fuzz/fuzz_multipart: tests/fuzz/fuzz_multipart.c core/multipart.c core/result.c
build/fuzz/fuzz_image: tests/fuzz/fuzz_image.c core/sniff.c core/image.c \
    core/preprocess.c core/result.c
build/fuzz/fuzz_handler: tests/fuzz/fuzz_handler.c tests/fuzz/fake_model.c \
    fcgi/handler.c fcgi/status.c fcgi/metrics.c fcgi/scoreboard.c $(CORE_C)
$(FUZZ_BINS): $(wildcard core/*.h fcgi/*.h)
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(filter %.c,$^) -lmagic -ljansson \
	    -lturbojpeg -lexif -lm -o $@

fuzz-build: $(FUZZ_BINS)

# Long runs, FUZZ_TIME seconds per harness, niced; new inputs go to
# build/fuzz/corpus/, crashes to build/fuzz/crashes/.
fuzz: deps fuzz-build
	$(Q)nice tests/fuzz/run.sh long $(FUZZ_TIME)

# The benchmark (bench/README.md): in-process stages, wrk through nginx,
# the FastAPI peer, the heavy model. Not part of `make test`.
BENCH_FLAGS ?=
$(OUT)/bin/reface-stages: $(OUT)/obj/bench/stages.o $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(Q)$(CXX) $(LDFLAGS) $^ $(LDLIBS) -o $@

bench: deps $(MODEL) $(DETECTOR) all $(OUT)/bin/reface-stages
	$(Q)$(PYTHON) bench/run.py $(BENCH_FLAGS)

# The long soak (tests/e2e/test_soak.sh, 100,000 mixed requests through
# nginx, each worker's RSS and PSS at the start and the end), then the
# LeakSanitizer run of the ASan server on LEAK_REQUESTS requests.
SOAK_REQUESTS ?= 100000
LEAK_REQUESTS ?= 1000
soak: deps $(MODEL) $(DETECTOR)
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory SAN=1 build/san/bin/reface-fcgi
	$(Q)SOAK_REQUESTS=$(SOAK_REQUESTS) SOAK_ROUNDS=10 nice sh tests/e2e/test_soak.sh
	$(Q)LEAK_REQUESTS=$(LEAK_REQUESTS) nice sh tests/e2e/test_leaks.sh

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
