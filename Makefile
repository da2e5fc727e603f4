# krunbench: see README.md. Static binaries everywhere.
export CGO_ENABLED := 0
GO       ?= go
BIN      := bin/krunbench
PKGS     := ./...
# FUZZEXECS: inputs per fuzz target in make fuzz. A count, not a time:
# go1.26's -fuzztime=<duration> fails with "context deadline exceeded" when
# its deadline races a worker starved by a busy machine (golang/go#75804,
# fixed in go1.27), and a count does the same work however busy CI is.
FUZZEXECS ?= 10000x

.PHONY: all build test unit fuzz lint bench run clean kernel init e2e-kvm embed-check conformance conformance-serve conformance-guest flood pictures bench-session bench-session-dry

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/krunbench

# test: everything CI runs. The FUSE and escape tests mount through
# /dev/fuse and need root; they skip (loudly) without it. conformance
# takes about 15 minutes on a busy 2-core machine (serve 5-8, guest 7-8).
test: lint unit fuzz embed-check conformance e2e-kvm

# embed-check: krunbench as a library and as `go install ...@latest` see
# it, from outside the module tree (.ci/embed-check.sh): a program in a
# temporary module importing initlib/defaultinit and vmm/builder, and the
# CLI installed into a clean GOPATH listing the default init (about a
# minute, no network).
embed-check:
	GO=$(GO) .ci/embed-check.sh

# e2e-kvm: the KVM tests (vmm/kvm, vmm/vcpu, vmm/builder, session,
# krunbench run --engine kvm) inside an L1 Linux under QEMU TCG with nested
# SVM, where this machine has no hardware KVM (see vmm/l1/run.sh); with
# hardware KVM they already ran in unit.
e2e-kvm: build
	vmm/l1/run.sh test

# flood: issue 16's console flood at full size, not part of test: a guest
# prints 200 MiB of numbered lines through a deliberately slow reader, on
# the QEMU engine (TCG) and, in L1, on the KVM engine; every line must
# arrive, in order. make test runs the QEMU one with 8 MiB (unit); the KVM
# one only here, in L1 (see TestKVMConsoleFloodLosesNothing: it failed
# there). FLOOD_MIB changes the size; FLOOD_L1_MIB the KVM one's in L1,
# where the flood moves 6 to 10 KB/s (200 MiB would take 6 to 10 hours;
# DEVELOPERS.md, "the console flood").
FLOOD_MIB ?= 200
FLOOD_L1_MIB ?= 4
flood: build
	KRUNBENCH_FLOOD_MIB=$(FLOOD_MIB) $(GO) test -count=1 -timeout 90m -v -run '^TestQEMUConsoleFloodLosesNothing$$' ./cmd/krunbench/
	KRUNBENCH_FLOOD_MIB=$(FLOOD_L1_MIB) KRUNBENCH_L1_FLOOD=1 KRUNBENCH_L1_TIMEOUT=5400 KRUNBENCH_L1_TEST_TIMEOUT=5000 vmm/l1/run.sh test

unit:
	$(GO) test -count=1 -timeout 20m $$($(GO) list $(PKGS) | grep -v '/virtiofs/fusedev$$')
	$(GO) test -count=1 -timeout 5m ./virtiofs/fusedev/
	cd bench && $(GO) test -count=1 -timeout 5m ./guestbench/...
	cd bench && $(GO) test -count=1 -timeout 5m ./fusebench ./summary ./tuibench ./bootbench ./internal/hostinfo ./internal/results ./internal/fsops ./internal/cli ./internal/perfprof

# conformance: pjdfstest (../shared/conformance) through `krunbench serve
# --mount` and inside a QEMU guest over virtio-fs; fails unless 0 subtests
# failed in both (conformance/run.sh; pjdfstest is built once, static, into
# ~/.cache/krunbench). CONFORMANCE_DIRS limits it to some test directories
# (chmod chown ...); `conformance/run.sh native` runs the same on the host's
# own filesystem for reference.
conformance: build
	conformance/run.sh all $(CONFORMANCE_DIRS)

conformance-serve: build
	conformance/run.sh serve $(CONFORMANCE_DIRS)

conformance-guest: build
	conformance/run.sh guest $(CONFORMANCE_DIRS)

