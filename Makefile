# Thin wrapper over CMake. The two commands a new user needs:
#   make demo   install what is missing, build, generate a sample catalog,
#               build a bundle and print similar items and recommendations
#   make test   install what is missing, build, run every test through ctest
# Reliability (docs/reliability.md; in build-asan/ and build-fuzz/):
#   make sanitize   the tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   make fuzz       the libFuzzer harnesses, FUZZ_SECONDS (default 60) each
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
VITRINE := $(BUILD_DIR)/cli/vitrine
DEMO_DIR ?= demo

.PHONY: all deps configure build test demo bench sanitize fuzz format tidy clean

all: build

deps:
	bash scripts/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

demo: build
	bash scripts/demo.sh $(VITRINE) $(DEMO_DIR)

bench: build
	bash scripts/bench.sh $(BUILD_DIR)

sanitize:
	JOBS=$(JOBS) bash scripts/sanitize.sh

fuzz:
	JOBS=$(JOBS) bash scripts/fuzz.sh

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

tidy: configure
	clang-tidy -p $(BUILD_DIR) $$(git ls-files '*.cc')

clean:
	rm -rf $(BUILD_DIR) $(DEMO_DIR) build-asan build-fuzz
