// Command guestbench runs filesystem workloads inside a guest under QEMU
// (microvm) over virtio-fs, with krunbench serve --socket and with QEMU's
// C virtiofsd as the vhost-user-fs backend of the same guest (kernel,
// memory, CPUs and device options alike), and compares wall time, backend
// CPU per 1,000 requests and backend RSS. Each boot's root is an
// initramfs (a newc cpio written here) whose /init is guestbench/runner;
// the filesystem under test is mounted at /mnt. See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/krunbench/krunbench/bench/guestbench/runnerconfig"
	"github.com/krunbench/krunbench/bench/internal/cli"
	"github.com/krunbench/krunbench/bench/internal/fsops"
	"github.com/krunbench/krunbench/bench/internal/peers"
	"github.com/krunbench/krunbench/session/qemu"
	"golang.org/x/sys/unix"
)

type config struct {
	bin, kernel, qemu, goCmd string
	out, workdir             string
	keep                     bool
	accel                    string
	cpus, memMiB, queueSize  int
	runs                     int
	largeRuns                int
	size                     int64
	dirs, filesPerDir        int
	creates                  int
	virtiofsd                string
	dmaBounce                bool
	count                    bool
	memoryFiles, largeFiles  int
	label                    string
	binB                     string
	profile                  string
	profileRuns              int
	timeout                  time.Duration
	idleSample               time.Duration
	modes, workloads         []string
}

// Modes: krunbench serve (tap on, as shipped) with virtiofsd's cache
// settings (--readdirplus auto), QEMU's C virtiofsd, and krunbench serve
// as shipped (--readdirplus always), shown but not judged: its guest sends
// other requests for the same walk. Then modes that are not in the
// default set: krunbench with the tap off, and a what-if with one setting
// of krunbench's server changed (built from guestbench/vhostserve).
const (
	modeTap       = "virtiofs-tap"
	modeVirtiofsd = "virtiofsd"
	modeAlways    = "virtiofs-always"
	modeNoTap     = "virtiofs-notap"
	modeDirect    = "virtiofs-dio"
	modeB         = "virtiofs-b"
)

var (
	defaultModes = []string{modeTap, modeVirtiofsd, modeAlways}
	allModes     = []string{modeTap, modeVirtiofsd, modeAlways, modeNoTap, modeDirect, modeB}
	allWorkloads = []string{"stat", "read", "create", "memory", "memory-large"}
)

// Names inside the shared directory.
const (
	readName   = "read.dat"
	treeName   = "tree"
	createName = "create"
	memoryName = "memtree"
	largeName  = "memtree-large"
)

func main() { cli.Main("guestbench", parseFlags, run) }