# Short runs of every fuzz target (seed corpora live in testdata/fuzz);
# FuzzServe takes ~10 s idle, ~50 s beside two CPU hogs on 2 cores. Each
# virtiofs target fails an input that runs over a minute (a hang).
# FuzzSequence: request sequences against a real directory with an escape
# oracle and small, split, sometimes empty reply buffers.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZEXECS) ./virtiofs/fuse
	$(GO) test -run '^$$' -fuzz '^FuzzServe$$' -fuzztime $(FUZZEXECS) ./virtiofs/fuse
	$(GO) test -run '^$$' -fuzz '^FuzzSequence$$' -fuzztime $(FUZZEXECS) ./virtiofs/fuse
	$(GO) test -run '^$$' -fuzz '^FuzzQueue$$' -fuzztime $(FUZZEXECS) ./vmm/virtio
	$(GO) test -run '^$$' -fuzz '^FuzzMMIO$$' -fuzztime $(FUZZEXECS) ./vmm/virtio/mmio
	$(GO) test -run '^$$' -fuzz '^FuzzVhostUser$$' -fuzztime $(FUZZEXECS) ./virtiofs/vhostuser

lint:
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

# bench: side-by-side benchmarks (not part of test); tables on stdout, JSON
# under bench/results/. guestbench (krunbench vs virtiofsd as the virtio-fs backend of a QEMU
# guest) skips itself without qemu-system-x86_64 or a guest kernel
# ($$KRUNBENCH_KERNEL, or -kernel in BENCHGUEST); tuibench (the TUI under a
# flood, compared with fusebench's tap overhead) also without tmux or
# busybox (flags in TUIBENCHFLAGS); bootbench (krunbench run -- true on
# in-process KVM vs QEMU microvm -accel kvm, inside the L1 of e2e-kvm)
# without qemu or a bzImage.
bench: build
	cd bench && CGO_ENABLED=0 $(GO) run ./fusebench -bin ../$(BIN) -go $(GO) -out results/fuse.json $(BENCHFLAGS)
	cd bench && CGO_ENABLED=0 $(GO) run ./guestbench -bin ../$(BIN) -go $(GO) -out results/guest.json $(BENCHGUEST)
	cd bench && CGO_ENABLED=0 $(GO) run ./tuibench -bin ../$(BIN) -out results/tui.json $(TUIBENCHFLAGS)
	cd bench && CGO_ENABLED=0 $(GO) run ./bootbench -out results/boot.json $(BOOTBENCHFLAGS)

