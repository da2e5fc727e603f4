// Command tuibench measures what krunbench's TUI costs a guest under a
// flood of FUSE traffic: the guest walks a 50,000-file tree (`find /data |
// wc -l`, timed inside the guest with busybox `time -p`) once under
// `krunbench run` (the tap on, no subscriber), once typed into the TUI's
// guest console in tmux with the traffic pane live, and once with the
// traffic pane paused. While the TUI runs it keeps the debug overlay open
// and samples the screen, to read frame times and drop counters and to
// check that the traffic pane keeps redrawing. It compares the TUI's
// overhead with the tap overhead fusebench measured (results/fuse.json).
// See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/krunbench/krunbench/bench/internal/cli"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

type config struct {
	bin, kernel, busybox string
	out, fuseJSON        string
	workdir, lock        string
	keep                 bool
	accel                string
	runs                 int
	dirs, filesPerDir    int
	cols, rows           int
	sample               time.Duration
	timeout, lockWait    time.Duration
	modes                []string
}

// The modes, in the order of the table.
const (
	modeRun    = "run"
	modeTUI    = "tui"
	modePaused = "tui-paused"
)

var allModes = []string{modeRun, modeTUI, modePaused}

var modeInfo = map[string]struct{ label, desc string }{
	modeRun:    {"run (a)", "krunbench run -- /tuibench.sh: no TUI, the tap on with no subscriber"},
	modeTUI:    {"tui (b)", "the TUI in tmux, /tuibench.sh typed into the guest shell, traffic pane live, debug overlay open"},
	modePaused: {"tui-paused (c)", "as tui, with the traffic pane paused (space) before the workload"},
}

// Inside the guest's root.
const (
	scriptName = "tuibench.sh"
	outName    = "tuibench.out"
	rootfsName = "tuibench"
)

// script is the workload: the guest times `find /data | wc -l` itself,
// then leaves the result in the shared root for the host to pick up.
const script = `#!/bin/sh
echo TUIBENCH start
r=$( { time -p sh -c 'find /data | wc -l'; } 2>&1 )
echo $r > /` + outName + `.tmp
mv /` + outName + `.tmp /` + outName + `
echo TUIBENCH done $r
`

func main() { cli.Main("tuibench", parseFlags, run) }

func parseFlags() (*config, error) {
	var cfg config
	var modes string
	flag.StringVar(&cfg.bin, "bin", "../bin/krunbench", "krunbench binary")
	flag.StringVar(&cfg.kernel, "kernel", "", "guest kernel bzImage (default: $KRUNBENCH_KERNEL, then the one make kernel installs)")
	flag.StringVar(&cfg.busybox, "busybox", "busybox", "static busybox copied into the guest's root")
	flag.StringVar(&cfg.out, "out", "results/tui.json", "JSON results file (empty: none)")
	flag.StringVar(&cfg.fuseJSON, "fuse", "results/fuse.json", "fusebench results to compare with (the tap overhead rows)")
	flag.StringVar(&cfg.workdir, "workdir", os.TempDir(), "where the temporary library goes")
	flag.StringVar(&cfg.lock, "lock", "/tmp/krunbench-bench.lock", "lock file every measurement run holds (flock)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary library and the screen captures")
	flag.StringVar(&cfg.accel, "accel", "tcg", "QEMU accelerator: tcg or kvm")
	flag.IntVar(&cfg.runs, "runs", 3, "runs per mode (the median is reported)")
	flag.IntVar(&cfg.dirs, "dirs", 50, "directories under /data")
	flag.IntVar(&cfg.filesPerDir, "files-per-dir", 1000, "empty files per directory")
	flag.IntVar(&cfg.cols, "cols", 120, "tmux width")
	flag.IntVar(&cfg.rows, "rows", 40, "tmux height")
	flag.DurationVar(&cfg.sample, "sample", 2*time.Second, "screen sampling interval during the flood")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "limit for one run, once it holds the lock")
	flag.DurationVar(&cfg.lockWait, "lock-wait", 30*time.Minute, "how long one run waits for the lock")
	flag.StringVar(&modes, "modes", strings.Join(allModes, ","), "modes, comma-separated: "+strings.Join(allModes, ", "))
	flag.Parse()
	if flag.NArg() != 0 {
		return nil, fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if cfg.runs < 1 || cfg.dirs < 1 || cfg.filesPerDir < 1 || cfg.sample <= 0 {
		return nil, errors.New("-runs, -dirs, -files-per-dir and -sample must be positive")
	}
	if cfg.accel != "tcg" && cfg.accel != "kvm" {
		return nil, fmt.Errorf("-accel %q: want tcg or kvm", cfg.accel)
	}
	for m := range strings.SplitSeq(modes, ",") {
		if m = strings.TrimSpace(m); m == "" {
			continue
		}
		if !slices.Contains(allModes, m) {
			return nil, fmt.Errorf("unknown mode %q (have %s)", m, strings.Join(allModes, ", "))
		}
		cfg.modes = append(cfg.modes, m)
	}
	if len(cfg.modes) == 0 {
		return nil, errors.New("-modes must not be empty")
	}
	var err error
	for _, p := range []*string{&cfg.bin, &cfg.out, &cfg.fuseJSON} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return nil, err
			}
		}
	}
	return &cfg, nil
}

