# fstrail: the README's two commands are `make demo` and `make test`.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
MAKEFLAGS += --no-print-directory

.PHONY: all deps build demo test unit-asan bench clean format deb

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

demo: build
	@scripts/demo.sh $(BUILD)/fstrail

# Every tier: unit (also under ASan/UBSan), host integration as root, VM integration (the
# .deb in a systemd guest among them).
test: build deb
	@scripts/run-tests.sh $(BUILD) $(ASAN_BUILD)

# fstrail_VERSION_amd64.deb in $(BUILD)/, built by debhelper in a clean copy ($(BUILD)/deb/).
deb: deps
	@scripts/build-deb.sh $(BUILD)

bench: build
	@bench/run.sh $(BUILD)

format:
	@find src tests bench -name '*.cc' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
