// Command fusebench times file-system workloads through /dev/fuse mounts
// of krunbench serve --mount (with and without its tap, and with 100
// rules), go-fuse's loopback and libfuse's passthrough_hp, beside the host
// directory itself: sequential write and cold read, find+stat, create and
// unlink, each cold (a fresh server and mount per sample on default
// settings) and warm; eight parallel clients; a writer beside a stat-only
// client (the small client's p99); and server RSS after 100,000 lookups.
// Rounds rotate the order of the modes; ratios are taken within a round.
// One file per row family (workloads.go, concurrency.go, mixed.go,
// inodes.go, rules.go, report*.go); see bench/README.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/bench/internal/cli"
	"github.com/krunbench/krunbench/bench/internal/fsops"
	"github.com/krunbench/krunbench/bench/internal/peers"

	schema "github.com/krunbench/krunbench/bench/internal/results"
)

type config struct {
	bin         string
	loopback    string
	goCmd       string
	out         string
	workdir     string
	keep        bool
	runs        int
	size        int64
	dirs        int
	filesPerDir int
	creates     int
	modes       []string
	workloads   []string
	// createOnDisk keeps the create workload's directory on the share's
	// own filesystem instead of a tmpfs mounted inside the share.
	createOnDisk bool
	// keepBalloon leaves free page reporting alone, keepPipeMax the pipe
	// size limit (see memory.go).
	keepBalloon, keepPipeMax bool
	// settings is "default" (the machine as it is, a fresh server and
	// mount per cold sample, plus warm-server rows) or "tuned" (the
	// balloon unbound, pipes raised, every server mounted for the whole
	// run); see settings.go.
	settings string
	// peerSrc and peerCache locate and cache passthrough_hp's build.
	peerSrc, peerCache string
	// passthroughHP is the built peer binary (findPeers).
	passthroughHP string
	// Concurrency rows (concurrency.go): clients at once, files in each
	// client's tree, create+unlink triples per client, each client's fio
	// file size and 4 KiB reads, the mixed row's writer size and idle
	// stat calls.
	clients, concFiles, concCreates, concReads, mixedProbes int
	// mixedRunq: the mixed row's client reads its runqueue wait per call.
	mixedRunq               bool
	concFileSize, mixedSize int64
	// memFiles is the memory row's tree size (inodes.go); 0 skips it.
	memFiles int
	// quick shrinks every size not given on the command line (smoke run).
	quick bool
	// limitModes runs no-tap and rules100 on overheadRows only (rules.go).
	limitModes bool
	// label is recorded in the JSON, e.g. "smoke run on a busy machine".
	label string
	// coldMemory is the free memory's state at every timed part's start
	// (coldmemory.go); countRequests counts each sample's FUSE requests
	// (reqcount.go).
	coldMemory    string
	countRequests bool
}

func main() {
	cfg, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fusebench:", err)
		os.Exit(2)
	}
	var cl cleanups
	stop := cl.interrupts()
	err = run(cfg, &cl, stop)
	cl.runAll()
	switch {
	case errors.Is(err, errStopped) || (err != nil && fsops.Stopped(stop)):
		fmt.Fprintln(os.Stderr, "fusebench: interrupted; nothing written")
		os.Exit(130)
	case err != nil:
		fmt.Fprintln(os.Stderr, "fusebench:", err)
		os.Exit(1)
	}
}