# bench-session: the one full run for issue 15's closing note, sized for
# about 37 minutes (45 at most) on a 2-core machine (bench/README.md, "One
# session"): fusebench on default settings (every row: cold and warm,
# concurrency, mixed, memory at 100k inodes, no-tap and rules100; 6
# rounds), fusebench on tuned settings on the rows tuning changes (seq
# write and cold read, 512 MiB, 10 rounds; where the balloon driver
# cannot be unbound, -keep-balloon and the label says so) into fuse-tuned.json,
# guestbench (4 rounds, judged on the median of per-round ratios; the
# 100k memory-large walk in the first 2 only: about 15 minutes, against
# 11 for 2 rounds in session 14's run: a round with memory-large takes
# about 290 s (krunbench's boot 148-164 s of it), one without about 105 s,
# and the counting boots 80 s), tuibench (run and tui, 2 runs), bootbench (5 runs,
# in the nested L1, under the L1 lock), then bench/summary: the markdown
# tables with every target met or missed, also in summary.md. A step that
# fails is reported and the others still run; make fails at the end.
# Needs root. SESSION_OUT (relative to bench/) is where the JSON goes;
# SESSION_FUSE, SESSION_TUNED, SESSION_GUEST, SESSION_TUI, SESSION_BOOT
# add flags to one step (later flags win). bench-session-dry runs the same
# recipe at tiny sizes into /tmp (about 3 minutes: it proves every step
# runs and writes its JSON; its numbers mean nothing).
SESSION_OUT    ?= results
SESSION_LABEL  ?= make bench-session, quiet machine
SESSION_KERNEL ?= $(or $(KRUNBENCH_KERNEL),$(abspath ../shared/guest/bzImage))
SESSION_L1LOCK ?= flock /tmp/krunbench-l1.lock
SESSION_FAILED  = $(SESSION_OUT)/bench-session.failed
SESSION_GORUN   = env CGO_ENABLED=0 KRUNBENCH_KERNEL=$(SESSION_KERNEL) $(GO) run
bench-session: build
	cd bench && mkdir -p $(SESSION_OUT) && rm -f $(SESSION_FAILED)
	@date -u +'== %T UTC fusebench, default settings'
	cd bench && $(SESSION_GORUN) ./fusebench -bin ../$(BIN) -go $(GO) -settings default -runs 6 -label '$(SESSION_LABEL), default settings' -out $(SESSION_OUT)/fuse.json $(SESSION_FUSE) || echo 'fusebench (default settings)' >>$(SESSION_FAILED)
	@date -u +'== %T UTC fusebench, tuned settings (write, read)'
	cd bench && keep=$$(test -w /sys/bus/virtio/drivers/virtio_balloon/unbind || echo -keep-balloon) && $(SESSION_GORUN) ./fusebench -bin ../$(BIN) -go $(GO) -settings tuned -modes host,tap,go-fuse,passthrough_hp -workloads write,read -size 512M -dirs 15 -runs 10 $$keep -label "$(SESSION_LABEL), tuned settings$${keep:+ (pipes raised; the balloon left bound: its driver cannot be unbound here)}" -out $(SESSION_OUT)/fuse-tuned.json $(SESSION_TUNED) || echo 'fusebench (tuned settings)' >>$(SESSION_FAILED)
	@date -u +'== %T UTC guestbench'
	cd bench && $(SESSION_GORUN) ./guestbench -bin ../$(BIN) -go $(GO) -runs 4 -large-runs 2 -label '$(SESSION_LABEL)' -out $(SESSION_OUT)/guest.json $(SESSION_GUEST) || echo guestbench >>$(SESSION_FAILED)
	@date -u +'== %T UTC tuibench'
	cd bench && $(SESSION_GORUN) ./tuibench -bin ../$(BIN) -runs 2 -modes run,tui -fuse $(SESSION_OUT)/fuse.json -out $(SESSION_OUT)/tui.json $(SESSION_TUI) || echo tuibench >>$(SESSION_FAILED)
	@date -u +'== %T UTC bootbench (waits for the L1 lock)'
	cd bench && $(SESSION_L1LOCK) $(SESSION_GORUN) ./bootbench -runs 5 -kernel $(SESSION_KERNEL) -out $(SESSION_OUT)/boot.json $(SESSION_BOOT) || echo bootbench >>$(SESSION_FAILED)
	@date -u +'== %T UTC summary'
	cd bench && $(GO) run ./summary -dir $(SESSION_OUT) >$(SESSION_OUT)/summary.md; rc=$$?; cat $(SESSION_OUT)/summary.md; [ $$rc = 0 ] || echo summary >>$(SESSION_FAILED)
	@cd bench && if [ -s $(SESSION_FAILED) ]; then echo "bench-session: FAILED steps:"; cat $(SESSION_FAILED); exit 1; fi; echo "bench-session: every step ran; the JSON and summary.md are in $(SESSION_OUT) (relative to bench/)"

bench-session-dry:
	$(MAKE) bench-session SESSION_OUT=/tmp/krunbench-bench-dry SESSION_LABEL='bench-session-dry, tiny sizes' \
		SESSION_FUSE='-quick -runs 2 -mem-files 3000' \
		SESSION_TUNED='-quick -size 32M -dirs 2 -runs 2' \
		SESSION_GUEST='-runs 2 -large-runs 1 -dirs 2 -size 32M -creates 500 -memory-files 5000 -memory-large-files 6000' \
		SESSION_TUI='-runs 1 -dirs 2' \
		SESSION_BOOT='-runs 1'

# run: the workbench on a booted guest: builds or finds QEMU, the demo
# busybox root filesystem and a guest kernel, then opens the TUI.
run: build
	demo/run.sh $(RUN_ARGS)

# pictures: the README's pictures (docs/pictures/*.svg) from a real
# session in tmux (demo/pictures.sh; about a minute), rendered by
# charmbracelet/freeze (go run, pinned; needs the module proxy once).
# Commit them. make unit runs the tmux half (TestPicturesScriptCaptures).
pictures: build
	GO=$(GO) demo/pictures.sh

# init: rebuild the default init (initlib/cmd/krun-init) into the image
# initlib/defaultinit embeds; commit it with the source change. The image
# is committed so that `go install` and importers outside this module get
# it; `make unit` checks that it is what the tree builds
# (TestImageIsBuiltFromTheTree).
init:
	GO=$(GO) initlib/defaultinit/build.sh

# kernel: build the guest kernel from Debian's linux-source-6.1 into
# ~/.local/share/krunbench/kernel (about 13 minutes on 2 cores).
kernel:
	kernel/build.sh

clean:
	rm -rf bin build
