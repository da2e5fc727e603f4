package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/session"
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

// workbenchLibrary adapts the payload library to the TUI.
type workbenchLibrary struct{ lib *initlib.Library }

func (w workbenchLibrary) Items() []tui.Item {
	var out []tui.Item
	for _, it := range w.lib.Items("") {
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
	lib.AddPaths(initlib.KindInit, f.inits...)
	kernels := f.kernels
	if k, err := session.FindKernel(""); err == nil {
		kernels = append(kernels, k)
	}
	lib.AddPaths(initlib.KindKernel, kernels...)
	return workbenchLibrary{lib: lib}
}

// launcher starts a live session for the items the user picked.
func (w workbenchLibrary) launcher(f *workbenchFlags) tui.Launcher {
	return func(req tui.LaunchRequest) (tui.Source, error) {
		payload, err := w.payload(req.Init)
		if err != nil {
			return nil, err
		}
		if f := initlib.CheckPayload(payload.Bytes, req.RootFS.Path); f.Verdict == initlib.Bad {
			return nil, fmt.Errorf("%s on %s: %s", payload.Name, req.RootFS.Name, f.Detail)
		}
		cfg := session.Config{
			Engine: f.engine, Accel: f.accel, RootFS: req.RootFS.Path, Payload: payload,
			Kernel: req.Kernel.Path, CPUs: f.cpus, MemMiB: f.mem, BootTrace: true, Hook: f.eng,
		}
		return startLive(cfg, f.record)
	}
}

func (w workbenchLibrary) payload(it tui.Item) (initlib.Payload, error) {
	if it.Path == "" {
		if p, ok := w.lib.Find(it.Name); ok {
			return p, nil
		}
		return initlib.Payload{}, fmt.Errorf("no built-in payload %q", it.Name)
	}
	return initlib.FromFile(it.Path)
}

// runWorkbench opens the TUI.
func runWorkbench(cmd *cobra.Command, f *workbenchFlags) error {
	th, err := themes.Resolve(f.theme, os.Environ())
	if err != nil {
		return err
	}
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
	m := tui.New(tui.Options{Theme: th, Library: lib, Launch: lib.launcher(f), Title: "krunbench", Rules: f.eng})
	defer m.Close()
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(cmd.InOrStdin()), tea.WithOutput(cmd.OutOrStdout()))
	_, err = p.Run()
	return err
}
