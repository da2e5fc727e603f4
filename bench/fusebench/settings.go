package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/krunbench/krunbench/bench/internal/peers"

	schema "github.com/krunbench/krunbench/bench/internal/results"
)

// Settings. "default" measures the machine as a user meets it: nothing
// raised (fs.pipe-max-size as the distribution ships it), the balloon
// left bound, and every cold sample on a freshly started server and
// mount (what a first `serve --mount` or a guest boot meets), plus the
// same workloads on a server mounted for the whole run ("-warm" rows,
// the steady state). "tuned" is the earlier setup: balloon unbound,
// pipes raised to 4 MiB, every server mounted side by side for the run.
const (
	settingsDefault = "default"
	settingsTuned   = "tuned"
)

// defaultSettingsModes are the modes default settings compare: krunbench
// as `serve --mount` runs it, and the two peers of issue 15; no-tap and
// rules100 (the tap's and 100 rules' cost) on overheadRows only;
// writeback on the write rows (writeback.go).
var defaultSettingsModes = []string{modeHost, modeNoTap, modeTap, modeRules, modeGoFuse, modePtHP, modeWriteback}

// Targets of issue 15, each a ratio of krunbench (tap) throughput over a
// peer's, taken within rounds.
const (
	targetOverGoFuse = 1.2
	targetOverPtHP   = 1.0
)

// applySettings fills in what -settings implies for the flags the user
// did not set.
func applySettings(cfg *config) error {
	switch cfg.settings {
	case settingsTuned:
		return nil
	case settingsDefault:
	default:
		return fmt.Errorf("-settings: %q is neither %s nor %s", cfg.settings, settingsDefault, settingsTuned)
	}
	if flagSet("keep-balloon") && !cfg.keepBalloon || flagSet("keep-pipe-max") && !cfg.keepPipeMax {
		return errors.New("-settings default leaves the balloon and fs.pipe-max-size alone; use -settings tuned")
	}
	cfg.keepBalloon, cfg.keepPipeMax = true, true
	if !flagSet("runs") {
		cfg.runs = 6
	}
	if !flagSet("size") {
		cfg.size = 512 << 20
	}
	if !flagSet("dirs") {
		cfg.dirs = 15
	}
	if !flagSet("creates") {
		cfg.creates = 10000
	}
	// passthrough_hp refuses to cross into another filesystem (it
	// answers ENOTSUP under the tmpfs the tuned run mounts inside the
	// share), so create+unlink runs on the share's own filesystem.
	if !flagSet("create-on-disk") {
		cfg.createOnDisk = true
	}
	return nil
}

// applyQuick shrinks, for -quick, every size the command line left at
// its default: a smoke run that shows every row works, not a measurement.
func applyQuick(cfg *config) {
	if !cfg.quick {
		return
	}
	set := func(name string, p *int, v int) {
		if !flagSet(name) {
			*p = v
		}
	}
	set("runs", &cfg.runs, 2)
	set("dirs", &cfg.dirs, 2)
	set("creates", &cfg.creates, 500)
	set("conc-files", &cfg.concFiles, 250)
	set("conc-creates", &cfg.concCreates, 100)
	set("conc-reads", &cfg.concReads, 500)
	set("mixed-probes", &cfg.mixedProbes, 1000)
	set("mem-files", &cfg.memFiles, 0)
	if !flagSet("size") {
		cfg.size = 32 << 20
	}
	if !flagSet("conc-file-size") {
		cfg.concFileSize = 8 << 20
	}
	if !flagSet("mixed-size") {
		cfg.mixedSize = 128 << 20
	}
}

// flagSet reports whether the named flag was given on the command line.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// coreRows are the workloads default settings run, cold and warm.
var coreRows = []string{"write", "read", "stat", "create"}

