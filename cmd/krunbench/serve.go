package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/krunbench/krunbench/virtiofs"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fusedev"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/virtiofs/trace"
	"github.com/krunbench/krunbench/virtiofs/vhostuser"
)

type serveFlags struct {
	sharedDir  string
	mount      string
	socket     string
	tag        string
	initFile   string
	configFile string
	traceFile  string
	workers    int
	noTap      bool
	verbose    bool
	rules      ruleFlags
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve --shared-dir DIR (--mount MNT | --socket PATH [--tag TAG]) [--init FILE] [--trace FILE]",
		Short: "Serve a directory with /init.krun over /dev/fuse or as a vhost-user-fs backend until interrupted",
		Long: `serve exports DIR with krunbench's synthetic /init.krun, either mounted on the
host through /dev/fuse (--mount), or as the vhost-user backend of QEMU's
vhost-user-fs-device / vhost-user-fs-pci (--socket), a drop-in for virtiofsd.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.sharedDir, "shared-dir", "", "host directory to serve (required)")
	fl.StringVar(&f.mount, "mount", "", "mount point for the /dev/fuse transport")
	fl.StringVar(&f.socket, "socket", "", "vhost-user socket path (the QEMU side uses it with vhost-user-fs-device)")
	fl.StringVar(&f.socket, "socket-path", "", "alias of --socket, as virtiofsd spells it")
	fl.StringVar(&f.tag, "tag", virtiofs.RootTag, "virtio-fs tag advertised in the device config")
	fl.StringVar(&f.initFile, "init", "", "file served as /init.krun (none: /init.krun does not exist)")
	fl.StringVar(&f.configFile, "krun-config", "", "file served as /.krun_config.json")
	fl.StringVar(&f.traceFile, "trace", "", "write FUSE trace events as JSON lines to FILE (- prints them readably)")
	fl.IntVar(&f.workers, "workers", 8, "requests served in parallel")
	fl.BoolVar(&f.noTap, "no-tap", false, "do not observe requests at all (for benchmarks)")
	fl.BoolVar(&f.verbose, "verbose", false, "log dropped and rejected requests")
	addRuleFlags(fl, &f.rules)
	_ = cmd.MarkFlagRequired("shared-dir")
	cmd.MarkFlagsOneRequired("mount", "socket", "socket-path")
	cmd.MarkFlagsMutuallyExclusive("mount", "socket", "socket-path")
	return cmd
}

// readOptional reads a whole file, or returns nil for an empty name. The
// bytes belong to the caller; the filesystem serves them in place.
func readOptional(path, what string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, nil
}

func runServe(cmd *cobra.Command, f serveFlags) error {
	payload, err := readOptional(f.initFile, "--init")
	if err != nil {
		return err
	}
	config, err := readOptional(f.configFile, "--krun-config")
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	pt, err := passthrough.New(f.sharedDir, passthrough.Options{Log: log})
	if err != nil {
		return err
	}
	ov := overlay.New(pt)
	ov.SetPayload(payload)
	ov.SetConfig(config)

	eng, err := f.rules.engine()
	if err != nil {
		return err
	}
	var tap *trace.Tap
	opts := fuse.Options{Log: log}
	if eng != nil {
		opts.Hook = eng
	}
	stopControl, err := f.rules.startControl(eng, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer stopControl()
	if !f.noTap {
		tap = trace.NewTap(trace.Options{Resolver: ov, Inodes: ov})
		opts.Observer = tap
	}
	stopTrace, err := startTrace(tap, f.traceFile, cmd.OutOrStdout())
	if err != nil {
		return err
	}
	srv := fuse.NewServer(ov, opts)
	if f.socket != "" {
		err = serveVhostUser(cmd, srv, f, log)
	} else {
		err = serveFuseDev(cmd, srv, f)
	}
	stopTrace()
	if code, ok := ov.ExitCode(); ok {
		fmt.Fprintf(cmd.ErrOrStderr(), "krunbench: guest reported exit code %d\n", code)
	}
	return err
}

func serveFuseDev(cmd *cobra.Command, srv *fuse.Server, f serveFlags) error {
	m, err := fusedev.New(srv, f.mount, fusedev.Options{Workers: f.workers, AllowOther: true})
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "krunbench: serving %s on %s (Ctrl-C to unmount)\n", f.sharedDir, f.mount)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan error, 1)
	go func() { done <- m.Wait() }()
	select {
	case <-sigs:
		return m.Close()
	case err = <-done:
		return err
	}
}

func serveVhostUser(cmd *cobra.Command, srv *fuse.Server, f serveFlags, log *slog.Logger) error {
	dev, err := virtiofs.NewDevice(srv, virtiofs.DeviceOptions{Tag: f.tag, Workers: f.workers, Log: log})
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	fmt.Fprintf(cmd.ErrOrStderr(), "krunbench: serving %s as vhost-user-fs on %s, tag %s (Ctrl-C to stop)\n", f.sharedDir, f.socket, f.tag)
	err = vhostuser.NewBackend(dev, vhostuser.Options{Log: log}).ListenAndServe(ctx, f.socket)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// startTrace records the tap to a file, or prints it readably for "-".
func startTrace(tap *trace.Tap, path string, stdout io.Writer) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	if tap == nil {
		return nil, errors.New("--trace needs the tap (drop --no-tap)")
	}
	if path == "-" {
		sub := tap.Subscribe(4096)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ev := range sub.C() {
				tap.Resolve(&ev)
				trace.Format(stdout, ev)
			}
		}()
		return func() {
			sub.Close()
			<-done
			if n := sub.Dropped(); n > 0 {
				fmt.Fprintf(stdout, "(%d events dropped: the terminal was slower than the filesystem)\n", n)
			}
		}, nil
	}
	file, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--trace: %w", err)
	}
	rec := tap.Record(file, 0)
	return func() {
		if err := rec.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "krunbench: trace:", err)
		}
		if n := rec.Dropped(); n > 0 {
			fmt.Fprintf(os.Stderr, "krunbench: trace: %d events dropped (writer too slow)\n", n)
		}
		file.Close()
	}, nil
}