// checkTools finds everything a run needs, or says why the benchmark is
// skipped.
func checkTools(cfg *config) error {
	for _, tool := range []string{"qemu-system-x86_64", "tmux", "flock", cfg.busybox} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w: %s not found", cli.ErrSkip, tool)
		}
	}
	if st, err := os.Stat(cfg.bin); err != nil || st.IsDir() {
		return fmt.Errorf("-bin %s: not found (make build)", cfg.bin)
	}
	if cfg.kernel == "" {
		if cfg.kernel = cli.FindKernel(); cfg.kernel == "" {
			return fmt.Errorf("%w: no guest kernel (pass -kernel, set KRUNBENCH_KERNEL, or run make kernel)", cli.ErrSkip)
		}
	}
	if st, err := os.Stat(cfg.kernel); err != nil || st.IsDir() {
		return fmt.Errorf("-kernel %s: not a file", cfg.kernel)
	}
	return nil
}

func run(ctx context.Context, cfg *config) error {
	if err := checkTools(cfg); err != nil {
		return err
	}
	work, removeWork, err := cli.WorkDir("tuibench", cfg.workdir, cfg.keep)
	if err != nil {
		return err
	}
	defer removeWork()
	lib := filepath.Join(work, "lib")
	root := filepath.Join(lib, "rootfs", rootfsName)
	fmt.Fprintf(os.Stderr, "tuibench: building %s (%d x %d files)\n", root, cfg.dirs, cfg.filesPerDir)
	if err := buildRootfs(cfg, root); err != nil {
		return err
	}
	b := &bench{cfg: cfg, work: work, lib: lib, root: root, want: cfg.dirs*cfg.filesPerDir + cfg.dirs + 1}
	res := newResults(cfg, collectInfo(cfg))
	start := time.Now()
	for rep := range cfg.runs {
		for _, m := range cli.Rotate(cfg.modes, rep) {
			if err := ctx.Err(); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "tuibench: run %d/%d, %s\n", rep+1, cfg.runs, m)
			s, err := b.once(ctx, m, rep)
			if err != nil {
				return fmt.Errorf("%s, run %d: %w", m, rep+1, err)
			}
			fmt.Fprintf(os.Stderr, "tuibench:   guest real %.2fs (user %.2fs, sys %.2fs)%s\n", s.Seconds, s.GuestUser, s.GuestSys, s.uiSummary())
			res.add(m, s)
		}
	}
	res.finish(time.Since(start))
	res.compareFuse(cfg.fuseJSON)
	res.print(os.Stdout)
	return cli.Save("tuibench", cfg.out, res)
}

// buildRootfs makes a busybox root with every applet, the workload script
// and the /data tree.
func buildRootfs(cfg *config, root string) error {
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "etc", "root", "data"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	bb, err := exec.LookPath(cfg.busybox)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		return err
	}
	list, err := exec.Command(bb, "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox --list: %w", err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(root, scriptName), []byte(script), 0o755); err != nil {
		return err
	}
	for d := range cfg.dirs {
		dir := filepath.Join(root, "data", fmt.Sprintf("d%03d", d))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		for f := range cfg.filesPerDir {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d", f)), nil, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// warmHost walks the tree so that every run starts with the host's dentry
// and inode caches warm; the guest's are cold in every run (a fresh boot).
func warmHost(root string) (int, error) {
	n := 0
	err := filepath.WalkDir(filepath.Join(root, "data"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if _, err := d.Info(); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}
