# krunbench: see README.md. Static binaries everywhere.
export CGO_ENABLED := 0
# The default init is embedded into the CLI behind this tag (see
# initlib/defaultinit); every target that compiles the CLI builds it first.
export GOFLAGS := -tags=krunbench_init
INIT     := initlib/defaultinit/krun-init
INIT_SRC := $(shell find initlib/cmd/krun-init initlib/kruninit -name '*.go' -not -name '*_test.go')
GO       ?= go
BIN      := bin/krunbench
PKGS     := ./...
FUZZTIME ?= 10s
RUN_DIR  ?= /tmp/krunbench-run

.PHONY: all build test unit fuzz lint bench run clean kernel init

all: build

build: $(INIT)
	$(GO) build -trimpath -o $(BIN) ./cmd/krunbench

# test: everything CI runs. The FUSE and escape tests mount through
# /dev/fuse and need root; they skip (loudly) without it.
test: lint unit fuzz

unit: $(INIT)
	$(GO) test -count=1 -timeout 20m $(PKGS)

# Short runs of every fuzz target (seed corpora live in testdata/fuzz).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./virtiofs/fuse
	$(GO) test -run '^$$' -fuzz '^FuzzServe$$' -fuzztime $(FUZZTIME) ./virtiofs/fuse
	$(GO) test -run '^$$' -fuzz '^FuzzQueue$$' -fuzztime $(FUZZTIME) ./vmm/virtio

lint: $(INIT)
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

# bench: side-by-side benchmarks (not part of test); tables on stdout, JSON
# under bench/results/.
bench: build
	cd bench && CGO_ENABLED=0 $(GO) run ./fusebench -bin ../$(BIN) -go $(GO) -out results/fuse.json $(BENCHFLAGS)

# run: serve a demo directory through /dev/fuse with the default payload
# and print the live FUSE trace; Ctrl-C unmounts.
run: build
	mkdir -p $(RUN_DIR)/share $(RUN_DIR)/mnt
	echo 'hello from krunbench' > $(RUN_DIR)/share/hello.txt
	printf '#!/bin/sh\necho demo init\n' > $(RUN_DIR)/init.sh
	$(BIN) serve --shared-dir $(RUN_DIR)/share --mount $(RUN_DIR)/mnt --init $(RUN_DIR)/init.sh --trace -

# init: the default init, a static program embedded (behind a build tag) by
# initlib/defaultinit.
init: $(INIT)

$(INIT): $(INIT_SRC)
	$(GO) build -trimpath -ldflags='-s -w' -o $@ ./initlib/cmd/krun-init

# kernel: build the guest kernel from Debian's linux-source-6.1 into
# ~/.local/share/krunbench/kernel (about 13 minutes on 2 cores).
kernel:
	kernel/build.sh

clean:
	rm -rf bin build