func parseFlags() (*config, error) {
	var cfg config
	var size, modes, workloads string
	flag.StringVar(&cfg.bin, "bin", "../bin/krunbench", "krunbench binary")
	flag.StringVar(&cfg.kernel, "kernel", "", "guest kernel bzImage (default: $KRUNBENCH_KERNEL, then the one make kernel installs)")
	flag.StringVar(&cfg.qemu, "qemu", "qemu-system-x86_64", "QEMU binary")
	flag.StringVar(&cfg.goCmd, "go", "go", "go command used to build the guest runner")
	flag.StringVar(&cfg.out, "out", "results/guest.json", "JSON results file (empty: none)")
	flag.StringVar(&cfg.workdir, "workdir", os.TempDir(), "where the temporary share, initramfs and logs go")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (console logs, initramfs)")
	flag.StringVar(&cfg.accel, "accel", qemu.AccelTCG, "QEMU accelerator: tcg or kvm")
	flag.IntVar(&cfg.cpus, "cpus", 1, "guest vCPUs")
	flag.IntVar(&cfg.memMiB, "mem", 1024, "guest memory in MiB (memfd, shared, for every mode)")
	flag.IntVar(&cfg.queueSize, "queue-size", 1024, "vhost-user-fs-device request queue size")
	flag.StringVar(&cfg.binB, "bin-b", "", "a second krunbench binary for mode "+modeB+" (an A/B in one run: the same flags as "+modeTap+", booted in rotation with it)")
	flag.StringVar(&cfg.profile, "profile", "", "profile every mode's backend with perf in extra boots (profile.go) and keep the raw data and the table in this directory")
	flag.IntVar(&cfg.profileRuns, "profile-runs", 1, "profile boots per mode with -profile")
	flag.StringVar(&cfg.virtiofsd, "virtiofsd", "", "QEMU's C virtiofsd (default: "+peers.VirtiofsdPath+")")
	flag.BoolVar(&cfg.dmaBounce, "dma-bounce", true, "vhost-user-fs-device iommu_platform=on and guest swiotlb=force, as the QEMU engine runs TCG guests (issue 16); same for every backend")
	flag.BoolVar(&cfg.count, "count", true, "one more boot per mode with the backend's request record on (krunbench --trace, virtiofsd -d), to count requests per workload")
	flag.StringVar(&cfg.label, "label", "", "words recorded in the JSON as the run's label (say \"smoke, busy machine\" for numbers not to be quoted)")
	flag.IntVar(&cfg.memoryFiles, "memory-files", 15000, "files in the memory workload's tree (1000 per directory): the backend's RSS after a find over it; keep it under virtiofsd's RLIMIT_NOFILE (an fd per inode)")
	flag.IntVar(&cfg.largeFiles, "memory-large-files", 100000, "files in the memory-large workload's tree, walked by every mode; virtiofsd keeps a descriptor per inode, and where RLIMIT_NOFILE is below the tree the row records its failed lookups (nofile.go)")
	flag.DurationVar(&cfg.idleSample, "idle-sample", 2*time.Second, "after each memory walk the guest leaves the mount alone this long and the backend's RSS is sampled again (0: no second sample)")
	flag.IntVar(&cfg.runs, "runs", 3, "boots per mode (one sample of every workload each; the median is reported)")
	flag.IntVar(&cfg.largeRuns, "large-runs", 2, "memory-large (RSS only, and a krunbench boot's longest part) in the first this many rounds only; 0: in every round")
	flag.StringVar(&size, "size", "256M", "sequential read size (K, M, G suffixes are binary)")
	flag.IntVar(&cfg.dirs, "dirs", 15, "directories in the stat tree")
	flag.IntVar(&cfg.filesPerDir, "files-per-dir", 1000, "files per directory in the stat tree")
	flag.IntVar(&cfg.creates, "creates", 5000, "files created and unlinked per create sample")
	flag.DurationVar(&cfg.timeout, "timeout", 20*time.Minute, "limit for one boot")
	flag.StringVar(&modes, "modes", strings.Join(defaultModes, ","), "modes to run, comma-separated (what-if modes: "+strings.Join(allModes[len(defaultModes):], ", ")+")")
	flag.StringVar(&workloads, "workloads", strings.Join(allWorkloads, ","), "workloads to run, comma-separated, in this order")
	flag.Parse()
	if flag.NArg() != 0 {
		return nil, fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	var err error
	if cfg.size, err = cli.ParseSize(size); err != nil {
		return nil, err
	}
	if cfg.runs < 0 || cfg.runs == 0 && cfg.profile == "" || cfg.profileRuns < 1 || cfg.largeRuns < 0 {
		return nil, errors.New("-runs must be positive (0 only with -profile), -profile-runs positive, -large-runs not negative")
	}
	if cfg.dirs < 1 || cfg.filesPerDir < 1 || cfg.creates < 1 || cfg.cpus < 1 || cfg.memMiB < 128 || cfg.memoryFiles < 1 || cfg.largeFiles < 1 {
		return nil, errors.New("-dirs, -files-per-dir, -creates, -memory-files, -memory-large-files and -cpus must be positive, -mem at least 128")
	}
	if cfg.accel != qemu.AccelTCG && cfg.accel != qemu.AccelKVM {
		return nil, fmt.Errorf("-accel %q: want tcg or kvm", cfg.accel)
	}
	cfg.modes, cfg.workloads = cli.SplitList(modes), cli.SplitList(workloads)
	for _, m := range cfg.modes {
		if !slices.Contains(allModes, m) {
			return nil, fmt.Errorf("unknown mode %q (have %s)", m, strings.Join(allModes, ", "))
		}
	}
	for _, w := range cfg.workloads {
		if !slices.Contains(allWorkloads, w) {
			return nil, fmt.Errorf("unknown workload %q (have %s)", w, strings.Join(allWorkloads, ", "))
		}
	}
	if len(cfg.modes) == 0 || len(cfg.workloads) == 0 {
		return nil, errors.New("-modes and -workloads must not be empty")
	}
	if slices.Contains(cfg.modes, modeB) != (cfg.binB != "") {
		return nil, errors.New("mode " + modeB + " and -bin-b go together")
	}
	for _, p := range []*string{&cfg.bin, &cfg.out, &cfg.binB, &cfg.profile} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return nil, err
			}
		}
	}
	return &cfg, nil
}