func parseFlags() (*config, error) {
	var cfg config
	var size, modes, workloads, concFileSize, mixedSize string
	flag.StringVar(&cfg.bin, "bin", "../bin/krunbench", "krunbench binary")
	flag.StringVar(&cfg.loopback, "loopback", "", "go-fuse loopback binary (default: build ./loopback with -go)")
	flag.StringVar(&cfg.goCmd, "go", "go", "go command used to build the loopback server")
	flag.StringVar(&cfg.out, "out", "results/fuse.json", "JSON results file (empty: none)")
	flag.StringVar(&cfg.workdir, "workdir", os.TempDir(), "where the temporary share, mount point and trace go (same filesystem as /tmp by default)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory")
	flag.IntVar(&cfg.runs, "runs", 20, "rounds; each takes one sample of every workload in every mode (an even count balances the order)")
	flag.StringVar(&size, "size", "1G", "sequential read/write size (K, M, G suffixes are binary)")
	flag.IntVar(&cfg.dirs, "dirs", 50, "directories in the stat tree")
	flag.IntVar(&cfg.filesPerDir, "files-per-dir", 1000, "files per directory in the stat tree")
	flag.IntVar(&cfg.creates, "creates", 20000, "files created and unlinked per create sample")
	flag.StringVar(&modes, "modes", strings.Join(defaultModes, ","), "modes to run, comma-separated (go-fuse-pt too: "+strings.Join(allModes, ",")+")")
	flag.StringVar(&workloads, "workloads", "", "workloads to run, comma-separated (default: all)")
	flag.BoolVar(&cfg.keepBalloon, "keep-balloon", false, "leave a free-page-reporting virtio-balloon bound (see memory.go)")
	flag.BoolVar(&cfg.keepPipeMax, "keep-pipe-max", false, "leave fs.pipe-max-size as it is (see memory.go)")
	flag.BoolVar(&cfg.createOnDisk, "create-on-disk", false, "run create+unlink on the share's filesystem instead of a tmpfs mounted inside the share")
	flag.StringVar(&cfg.settings, "settings", settingsDefault, "default: the system as shipped (pipes and balloon untouched), a fresh server per cold sample plus warm-server rows; tuned: balloon unbound, pipes raised, servers mounted for the whole run")
	flag.StringVar(&cfg.peerSrc, "passthrough-hp-src", peers.SourceDir, "libfuse passthrough_hp sources (passthrough_hp.cc, cxxopts.hpp)")
	flag.IntVar(&cfg.clients, "clients", 8, "clients at once in the concurrency rows")
	flag.IntVar(&cfg.concFiles, "conc-files", 1500, "files in each client's tree (par-stat)")
	flag.IntVar(&cfg.concCreates, "conc-creates", 1000, "create+unlink triples per client (par-create)")
	flag.IntVar(&cfg.concReads, "conc-reads", 4096, "4 KiB random reads per fio job (par-randread)")
	flag.StringVar(&concFileSize, "conc-file-size", "64M", "each fio job's file (par-randread)")
	flag.StringVar(&mixedSize, "mixed-size", "1G", "the mixed row's sequential writer")
	flag.IntVar(&cfg.mixedProbes, "mixed-probes", 5000, "stat calls the mixed row's small client makes alone (its idle latencies)")
	flag.BoolVar(&cfg.mixedRunq, "mixed-runq", false, "the mixed row's small client also reads its thread's runqueue wait around every call (/proc/thread-self/schedstat, outside the timed call; adds a pread per probe)")
	flag.IntVar(&cfg.memFiles, "mem-files", 100000, "files in the memory row's tree (backend RSS after looking them all up); 0 skips the row")
	flag.BoolVar(&cfg.quick, "quick", false, "smoke run: every size not given shrinks (2 rounds, 32 MiB, 2000-file trees, no memory row); the numbers only show that everything runs")
	flag.StringVar(&cfg.coldMemory, "cold-memory", coldBacked, "free memory at each timed part's start where a balloon reports free pages: backed (touch and free 4x what the sample fills, at least 1 GiB, at most half the available memory, right before it, so the pages it takes are backed) or as-is (start once the servers are idle); see coldmemory.go")
	flag.BoolVar(&cfg.countRequests, "count-requests", false, "record each FUSE sample's requests by opcode and its READ reply sizes (the kernel's fuse tracepoints; costs every request a little)")
	flag.StringVar(&cfg.label, "label", "", "a note recorded in the JSON (e.g. \"smoke run, busy machine\")")
	flag.StringVar(&cfg.passthroughHP, "passthrough-hp", "", "a built passthrough_hp binary (default: build it from -passthrough-hp-src)")
	flag.StringVar(&cfg.peerCache, "peer-cache", "", "where passthrough_hp is built (default ~/.cache/krunbench/peers)")
	flag.Parse()
	if flag.NArg() != 0 {
		return nil, fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	var err error
	if cfg.size, err = cli.ParseSize(size); err != nil {
		return nil, err
	}
	if cfg.concFileSize, err = cli.ParseSize(concFileSize); err != nil {
		return nil, err
	}
	if cfg.mixedSize, err = cli.ParseSize(mixedSize); err != nil {
		return nil, err
	}
	// After the sizes are parsed, or their flag defaults would undo what
	// the settings chose (default settings ran 1 GiB, not 512 MiB).
	if err := applySettings(&cfg); err != nil {
		return nil, err
	}
	applyQuick(&cfg)
	if cfg.mixedSize%chunk != 0 || cfg.concFileSize < 4096 {
		return nil, fmt.Errorf("-mixed-size must be a multiple of 1M and -conc-file-size at least 4K")
	}
	if cfg.mixedRunq {
		if err := mixedUsesRunq(); err != nil {
			return nil, err
		}
	}
	if cfg.clients < 1 || cfg.concFiles < 1 || cfg.concCreates < 1 || cfg.concReads < 1 || cfg.mixedProbes < 1 || cfg.memFiles < 0 {
		return nil, fmt.Errorf("-clients, -conc-files, -conc-creates, -conc-reads and -mixed-probes must be positive, -mem-files at least 0")
	}
	if cfg.size < chunk || cfg.size%chunk != 0 {
		return nil, fmt.Errorf("-size must be a positive multiple of 1M")
	}
	if cfg.runs < 1 || cfg.dirs < 1 || cfg.filesPerDir < 1 || cfg.creates < 1 {
		return nil, fmt.Errorf("-runs, -dirs, -files-per-dir and -creates must be positive")
	}
	if !flagSet("modes") && cfg.settings == settingsDefault {
		modes = strings.Join(defaultSettingsModes, ",")
		cfg.limitModes = true
	}
	cfg.modes = cli.SplitList(modes)
	for _, m := range cfg.modes {
		if !slices.Contains(allModes, m) {
			return nil, fmt.Errorf("unknown mode %q (have %s)", m, strings.Join(allModes, ", "))
		}
	}
	cfg.workloads = cli.SplitList(workloads)
	if !slices.Contains(coldModes, cfg.coldMemory) {
		return nil, fmt.Errorf("-cold-memory: %q is none of %s", cfg.coldMemory, strings.Join(coldModes, ", "))
	}
	if cfg.bin, err = filepath.Abs(cfg.bin); err != nil {
		return nil, err
	}
	if slices.ContainsFunc(cfg.modes, func(m string) bool { return m != modeHost && m != modeGoFuse && m != modeGoFuseP && m != modePtHP }) {
		if _, err := os.Stat(cfg.bin); err != nil {
			return nil, fmt.Errorf("-bin: %w (run make build)", err)
		}
	}
	if cfg.loopback != "" {
		if cfg.loopback, err = filepath.Abs(cfg.loopback); err != nil {
			return nil, err
		}
	}
	if cfg.out != "" {
		if cfg.out, err = filepath.Abs(cfg.out); err != nil {
			return nil, err
		}
	}
	return &cfg, nil
}

func run(cfg *config, cl *cleanups, stop <-chan struct{}) error {
	if os.Geteuid() != 0 {
		return errors.New("must run as root (mounting through /dev/fuse, drop_caches)")
	}
	tmp, removeTmp, err := cli.WorkDir("fusebench", cfg.workdir, cfg.keep)
	if err != nil {
		return err
	}
	cl.push("remove "+tmp, removeTmp)
	share := filepath.Join(tmp, "share")
	if err := os.Mkdir(share, 0o755); err != nil {
		return err
	}
	if err := makeCreateDir(cfg, cl, share); err != nil {
		return err
	}

	info := collectInfo(cfg, tmp)
	if info.BusyStart >= 10 {
		fmt.Fprintf(os.Stderr, "fusebench: warning: the CPUs were %.0f%% busy before starting; other work makes the numbers noisy\n", info.BusyStart)
	}
	skipped := findPeers(cfg, tmp)
	info.GoFuse = goFuseVersion(cfg.goCmd)
	rulesFile := filepath.Join(tmp, "rules100.txt")
	if err := writeRulesFile(rulesFile); err != nil {
		return err
	}
	modes := buildModes(cfg, share, tmp, filepath.Join(tmp, "trace.jsonl"), rulesFile)
	wls := buildWorkloads(cfg)
	if cfg.settings == settingsDefault {
		wls = append(withWarmRows(wls), concWorkloads(cfg)...)
	}
	memory := cfg.memFiles > 0 && cfg.settings == settingsDefault
	if len(cfg.workloads) > 0 {
		if slices.Contains(cfg.workloads, memoryRow) && !memory {
			return errors.New("-workloads memory: the memory row needs -settings default and -mem-files above 0 (-quick sets it to 0)")
		}
		memory = memory && slices.Contains(cfg.workloads, memoryRow)
		names := slices.DeleteFunc(slices.Clone(cfg.workloads), func(n string) bool { return n == memoryRow })
		wls = slices.DeleteFunc(wls, func(w *workload) bool { return !slices.Contains(names, w.Name) })
		if len(wls) != len(names) {
			return fmt.Errorf("-workloads: unknown name in %q", strings.Join(cfg.workloads, ","))
		}
	}
	if err := dropCaches(); err != nil {
		return fmt.Errorf("drop_caches: %w", err)
	}
	if err := prepareShare(cfg, share); err != nil {
		return err
	}
	if slices.ContainsFunc(wls, func(w *workload) bool { return w.concurrent }) {
		if err := prepareConcurrency(cfg, share); err != nil {
			return err
		}
	}
	if memory {
		if err := prepareMany(cfg, share); err != nil {
			return err
		}
	}
	if fsops.Stopped(stop) {
		return errStopped
	}

	balloons, err := quietMemory(cfg, cl)
	if err != nil {
		return err
	}
	pipeMaxWas, err := raisePipeMax(cfg, cl)
	if err != nil {
		return err
	}
	pr := &probes{cold: newColdMemory(cfg)}
	if cfg.countRequests {
		rc, remove, err := newReqCounter()
		if err != nil {
			return err
		}
		cl.push("remove the tracefs instance", remove)
		pr.requests = rc
	}
	res := newResults(cfg, info, modes, wls)
	res.Machine.BalloonsUnbound = balloons
	res.Machine.PipeMaxRaisedFrom = pipeMaxWas
	res.Machine.PipeMaxSize = readInt(pipeMaxPath)
	res.Machine.BalloonsReporting = reportingBalloons()
	res.Skipped = skipped
	start := time.Now()
	cold := slices.DeleteFunc(slices.Clone(wls), func(w *workload) bool { return w.warmServer || cfg.settings != settingsDefault })
	fresh := freshServers(cl, modes, tmp)
	if len(cold) > 0 {
		if err := runRounds(cfg, pr, modes, nil, cold, res, share, stop, fresh); err != nil {
			return err
		}
	}
	if memory {
		if res.Memory, err = runInodes(cfg, modes, fresh, share, stop); err != nil {
			return err
		}
	}
	warm := slices.DeleteFunc(slices.Clone(wls), func(w *workload) bool { return !w.warmServer && cfg.settings == settingsDefault })
	if len(warm) == 0 {
		return finish(cfg, res, start)
	}
	srvs, stopAll, err := startServers(cl, cfg.modes, modes, tmp)
	if err != nil {
		return err
	}
	err = runRounds(cfg, pr, modes, srvs, warm, res, share, stop, nil)
	stopAll()
	if m := modes[modeTrace]; srvs[modeTrace] != nil {
		res.addTrace(m.Name, traceInfo(m.trace, srvs[modeTrace].log))
	}
	if err != nil {
		return err
	}
	return finish(cfg, res, start)
}

// finish computes and prints the results and writes the JSON.
func finish(cfg *config, res *results, start time.Time) error {
	res.finish(time.Since(start))
	res.printTable(os.Stdout)
	return cli.Save("fusebench", cfg.out, res)
}

// runRounds takes cfg.runs rounds. A round runs each workload in every
// mode back to back, so the samples a ratio compares are taken seconds
// apart, under the same machine weather.
//
// With fresh set (default settings' cold rows), srvs is empty and every
// FUSE sample gets a server of its own, started before the sample's
// preparation and stopped after it.
func runRounds(cfg *config, pr *probes, modes map[string]*mode, srvs map[string]*server, wls []*workload, res *results, share string, stop <-chan struct{}, fresh func(*mode) (*server, func(), error)) error {
	all := slices.Collect(maps.Values(srvs))
	for rep := range cfg.runs {
		order := balancedOrder(cfg.modes, rep)
		for _, w := range wls {
			for _, name := range order {
				if fsops.Stopped(stop) {
					return errStopped
				}
				if !cfg.runsRow(name, w.Name) {
					continue
				}
				m := modes[name]
				dir := share
				if m.fuse {
					dir = m.Mount
				}
				srv, stopSrv := srvs[name], func() {}
				if fresh != nil {
					all = nil
				}
				if fresh != nil && m.fuse {
					var err error
					if srv, stopSrv, err = fresh(m); err != nil {
						return fmt.Errorf("%s: %s: %w", m.Name, w.Name, err)
					}
					all = []*server{srv}
				}
				s, err := sample(w, pr, srv, all, dir, share, stop)
				stopSrv()
				if err != nil {
					return fmt.Errorf("%s: %s: %w", m.Name, w.Name, err)
				}
				res.add(w.Name, m.Name, s)
				fmt.Fprintf(os.Stderr, "[%d/%d] %-10s %-14s %10.1f %-7s %7.3fs  server cpu %6.2fs  client cpu %6.2fs%s\n",
					rep+1, cfg.runs, m.Name, w.Name, s.Value, w.Unit, s.Seconds, s.ServerCPU, s.ClientCPU, memoryNote(s.Memory))
			}
		}
	}
	return nil
}

// balancedOrder is the mode order of round rep: rotated by one every two
// rounds, and reversed in odd rounds, so over any two consecutive rounds
// every mode runs before every other mode once and after it once. Work a
// sample leaves behind (dirty pages, a filesystem's recently freed
// inodes) then weighs on no mode more than on another.
func balancedOrder(s []string, rep int) []string {
	k := (rep / 2) % len(s)
	out := append(slices.Clone(s[k:]), s[:k]...)
	if rep%2 == 1 {
		slices.Reverse(out)
	}
	return out
}

// probes is what a sample records besides its time and CPU: the free
// memory's state (and what -cold-memory does about it) and, with
// -count-requests, the FUSE requests.
type probes struct {
	cold     *coldMemory
	requests *reqCounter
}

// sample takes one timed measurement of w in dir; srv is the server under
// test (nil on the host), all every running server.
func sample(w *workload, pr *probes, srv *server, all []*server, dir, share string, stop <-chan struct{}) (measure, error) {
	if w.prepare != nil {
		if err := w.prepare(dir, share); err != nil {
			return measure{}, fmt.Errorf("prepare: %w", err)
		}
	}
	if err := dropCaches(); err != nil {
		return measure{}, fmt.Errorf("drop_caches: %w", err)
	}
	cold := pr.cold.dropped()
	if w.warm != nil {
		if err := w.warm(share); err != nil {
			return measure{}, fmt.Errorf("warm: %w", err)
		}
	}
	settleAll(all)
	if err := pr.cold.ready(cold, w); err != nil {
		return measure{}, err
	}
	counting := pr.requests != nil && srv != nil
	if counting {
		if err := pr.requests.start(srv.mnt); err != nil {
			return measure{}, fmt.Errorf("count requests: %w", err)
		}
	}
	cpu0, client0 := srv.cpu(), selfCPU()
	t0 := time.Now()
	var out outcome
	var err error
	if w.detail != nil {
		out, err = w.detail(dir, stop)
	} else {
		out.Units, err = w.run(dir, stop)
	}
	elapsed := time.Since(t0)
	cpu1, client1 := srv.cpu(), selfCPU()
	mem := cold.finish()
	var reqs *schema.Requests
	if counting {
		var cerr error
		if reqs, cerr = pr.requests.stop(); cerr != nil && err == nil {
			err = cerr
		}
	}
	if err != nil {
		return measure{}, err
	}
	if w.after != nil {
		if err := w.after(dir, share); err != nil {
			return measure{}, fmt.Errorf("clean up: %w", err)
		}
	}
	secs := elapsed.Seconds()
	if out.Seconds > 0 {
		secs = out.Seconds
	}
	return measure{Value: out.Units / secs, Seconds: secs, ServerCPU: cpu1 - cpu0, ClientCPU: client1 - client0, Latency: out.Latency, Memory: mem, Requests: reqs}, nil
}

// selfCPU is this process's user+system CPU time (the client side of FUSE
// requests, kernel work included), plus that of its waited-for children
// (fio).
func selfCPU() float64 {
	total := 0.0
	for _, who := range []int{unix.RUSAGE_SELF, unix.RUSAGE_CHILDREN} {
		var ru unix.Rusage
		if err := unix.Getrusage(who, &ru); err == nil {
			total += float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
		}
	}
	return total
}
