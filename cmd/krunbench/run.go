package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/session"
)

type runFlags struct {
	cfg        session.Config
	initFile   string
	initPolicy string
	verbose    bool
	timings    bool
	rules      ruleFlags
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run --rootfs DIR [--init default|none|NAME|FILE] [flags] -- CMD ARGS",
		Short: "Boot a guest on DIR as its virtio-fs root and run CMD; exit with its exit code",
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
	fl.BoolVar(&f.timings, "timings", false, "print the boot-time breakdown as one JSON line on stderr (krunbench: boot {...}); with --boot-trace it includes the workload's exec")
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
	cfg.In, cfg.Out, cfg.EngineNote = os.Stdin, cmd.OutOrStdout(), os.Stderr
	if f.verbose {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer cancel()
	res, err := session.Run(ctx, cfg)
	if f.timings && err == nil {
		fmt.Fprintf(os.Stderr, "krunbench: boot %s\n", bootJSON(res))
	}
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(os.Stderr, "krunbench: interrupted; guest stopped")
		return exitError{code: 130}
	case err != nil:
		if faults := faultSummary(eng); faults != "" {
			return fmt.Errorf("%w (%s)", err, faults)
		}
		return err
	}
	return exitError{code: res.ExitCode}
}

// bootJSON is a run's boot-time breakdown (session.BootTimes) as one JSON
// object, in milliseconds since the run started; moments not seen are
// left out.
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
		if f.d > 0 {
			fields = append(fields, fmt.Sprintf("%q:%.3f", f.name+"_ms", float64(f.d)/float64(time.Millisecond)))
		}
	}
	fields = append(fields, fmt.Sprintf(`"engine":%q,"accel":%q`, res.Engine, res.Accel))
	return "{" + strings.Join(fields, ",") + "}"
}