// mode is one vhost-user-fs backend for the guest's shared directory: the
// fields of bench/internal/results.GuestMode (the file's), and how to run it.
type mode struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	Desc  string `json:"description"`
	// Server is the backend's command line without the share and socket.
	Server []string `json:"server_argv"`
	// Counting says how the counting boot records requests.
	Counting string `json:"request_count_source"`
	// Features is the guest's negotiated virtio-fs feature bits.
	Features string `json:"guest_virtio_features,omitempty"`
	// krunbench: krunbench's flags (--shared-dir, --socket, --trace);
	// else virtiofsd's (-o source=, --socket-path=, -d).
	krunbench bool
	// counts: the counting boot can count requests.
	counts bool
	// countFromStderr: the request record is the server's stderr.
	countFromStderr bool
	// initrd is the timed boots' initramfs, countInitrd the counting
	// boot's (countWorkloads).
	initrd, countInitrd string
}

// countWorkloads is what the counting boot runs: not memory-large, whose
// row is RSS only and whose walk is the longest part of a boot (100,000
// LOOKUPs under TCG: 155 s).
func (m *mode) countWorkloads(cfg *config) []string { return withoutLarge(cfg.workloads) }

// roundWorkloads is what a timed boot of round rep (0-based) runs: every
// workload, less memory-large past the first -large-runs rounds (its row
// is RSS only, which barely varies, and its walk is most of a krunbench
// boot: 104-116 s of 148-164 s in session 14's judged run). In the
// default order memory-large is the last workload, so leaving it out
// changes nothing the earlier ones meet.
func (cfg *config) roundWorkloads(rep int) []string {
	if cfg.largeRuns > 0 && rep >= cfg.largeRuns {
		return withoutLarge(cfg.workloads)
	}
	return cfg.workloads
}

// timedInitrd is the initramfs of a timed boot in round rep: the one with
// every workload, or, where roundWorkloads leaves memory-large out, the
// counting boot's (the same workloads; the record is the server's).
func (m *mode) timedInitrd(cfg *config, rep int) string {
	if len(cfg.roundWorkloads(rep)) < len(cfg.workloads) {
		return m.countInitrd
	}
	return m.initrd
}

func withoutLarge(ws []string) []string {
	return slices.DeleteFunc(slices.Clone(ws), func(w string) bool { return w == "memory-large" })
}

// writeInitrds writes the mode's two initramfs images into dir, each the
// runner and its config: every workload (m.initrd), and every workload
// less memory-large (m.countInitrd: the counting and profile boots, and
// the timed boots past -large-runs).
func (m *mode) writeInitrds(cfg *config, dir string, runner []byte) error {
	for _, ir := range []struct {
		path      *string
		file      string
		workloads []string
	}{{&m.initrd, m.Name + ".cpio", cfg.workloads}, {&m.countInitrd, m.Name + ".count.cpio", m.countWorkloads(cfg)}} {
		b, err := runnerconfig.Encode(guestConfig(cfg, ir.workloads))
		if err != nil {
			return err
		}
		*ir.path = filepath.Join(dir, ir.file)
		if err := writeInitramfs(*ir.path, runner, b); err != nil {
			return err
		}
	}
	return nil
}

// argv is the backend's command line for one boot.
func (m *mode) argv(share, socket string) []string {
	argv := slices.Clone(m.Server)
	if m.krunbench {
		return append(argv, "--shared-dir", share, "--socket", socket, "--tag", tag)
	}
	return append(argv, "--socket-path="+socket, "-o", "source="+share)
}

// countArgv is argv with the backend's request record on: krunbench's
// trace into file (the tap on even for the no-tap mode: the requests are
// the same), virtiofsd's debug log (its stderr, which the caller sends to
// file).
func (m *mode) countArgv(share, socket, file string) []string {
	argv := m.argv(share, socket)
	if m.krunbench {
		argv = slices.DeleteFunc(argv, func(a string) bool { return a == "--no-tap" })
		return append(argv, "--trace", file)
	}
	return append(argv, "-d")
}

