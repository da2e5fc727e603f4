package main

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/initlib/defaultinit"
	"github.com/krunbench/krunbench/session"
	"github.com/krunbench/krunbench/session/terminal"
	"github.com/krunbench/krunbench/themes"
	"github.com/krunbench/krunbench/tui"
	"github.com/krunbench/krunbench/virtiofs/rules"
)

// workbenchFlags configure the TUI (krunbench with no command).
type workbenchFlags struct {
	theme   string
	dir     string
	rootfs  []string
	inits   []string
	kernels []string
	record  string
	engine  string
	accel   string
	cpus    int
	mem     int
	rules   ruleFlags
	// eng is the rules engine every launched session's server runs, so
	// the debugger pane's rules outlive sessions.
	eng *rules.Engine
}

func addWorkbenchFlags(cmd *cobra.Command, f *workbenchFlags) {
	fl := cmd.Flags()
	fl.StringVar(&f.theme, "theme", themes.Default, "colour theme: "+strings.Join(themes.Names(), ", ")+", or a theme file (.json)")
	fl.StringVar(&f.dir, "library", initlib.DefaultDir(), "library directory (init/, rootfs/, kernel/)")
	fl.StringArrayVar(&f.rootfs, "rootfs", nil, "add a root filesystem directory to the library (repeatable)")
	fl.StringArrayVar(&f.inits, "init", nil, "add an init payload file to the library (repeatable)")
	fl.StringArrayVar(&f.kernels, "kernel", nil, "add a kernel image to the library (repeatable)")
	fl.StringVar(&f.record, "record", "", "record the launched session to FILE, replacing it at each launch (replay with krunbench replay FILE)")
	fl.StringVar(&f.engine, "engine", session.EngineAuto, "engine: kvm, qemu, auto (kvm where it works, else qemu)")
	fl.StringVar(&f.accel, "accel", "", "QEMU accelerator: kvm, tcg (default: kvm where it works)")
	fl.IntVar(&f.cpus, "cpus", 1, "vCPUs of launched guests")
	fl.IntVar(&f.mem, "mem", 512, "memory of launched guests in MiB")
	addRuleFlags(fl, &f.rules)
}

// workbenchLibrary adapts the payload library to the TUI; picks are the
// payloads named with --init, picked at start (else the default init).
type workbenchLibrary struct {
	lib   *initlib.Library
	picks []string
}

func (w workbenchLibrary) Items() []tui.Item {
	var out []tui.Item
	for _, it := range libraryItems(w.lib, "") {
		out = append(out, tui.Item{
			Kind: tui.ItemKind(it.Kind), Name: it.Name, Path: it.Path,
			Verdict: tui.Verdict(it.Verdict.String()), Detail: it.Detail,
		})
	}
	return out
}

func newWorkbenchLibrary(f *workbenchFlags) workbenchLibrary {
	lib := library(f.dir)
	lib.AddPaths(initlib.KindRootFS, f.rootfs...)
	picks := addInits(lib, f.inits)
	if len(picks) == 0 {
		picks = []string{defaultinit.Name}
	}
	addKernels(lib, f.kernels)
	return workbenchLibrary{lib: lib, picks: picks}
}

// launcher starts a live session for the items the user picked; every
// session it starts is added to live, which stops them all at exit.
func (w workbenchLibrary) launcher(f *workbenchFlags, live *liveSessions) tui.Launcher {
	return func(req tui.LaunchRequest) (tui.Source, error) {
		payload, err := w.payload(req.Init)
		if err != nil {
			return nil, err
		}
		// session.Start checks the payload against the root filesystem
		// (Config.Validate) before anything starts.
		cfg := session.Config{
			Engine: f.engine, Accel: f.accel, RootFS: req.RootFS.Path, Payload: &payload,
			Kernel: req.Kernel.Path, CPUs: f.cpus, MemMiB: f.mem, BootTrace: true,
			// The kernel's boot messages are the console's first lines:
			// progress while it boots, the raw text of a failure after.
			Verbose: true, Hook: f.eng,
		}
		src, err := startLive(cfg, f.record)
		if err == nil {
			live.add(src)
		}
		return src, err
	}
}

// liveSessions are the sessions the workbench started.
type liveSessions struct {
	mu   sync.Mutex
	list []*liveSource
}

func (l *liveSessions) add(s *liveSource) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = append(l.list, s)
}

// closeAll stops every session and waits until each has released its
// engine, runtime directory and recording (each within limit).
func (l *liveSessions) closeAll(limit time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.list {
		if !s.Close(limit) {
			fmt.Fprintln(os.Stderr, "krunbench: a guest did not stop within", limit)
		}
	}
	l.list = nil
}

func (w workbenchLibrary) payload(it tui.Item) (initlib.Payload, error) {
	if it.Path == "" {
		if found, ok := libraryPayload(w.lib, it.Name); ok {
			return found.Payload()
		}
		return initlib.Payload{}, fmt.Errorf("no built-in payload %q", it.Name)
	}
	return initlib.FromFile(it.Path)
}

// stopLimit bounds the wait for one guest to stop at exit.
const stopLimit = 15 * time.Second

// runWorkbench opens the TUI. It needs a terminal on both sides; it stops
// every guest it started before it returns, whether the user quit, or a
// signal (SIGINT, SIGTERM, SIGHUP when the terminal closes) ended it.
func runWorkbench(cmd *cobra.Command, f *workbenchFlags) error {
	if err := needTerminal(cmd, "the workbench", "for scripts and pipes: krunbench run"); err != nil {
		return err
	}
	th, err := themes.Resolve(f.theme, os.Environ())
	if err != nil {
		return err
	}
	session.CleanStaleRunDirs()
	if f.eng, err = f.rules.engine(); err != nil {
		return err
	}
	if f.eng == nil {
		f.eng = rules.New() // the debugger pane adds rules as the user asks
	}
	stopControl, err := f.rules.startControl(f.eng, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer stopControl()
	lib := newWorkbenchLibrary(f)
	var live liveSessions
	defer live.closeAll(stopLimit)
	m := tui.New(tui.Options{Theme: th, Library: lib, Picks: lib.picks, Launch: lib.launcher(f, &live), Title: "krunbench", Rules: f.eng})
	defer m.Close()
	ctx, caught, stop := stopOnSignals()
	defer stop()
	// Signals are ours alone (bubbletea's handler would turn SIGTERM into
	// a plain quit): each cancels ctx, which ends the program.
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithoutSignalHandler(),
		tea.WithInput(cmd.InOrStdin()), tea.WithOutput(cmd.OutOrStdout()))
	_, err = p.Run()
	if ctx.Err() != nil {
		return exitError{code: 128 + int(caught())}
	}
	return err
}

// needTerminal refuses a stdin or stdout that is not a terminal, in one
// line that says what to do instead, rather than drawing into a pipe or
// failing inside bubbletea.
func needTerminal(cmd *cobra.Command, what, instead string) error {
	for _, end := range []struct {
		name string
		f    any
	}{{"stdin", cmd.InOrStdin()}, {"stdout", cmd.OutOrStdout()}} {
		if f, ok := end.f.(*os.File); !ok || !terminal.IsTerminal(int(f.Fd())) {
			return fmt.Errorf("%s needs a terminal and %s is not one (%s)", what, end.name, instead)
		}
	}
	return nil
}
