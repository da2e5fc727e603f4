package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/initlib/defaultinit"
	"github.com/krunbench/krunbench/session"
	"github.com/krunbench/krunbench/session/terminal"
)

type runFlags struct {
	cfg        session.Config
	initFile   string
	initPolicy string
	noCheck    bool
	verbose    bool
	timings    bool
	rules      ruleFlags
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run --rootfs DIR [--init default|none|NAME|FILE] [flags] -- CMD ARGS",
		Short: "Boot a guest on DIR as its virtio-fs root and run CMD; exit with its exit code",
		Long:  "run boots a guest on DIR as its virtio-fs root and runs CMD; it exits with CMD's exit code.\n\n" + shareLimitsHelp,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGuest(cmd, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.cfg.Engine, "engine", session.EngineAuto, "engine: kvm (in-process VMM), qemu, or auto (kvm where /dev/kvm runs guests on hardware virtualization, else qemu; says which on stderr)")
	fl.StringVar(&f.cfg.Accel, "accel", "", "QEMU accelerator: kvm, tcg (default: kvm where it works)")
	fl.StringVar(&f.cfg.RootFS, "rootfs", "", "host directory served as the guest's root (required)")
	fl.StringVar(&f.initFile, "init", "default", "payload served as /init.krun: default (the built-in krun init), none, a built-in name (shell-template, exit-at-once) or a file")
	fl.StringVar(&f.initPolicy, "init-policy", "init.krun", "where init comes from: init.krun (the payload), kernel (--kernel-init PATH in the rootfs), none (the kernel searches)")
	fl.StringVar(&f.cfg.Init.KernelInitPath, "kernel-init", "", "init inside the rootfs for --init-policy kernel")
	fl.BoolVar(&f.noCheck, "no-payload-check", false, "do not check before boot that the payload can run on the rootfs (an x86-64 ELF, static or with its loader there, or a script whose interpreter is there)")
	fl.BoolVar(&f.cfg.BootTrace, "boot-trace", false, "ask the default init for boot milestones (krunbench.trace=1)")
	fl.StringVar(&f.cfg.Kernel, "kernel", "", "guest kernel (default: $KRUNBENCH_KERNEL, then the one make kernel installs)")
	fl.IntVar(&f.cfg.CPUs, "cpus", 1, "vCPUs")
	fl.IntVar(&f.cfg.MemMiB, "mem", 512, "guest memory in MiB")
	fl.StringVar(&f.cfg.TraceFile, "trace", "", "write the FUSE trace as JSON lines to FILE")
	fl.StringArrayVar(&f.cfg.Env, "env", nil, "K=V for the workload (repeatable)")
	fl.StringVar(&f.cfg.Workdir, "workdir", "", "working directory of the workload")
	fl.BoolVar(&f.cfg.Verbose, "verbose-boot", false, "show kernel boot messages")
	fl.BoolVar(&f.verbose, "verbose", false, "log krunbench diagnostics to stderr")
	addRuleFlags(fl, &f.rules)
	fl.BoolVar(&f.timings, "timings", false, "print the boot-time breakdown as one bare JSON line on stderr: "+timingsFields+" (ms since the run started, null when not seen), engine, accel")
	return cmd
}