// buildModes describes every mode; vhostserve is the what-if server.
func buildModes(cfg *config, vhostserve string) map[string]*mode {
	// virtiofsd walks memory-large too; where it cannot keep a
	// descriptor per inode, what it does past its limit is the row.
	largeArgs, largeDesc, _ := virtiofsdNofile(cfg.largeFiles)
	ours := func(name, label, desc string, argv ...string) *mode {
		return &mode{Name: name, Label: label, Desc: desc, Server: argv, krunbench: true, counts: true,
			Counting: "krunbench serve --trace FILE: one JSON line per request"}
	}
	whatIf := func(name, label, desc string, argv ...string) *mode {
		return &mode{Name: name, Label: label, Desc: desc, Server: argv, krunbench: true,
			Counting: "none (vhostserve has no trace)"}
	}
	return map[string]*mode{
		modeTap: ours(modeTap, "krunbench", "krunbench serve --readdirplus auto --socket (tap on, no subscriber, as shipped; directory listings offered as virtiofsd offers them)",
			cfg.bin, "serve", "--readdirplus", "auto"),
		modeAlways: ours(modeAlways, "krunbench always", "krunbench serve --socket as shipped (--readdirplus always: READDIRPLUS for every chunk, no LOOKUP per entry); not judged, its guest sends other requests",
			cfg.bin, "serve"),
		modeNoTap: ours(modeNoTap, "krunbench no-tap", "krunbench serve --no-tap --readdirplus auto --socket",
			cfg.bin, "serve", "--no-tap", "--readdirplus", "auto"),
		modeVirtiofsd: {Name: modeVirtiofsd, Label: "virtiofsd", krunbench: false, counts: true, countFromStderr: true,
			Desc:     "QEMU 7.2's C virtiofsd as shipped (cache=auto: 1 s entry/attr timeouts like krunbench's; readdirplus with READDIRPLUS_AUTO (libfuse's default); sandbox=namespace; default thread pool); memory-large: " + largeDesc,
			Server:   append([]string{cfg.virtiofsd, "-o", "cache=auto"}, largeArgs...),
			Counting: "virtiofsd -d: one 'unique: N, opcode: ...' line per request"},
		modeB: ours(modeB, "krunbench B", "krunbench serve --readdirplus auto --socket as "+modeTap+", from -bin-b: the other side of an A/B",
			cfg.binB, "serve", "--readdirplus", "auto"),
		modeDirect: whatIf(modeDirect, "krunbench dio", "what-if: krunbench's server, no tap, --readdirplus auto, FOPEN_DIRECT_IO on every open: no guest page cache (guestbench/vhostserve -direct-io)",
			vhostserve, "-direct-io", "-readdirplus", "auto"),
	}
}

// guestConfig is what the runner is told for one boot that runs
// workloads.
func guestConfig(cfg *config, workloads []string) *runnerconfig.Config {
	return &runnerconfig.Config{
		FS: "virtiofs", Tag: tag, Workloads: workloads,
		ReadFile: readName, ReadSize: cfg.size,
		Tree: treeName, TreeFiles: cfg.dirs * cfg.filesPerDir,
		CreateDir: createName, Creates: cfg.creates,
		MemTree: memoryName, MemFiles: cfg.memoryFiles,
		LargeTree: largeName, LargeFiles: cfg.largeFiles,
		IdleAfterMemoryMs: int(cfg.idleSample.Milliseconds()),
	}
}