// withWarmRows keeps the core workloads (fresh server per sample) and
// adds each again as "NAME-warm" on a server mounted for the whole run.
func withWarmRows(wls []*workload) []*workload {
	var cold, warm []*workload
	for _, w := range wls {
		if !slices.Contains(coreRows, w.Name) {
			continue
		}
		w.Title += ", fresh server"
		cold = append(cold, w)
		c := *w
		c.Name, c.Title, c.warmServer = w.Name+"-warm", strings.TrimSuffix(w.Title, ", fresh server")+", warm server", true
		warm = append(warm, &c)
	}
	return append(cold, warm...)
}

// skippedPeer is a peer mode left out of the run, and why
// (bench/internal/results).
type skippedPeer = schema.SkippedPeer

// findPeers builds or finds the peer servers the modes need; a peer that
// cannot be had is dropped from cfg.modes and reported loudly, here and
// in the JSON, so its rows are missing rather than the run.
func findPeers(cfg *config, tmp string) []skippedPeer {
	var skipped []skippedPeer
	drop := func(mode string, err error) {
		fmt.Fprintf(os.Stderr, "fusebench: SKIPPED %s: %v\n", mode, err)
		skipped = append(skipped, skippedPeer{Mode: mode, Reason: err.Error()})
		cfg.modes = slices.DeleteFunc(cfg.modes, func(m string) bool { return m == mode })
	}
	if (slices.Contains(cfg.modes, modeGoFuse) || slices.Contains(cfg.modes, modeGoFuseP)) && cfg.loopback == "" {
		p, err := peers.GoFuseLoopback(cfg.goCmd, tmp)
		if err != nil {
			drop(modeGoFuse, err)
			drop(modeGoFuseP, err)
		} else {
			cfg.loopback = p.Path
		}
	}
	if slices.Contains(cfg.modes, modePtHP) && cfg.passthroughHP != "" {
		if p, err := filepath.Abs(cfg.passthroughHP); err != nil {
			drop(modePtHP, err)
		} else if _, err := os.Stat(p); err != nil {
			drop(modePtHP, fmt.Errorf("-passthrough-hp: %w", err))
		} else {
			cfg.passthroughHP = p
		}
	} else if slices.Contains(cfg.modes, modePtHP) {
		src, _ := filepath.Abs(cfg.peerSrc)
		p, err := peers.PassthroughHP(src, cfg.peerCache)
		if err != nil {
			drop(modePtHP, err)
		} else {
			cfg.passthroughHP = p.Path
		}
	}
	return skipped
}

// freshServers returns the function default settings' cold rows start
// each sample's server with: its mount point made once, a new process
// and mount every time; the returned stop unmounts it again.
func freshServers(cl *cleanups, modes map[string]*mode, tmp string) func(*mode) (*server, func(), error) {
	made := map[string]bool{}
	return func(m *mode) (*server, func(), error) {
		if !made[m.Name] {
			if err := os.Mkdir(m.Mount, 0o755); err != nil && !os.IsExist(err) {
				return nil, nil, err
			}
			cl.push("unmount "+m.Mount, func() error { return unmountIfMounted(m.Mount) })
			made[m.Name] = true
		}
		logFile := filepath.Join(tmp, strings.ReplaceAll(m.Name, "+", "-")+".log")
		s, stop, err := startServer(cl, m, m.Mount, logFile)
		if err != nil {
			return nil, nil, err
		}
		return s, stop, nil
	}
}

// readInt reads a number from a /proc file; 0 if it cannot.
func readInt(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	var n int
	fmt.Sscan(string(b), &n)
	return n
}

// reportingBalloons lists the virtio-balloon devices bound to their
// driver that report free pages (see memory.go): with them bound, 512 MiB
// and larger samples can pay for the hypervisor faulting freed memory in.
func reportingBalloons() []string {
	devs, _ := filepath.Glob(filepath.Join(balloonDriver, "virtio*"))
	var out []string
	for _, dev := range devs {
		feats, err := os.ReadFile(filepath.Join(dev, "features"))
		if err == nil && len(feats) > featureReporting && feats[featureReporting] == '1' {
			out = append(out, filepath.Base(dev))
		}
	}
	return out
}