func runGuest(cmd *cobra.Command, f runFlags, args []string) error {
	cfg := f.cfg
	if len(args) > 0 {
		cfg.Program, cfg.Args = args[0], args[1:]
	}
	policy, err := initlib.ParsePolicy(f.initPolicy)
	if err != nil {
		return err
	}
	cfg.Init.Policy = policy
	if policy == initlib.InitKrun {
		if cfg.Payload, err = resolvePayload(f.initFile); err != nil {
			return err
		}
	}
	cfg.SkipPayloadCheck = f.noCheck
	if f.timings && !cfg.BootTrace {
		// The init's milestones time the kernel entry (on QEMU) and the
		// exec; asked for the timings only, they stay off stdout.
		cfg.BootTrace, cfg.HideMilestones = true, true
	}
	eng, err := f.rules.engine()
	if err != nil {
		return err
	}
	if eng != nil {
		cfg.Hook = eng
	}
	stopControl, err := f.rules.startControl(eng, os.Stderr)
	if err != nil {
		return err
	}
	defer stopControl()
	cfg.EngineNote = os.Stderr
	if initKnowsPorts(cfg.Payload) {
		cfg.In, cfg.Out = runStdio(&cfg, os.Stdin, os.Stdout, os.Stderr)
	} else {
		cfg.In, cfg.Out = os.Stdin, cmd.OutOrStdout()
	}
	if f.verbose {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, caught, stop := stopOnSignals()
	defer stop()
	res, err := session.Run(ctx, cfg)
	err = withFlags(err)
	if f.timings && err == nil {
		fmt.Fprintln(os.Stderr, bootJSON(res))
	}
	switch {
	case errors.Is(err, context.Canceled):
		sig := caught()
		if sig != syscall.SIGPIPE { // a reader that went away needs no note
			fmt.Fprintf(os.Stderr, "krunbench: %s; guest stopped\n", signalWords(sig))
		}
		return exitError{code: 128 + int(sig)}
	case err != nil:
		if faults := faultSummary(eng); faults != "" {
			return fmt.Errorf("%w (%s)", err, faults)
		}
		return err
	}
	return exitError{code: res.ExitCode}
}

// initKnowsPorts says whether the init payload looks for the workload's
// ports (krun-stdin, -stdout, -stderr): the built-in default init does.
// Any other init (a shell-script payload, the rootfs's own init) reads
// and writes the console only, so run keeps every stream on it, as before
// ports existed; moved to ports, its input would go where nobody reads.
func initKnowsPorts(p *initlib.Payload) bool {
	return p != nil && p.Name == defaultinit.Name && p.Origin == "builtin"
}

// runStdio wires the workload's standard streams as libkrun does: a
// stream that is a terminal stays on the guest console (its one terminal,
// bridged raw), each other one gets its own virtio-console port, so end
// of input reaches the workload, its stdout and stderr stay apart, and
// nothing but the workload's stdout reaches krunbench's stdout. It returns
// the terminal to bridge to the console (nil: none) and where the
// console's own output goes: stdout when that is the terminal the
// workload writes to, else stderr (the kernel's and the init's messages
// are diagnostics).
func runStdio(cfg *session.Config, stdin, stdout, stderr *os.File) (in *os.File, console io.Writer) {
	in, console = stdin, stdout
	if !terminal.IsTerminal(int(stdin.Fd())) {
		cfg.Stdin, in = stdin, nil
	} else if size, err := terminal.GetSize(int(stdin.Fd())); err == nil {
		cfg.ConsoleSize = size
	}
	if !terminal.IsTerminal(int(stdout.Fd())) {
		cfg.Stdout, console = stdout, stderr
	}
	if !terminal.IsTerminal(int(stderr.Fd())) {
		cfg.Stderr = stderr
	}
	return in, console
}

// stopSignals end a run cleanly: the guest is stopped and its runtime
// directory removed before krunbench exits. SIGPIPE is among them so that
// a closed pipe on stdout (krunbench run ... | head -2) is an EPIPE and a
// clean stop rather than the Go runtime's immediate exit.
var stopSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE}

// stopOnSignals returns a context cancelled by the first of stopSignals,
// a function saying which one it was, and the function that stops
// listening.
func stopOnSignals() (ctx context.Context, caught func() syscall.Signal, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, stopSignals...)
	got := make(chan syscall.Signal, 1)
	go func() {
		select {
		case s := <-ch:
			got <- s.(syscall.Signal)
			cancel()
		case <-ctx.Done():
		}
	}()
	caught = func() syscall.Signal {
		select {
		case s := <-got:
			got <- s
			return s
		default:
			return syscall.SIGINT
		}
	}
	return ctx, caught, func() { signal.Stop(ch); cancel() }
}

// signalWords says what a stop signal means to the user.
func signalWords(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "interrupted"
	case syscall.SIGHUP:
		return "terminal closed (SIGHUP)"
	case syscall.SIGTERM:
		return "terminated (SIGTERM)"
	}
	return sig.String()
}

// timingsFields are the moments --timings reports, in order.
const timingsFields = "vm_created_ms, kernel_entry_ms, first_fuse_ms, init_eof_ms, exec_ms, exit_ms"

// bootJSON is a run's boot-time breakdown (session.BootTimes) as one JSON
// object: every moment of timingsFields in milliseconds since the run
// started (null when it was not seen), then the engine and accelerator.
func bootJSON(res session.Result) string {
	b := res.Boot
	var fields []string
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"vm_created", b.VMCreated}, {"kernel_entry", b.KernelEntry}, {"first_fuse", b.FirstRequest},
		{"init_eof", b.InitEOF}, {"exec", b.Exec}, {"exit", b.Exit},
	} {
		v := "null"
		if f.d > 0 {
			v = fmt.Sprintf("%.3f", float64(f.d)/float64(time.Millisecond))
		}
		fields = append(fields, fmt.Sprintf("%q:%s", f.name+"_ms", v))
	}
	fields = append(fields, fmt.Sprintf(`"engine":%q,"accel":%q`, res.Engine, res.Accel))
	return "{" + strings.Join(fields, ",") + "}"
}