func run(ctx context.Context, cfg *config) error {
	if os.Geteuid() != 0 {
		return errors.New("must run as root (drop_caches, and krunbench serve reads every file)")
	}
	if _, err := exec.LookPath(cfg.qemu); err != nil {
		return fmt.Errorf("%w: %s not found", cli.ErrSkip, cfg.qemu)
	}
	if cfg.kernel == "" {
		cfg.kernel = cli.FindKernel()
		if cfg.kernel == "" {
			return fmt.Errorf("%w: no guest kernel (pass -kernel, set KRUNBENCH_KERNEL, or run make kernel)", cli.ErrSkip)
		}
	}
	if st, err := os.Stat(cfg.kernel); err != nil || st.IsDir() {
		return fmt.Errorf("-kernel %s: not a file", cfg.kernel)
	}
	if slices.Contains(cfg.modes, modeNoTap) || slices.Contains(cfg.modes, modeTap) || slices.Contains(cfg.modes, modeAlways) || slices.Contains(cfg.modes, modeB) {
		if _, err := os.Stat(cfg.bin); err != nil {
			return fmt.Errorf("-bin: %w (run make build)", err)
		}
	}
	if slices.Contains(cfg.modes, modeVirtiofsd) && cfg.virtiofsd == "" {
		p, err := peers.Virtiofsd()
		if err != nil {
			return fmt.Errorf("%w (or pass -virtiofsd, or leave virtiofsd out of -modes)", err)
		}
		cfg.virtiofsd = p.Path
	}
	tmp, removeWork, err := cli.WorkDir("guestbench", cfg.workdir, cfg.keep)
	if err != nil {
		return err
	}
	defer removeWork()
	share := filepath.Join(tmp, "share")
	if err := os.Mkdir(share, 0o755); err != nil {
		return err
	}
	info := collectInfo(cfg, tmp)
	runnerBin, err := goBuild(cfg.goCmd, tmp, "runner")
	if err != nil {
		return err
	}
	runner, err := os.ReadFile(runnerBin)
	if err != nil {
		return err
	}
	var vhostserve string
	if slices.Contains(cfg.modes, modeDirect) {
		if vhostserve, err = goBuild(cfg.goCmd, tmp, "vhostserve"); err != nil {
			return err
		}
	}
	modes := buildModes(cfg, vhostserve)
	for _, name := range cfg.modes {
		if err := modes[name].writeInitrds(cfg, tmp, runner); err != nil {
			return err
		}
	}
	if err := prepareShare(cfg, share); err != nil {
		return err
	}

	res := newResults(cfg, info, modes)
	start := time.Now()
	if cfg.count {
		for _, name := range cfg.modes {
			m := modes[name]
			if !m.counts {
				continue
			}
			if err := warmHost(share); err != nil {
				return err
			}
			b, err := boot(ctx, cfg, m, tmp, share, name+".count", m.countInitrd, true, nil)
			if err != nil {
				return fmt.Errorf("%s counting boot: %w", name, err)
			}
			counted := slices.DeleteFunc(m.countWorkloads(cfg), func(w string) bool { return b.failed[w] != "" })
			counts, err := requestCounts(b.countLog, b.logFile, m.krunbench, counted)
			if err != nil {
				return fmt.Errorf("%s counting boot: %w", name, err)
			}
			for _, w := range counted {
				res.setRequests(w, name, counts[w])
				fmt.Fprintf(os.Stderr, "[count] %-15s %-12s %8d requests: %s\n", name, w, counts[w].total(), formatOps(counts[w]))
			}
		}
	}
	if cfg.profile != "" {
		if err := profileBoots(ctx, cfg, modes, tmp, share, res, os.Stdout); err != nil {
			return err
		}
		if cfg.runs == 0 {
			return nil
		}
	}
	err = rotatedBoots(ctx, cfg, cfg.runs, share, func(rep int, name string) error {
		m := modes[name]
		t0 := time.Now()
		b, err := boot(ctx, cfg, m, tmp, share, fmt.Sprintf("%s.%d", name, rep), m.timedInitrd(cfg, rep), false, nil)
		if err != nil {
			return fmt.Errorf("%s run %d: %w", name, rep+1, err)
		}
		if err := checkFeatures(cfg, b.features); err != nil {
			return fmt.Errorf("%s run %d: %w", name, rep+1, err)
		}
		m.Features = b.features
		samples := b.samples
		boot := time.Since(t0).Seconds()
		for _, w := range cfg.roundWorkloads(rep) {
			s, ok := samples[w]
			if msg := b.failed[w]; msg != "" {
				res.fail(w, name, msg)
				fmt.Fprintf(os.Stderr, "[%d/%d] %-15s %-7s FAILED in the guest: %s\n", rep+1, cfg.runs, name, w, msg)
				continue
			}
			if !ok {
				return fmt.Errorf("%s run %d: no result for %s", name, rep+1, w)
			}
			res.add(w, name, rep, s)
			fmt.Fprintf(os.Stderr, "[%d/%d] %-15s %-12s %10.1f %-7s %8.3fs  qemu cpu %7.2fs  server cpu %6.2fs  server rss %7d KiB (anon %d, file %d, shmem %d)\n",
				rep+1, cfg.runs, name, w, s.Units/s.Seconds/unitScale(w), unitOf(w), s.Seconds, s.QemuCPU, s.ServerCPU, s.ServerRSSKiB, s.ServerAnonKiB, s.ServerFileKiB, s.ServerShmemKiB)
			if s.IdleRSSKiB > 0 {
				fmt.Fprintf(os.Stderr, "[%d/%d] %-15s %-12s server rss after %v idle %7d KiB (anon %d)\n", rep+1, cfg.runs, name, w, cfg.idleSample, s.IdleRSSKiB, s.IdleAnonKiB)
			}
		}
		res.addBoot(name, boot)
		return nil
	})
	if err != nil {
		return err
	}
	res.finish(time.Since(start))
	res.printTable(os.Stdout)
	return cli.Save("guestbench", cfg.out, res)
}

// rotatedBoots runs each for runs rounds of every mode, in an order
// rotated each round (cli.Rotate), with the host's caches warmed before
// every boot (warmHost); it stops at the first error or when ctx ends.
// The timed boots and the profile boots (profile.go) go through it.
func rotatedBoots(ctx context.Context, cfg *config, runs int, share string, each func(rep int, name string) error) error {
	for rep := range runs {
		for _, name := range cli.Rotate(cfg.modes, rep) {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := warmHost(share); err != nil {
				return err
			}
			if err := each(rep, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// goBuild compiles guestbench/NAME as a static binary into dir: the
// guest runner, or the what-if server.
func goBuild(goCmd, dir, name string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.Command(goCmd, "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./guestbench/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build guestbench/%s (run from bench/): %w", name, err)
	}
	return out, nil
}

// prepareShare makes the read file (incompressible bytes) and the tree of
// empty files on the host, once.
func prepareShare(cfg *config, share string) error {
	start := time.Now()
	fd, err := unix.Open(filepath.Join(share, readName), unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	buf := fsops.Pattern()
	for done := int64(0); done < cfg.size; {
		n, err := unix.Write(fd, buf[:min(int64(len(buf)), cfg.size-done)])
		if err != nil {
			unix.Close(fd)
			return err
		}
		done += int64(n)
	}
	unix.Close(fd)
	if err := makeTree(filepath.Join(share, treeName), cfg.dirs, cfg.filesPerDir, cfg.dirs*cfg.filesPerDir); err != nil {
		return err
	}
	if slices.Contains(cfg.workloads, "memory") {
		if err := makeTree(filepath.Join(share, memoryName), (cfg.memoryFiles+999)/1000, 1000, cfg.memoryFiles); err != nil {
			return err
		}
	}
	if slices.Contains(cfg.workloads, "memory-large") {
		if err := makeTree(filepath.Join(share, largeName), (cfg.largeFiles+999)/1000, 1000, cfg.largeFiles); err != nil {
			return err
		}
	}
	unix.Sync()
	fmt.Fprintf(os.Stderr, "guestbench: made %s file and %d-file tree in %s (%v)\n",
		cli.Human(cfg.size), cfg.dirs*cfg.filesPerDir, share, time.Since(start).Round(time.Millisecond))
	return nil
}

// makeTree makes dirs directories of up to perDir empty files, total in
// all.
func makeTree(tree string, dirs, perDir, total int) error {
	for d := range dirs {
		sub := filepath.Join(tree, fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		for i := range min(perDir, total-d*perDir) {
			fd, err := unix.Open(fmt.Sprintf("%s/f%05d", sub, i), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
			if err != nil {
				return err
			}
			unix.Close(fd)
		}
	}
	return nil
}

// warmHost reads the file and walks the tree on the host before every
// boot, so every mode starts with the host page, dentry and inode caches
// warm: the comparison is of the transports, not of the host disk.
func warmHost(share string) error {
	fd, err := unix.Open(filepath.Join(share, readName), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil || n == 0 {
			unix.Close(fd)
			if err != nil {
				return err
			}
			break
		}
	}
	return filepath.WalkDir(share, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		_, err = d.Info()
		return err
	})
}
