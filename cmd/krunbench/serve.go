package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/krunbench/krunbench/virtiofs"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fusedev"
	"github.com/krunbench/krunbench/virtiofs/idlefree"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/virtiofs/trace"
	"github.com/krunbench/krunbench/virtiofs/vhostuser"
)

// shareLimitsHelp says in --help (serve and run) what bounds a guest's use
// of the host process through the shared directory.
var shareLimitsHelp = fmt.Sprintf(`Limits per shared directory: at most %d open file and directory handles
(or a quarter of RLIMIT_NOFILE if that is less; serve: --max-handles) and
%d cached inode descriptors; past the handle bound the guest's open(2)
fails with ENFILE. At most %d directories keep a read-ahead buffer of
getdents entries between reads; one COPY_FILE_RANGE copies at most 8 MiB.

Guest identity (serve): by default a guest's uid 0 is host root inside the
shared directory, as with virtiofsd and libkrun: it can make setuid-root
files, device nodes and file capabilities there. --translate-uid and
--translate-gid map or squash guest ids to host ids (virtiofsd's rules:
squash:0:65534:1 runs guest root as nobody); --no-devices, --no-setid and
--no-privileged-xattrs refuse device nodes, strip set-id bits and refuse
security.capability and trusted.* for every caller.`,
	passthrough.DefaultMaxHandles, passthrough.DefaultMaxOpenFDs, passthrough.MaxResidentDirBuffers)

type serveFlags struct {
	sharedDir  string
	mount      string
	socket     string
	tag        string
	initFile   string
	noCheck    bool
	configFile string
	traceFile  string
	workers    int
	maxHandles int
	uidRules   []string
	gidRules   []string
	policy     fuse.GuestPolicy
	noTap      bool
	writeback  bool
	verbose    bool
	// idleRelease is how long without requests ends a burst, after which
	// the free heap goes back to the OS (0: never).
	idleRelease time.Duration
	// readdirplus is how READDIRPLUS is offered to the client at INIT.
	readdirplus fuse.ReaddirplusMode
	rules       ruleFlags
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve --shared-dir DIR (--mount MNT | --socket PATH [--tag TAG]) [--init default|none|NAME|FILE] [--trace FILE]",
		Short: "Serve a directory with /init.krun over /dev/fuse or as a vhost-user-fs backend until interrupted",
		Long: `serve exports DIR with krunbench's synthetic /init.krun, either mounted on the
host through /dev/fuse (--mount), or as the vhost-user backend of QEMU's
vhost-user-fs-device / vhost-user-fs-pci (--socket), a drop-in for virtiofsd.

` + shareLimitsHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.sharedDir, "shared-dir", "", "host directory to serve (required)")
	fl.StringVar(&f.mount, "mount", "", "mount point for the /dev/fuse transport")
	fl.StringVar(&f.socket, "socket", "", "vhost-user socket path (the QEMU side uses it with vhost-user-fs-device)")
	fl.StringVar(&f.socket, "socket-path", "", "alias of --socket, as virtiofsd spells it")
	fl.StringVar(&f.tag, "tag", virtiofs.RootTag, "virtio-fs tag advertised in the device config")
	fl.StringVar(&f.initFile, "init", "none", "payload served as /init.krun: default (the built-in krun init), none (/init.krun does not exist), a built-in name or a file; one-shot (gone after the first lookup, even for a guest that sends INIT again; with --socket, armed anew for each front-end connection) unless it is a script")
	fl.BoolVar(&f.noCheck, "no-payload-check", false, "do not check that the payload can run on DIR (an x86-64 ELF, static or with its loader there, or a script whose interpreter is there)")
	fl.StringVar(&f.configFile, "krun-config", "", "file served as /.krun_config.json")
	fl.StringVar(&f.traceFile, "trace", "", "write FUSE trace events as JSON lines to FILE (- prints them readably)")
	fl.IntVar(&f.workers, "workers", 8, "requests served in parallel")
	fl.IntVar(&f.maxHandles, "max-handles", 0, fmt.Sprintf("open file and directory handles the guest may hold; past it opens fail with ENFILE (0: %d, or RLIMIT_NOFILE/4 if less)", passthrough.DefaultMaxHandles))
	fl.StringArrayVar(&f.uidRules, "translate-uid", nil, "map:GUEST:HOST:COUNT or squash:GUEST:HOST:COUNT: run guest uids as host uids (repeatable; first match wins)")
	fl.StringArrayVar(&f.gidRules, "translate-gid", nil, "as --translate-uid, for gids")
	fl.BoolVar(&f.policy.NoDevices, "no-devices", false, "refuse to create character and block devices (EPERM), even for guest root")
	fl.BoolVar(&f.policy.NoSetID, "no-setid", false, "strip set-user-ID and set-group-ID bits from created files and chmod")
	fl.BoolVar(&f.policy.NoPrivilegedXattrs, "no-privileged-xattrs", false, "refuse to set security.capability and trusted.* extended attributes (EPERM), even for guest root")
	fl.Var(readdirplusFlag{&f.readdirplus}, "readdirplus", "how READDIRPLUS is offered at INIT: always (every directory chunk with its entries' attributes, no LOOKUP per entry), auto (READDIRPLUS_AUTO, as virtiofsd and libfuse: the kernel picks per chunk, then LOOKUPs the rest) or off (READDIR and a LOOKUP per entry)")
	fl.BoolVar(&f.writeback, "writeback", false, "offer the kernel's writeback cache: writes are gathered in the client's page cache and reach DIR on fsync, close, memory pressure or within ~30 s; faster sequential writes, but only safe when nothing else changes DIR's files meanwhile (host-side writes to a file the client has cached can be overwritten by its older pages, and the client trusts its own size and mtime); off by default, as with virtiofsd")
	fl.BoolVar(&f.noTap, "no-tap", false, "do not observe requests at all (for benchmarks)")
	fl.BoolVar(&f.verbose, "verbose", false, "log dropped and rejected requests")
	fl.DurationVar(&f.idleRelease, "idle-release", idlefree.DefaultIdle, "after a burst of requests that grew the heap, return the server's free memory to the OS once no request has come for this long (0: never)")
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

// guestPolicy is the policy the flags ask for.
func guestPolicy(f serveFlags) (fuse.GuestPolicy, error) {
	p := f.policy
	for _, r := range f.uidRules {
		rule, err := fuse.ParseIDRule(r)
		if err != nil {
			return p, fmt.Errorf("--translate-uid: %w", err)
		}
		p.UIDs = append(p.UIDs, rule)
	}
	for _, r := range f.gidRules {
		rule, err := fuse.ParseIDRule(r)
		if err != nil {
			return p, fmt.Errorf("--translate-gid: %w", err)
		}
		p.GIDs = append(p.GIDs, rule)
	}
	return p, nil
}

// serveGCPercent is serve's GOGC unless the environment sets one: the
// heap may grow to 1.5x what the last collection left instead of 2x, so
// a walk over many inodes leaves less garbage resident. Measured in
// guestbench (QEMU TCG guest, serve --socket --readdirplus auto, find+stat
// of 15,000 files, busy machine, interleaved in one lock hold): backend
// anonymous RSS after the walk 8,768/8,624 KiB at GOGC 100, 7,296/7,472
// at 50, 6,964/7,272 at 25; with GODEBUG=gctrace=1 over a boot running the stat and
// memory workloads (about 30,000 requests) the GC took 23 ms of CPU in 9
// cycles at 100 and 54 ms in 23 at 50, about 1 ms more per 1,000 requests
// (the stat row's backend CPU is 86 ms per 1,000). 25 was not taken: it
// saves a further 200-330 KiB for about twice the collections again.
//
// What is left over virtiofsd's RSS there (79,604 KiB against 74,512,
// 1.07x, both with the guest's 64 MiB swiotlb pool as shmem): anonymous
// 7,588 KiB against 2,844, of which about 2,500-3,000 is the Go runtime
// before the first request, and file-backed 6,416 against 6,068 (the
// binary's text, 2,784 KiB resident, and read-only data with the
// pclntab, 3,144 KiB). Where the runtime's anonymous memory is before
// the first request (serve --mount of an empty directory, CGO_ENABLED=0
// as make builds it, /proc/PID/smaps): 2,980 KiB, of which 1,436 KiB is
// the heap arena's touched pages, 1,252 KiB the runtime's three other
// anonymous mappings (its off-heap metadata), 180 KiB bss and 136 KiB
// data; 8 threads idle, 9 after a walk (an M's g0 stack is about 16 KiB,
// so fewer threads would save little). File pages are 2,892 KiB idle (text
// 1,408, read-only data 1,388) and about 6,100 after a walk: the request
// paths' text and pclntab, which "-s -w" would not change (the symbol
// table and DWARF it drops are in no loaded segment; not measured). A build with cgo
// (not make's) adds glibc's malloc arenas and 8 MiB pthread stacks.
// The nodeid map's removal (passthrough/slots.go) took the anonymous RSS
// after find over 15,000 files through serve --mount from 8,120 (median
// of 3; 7,932-8,604) to 7,572 KiB (7,312-7,624), per-round ratio 0.90,
// and over 100,000 from 25,016 to 22,360 KiB (one round). On the guest
// path after it (guestbench memory, serve --socket, TCG, 2 boots, busy
// machine, not in one hold with the old binary): 78,952/79,068 KiB
// (anon 6,844/6,964, file 6,508/6,504) against virtiofsd's 74,320/74,236
// (anon 2,852/2,844), 1.06x, still over; the last session run had anon
// 7.9 MiB. Whether the walk's garbage is transient (serve --mount,
// find -ls over 15,000 files, then idle, GODEBUG=gctrace=1,scavtrace=1,
// one run, session 12): RssAnon 2,692 KiB idle, 5,636 right after the
// walk and still 5,636 at +60 s; the runtime's forced GC at 2 min
// (19->19->18 MB heap: 16 MB of it allocated at start and mostly never
// touched, so GOGC 50's goal of 24 MB let the walk run with no GC at
// all) freed about 1 MB, the scavenger returned 0 KiB (heap far under
// its retain goal), and RssAnon was 5,724 at +250 s. So what a burst
// leaves stays resident for as long as the server idles. Since session
// 13 serve returns it once idle (--idle-release, virtiofs/idlefree:
// debug.FreeOSMemory 1 s after a burst that grew the heap by 1 MiB).
// What that returns depends on the burst (serve --mount, 15,000 files,
// /dev/fuse, one run each): a find -ls alone leaves little garbage,
// 88-340 KiB returned (readdirplus always 88, auto 156-336, off 176) in
// 3-14 ms per release; the same walk and 10,000 READLINKs (a 4 KiB reply
// buffer allocated per call, ~40 MB through the GC during the burst)
// 15,308 -> 5,688 KiB, where before it stayed at 15,468-15,816 KiB.
// On the guest path (guestbench, serve --socket --readdirplus auto, TCG,
// the new binary against fdf6d5a's in one rotated run, 3 rounds, busy
// machine): RssAnon after the 15,000-file memory walk and after 2 s idle
// 6,676/6,720/6,796 -> 5,588/6,052/5,792 KiB (1,088, 668, 1,004 returned),
// the old binary's unchanged (6,740/6,676/6,580 both times), virtiofsd's
// too (2,888-3,032); VmRSS medians after 2 s idle 77,872 against 78,472
// KiB (old) and 74,792 (virtiofsd): 1.04x instead of 1.05x (a second run
// of 3 rounds: 5,516/5,600/5,788 KiB anon idle, the old binary's 6,556-
// 6,616 unchanged). At 100,000 files (memory-large, one round) 18,848 ->
// 18,364 KiB, the old binary's 18,876 unchanged. Right after
// the walk, where the summary row samples, nothing changes (1.05x both):
// the release comes 1 s later, and the threshold is not tuned to the
// sample. The new binary's file pages were 6,480 against 6,196 KiB in
// that run, with --idle-release 0 as well (serve --mount: 6,228-6,356
// against 6,008-6,072), so that is the build's layout, not the release
// (earlier builds: 6,328-6,508).
//
// After the key table of slot numbers (passthrough/keys.go; guestbench
// memory, 3 rounds in one hold, static builds): 77,040 KiB against
// virtiofsd's 74,360, 1.04x; anon 5,152 against 2,844, file 6,328 against
// 5,916, shmem 65,600 both. Where our anon is (smaps after the walk, and
// an exact heap profile, MemProfileRate 1, of a diagnostic build): the
// heap arena 3,632 KiB resident, of which 2.2 MiB live: the inode slabs
// 1,600 KiB (15,000 x 112 bytes), names 198, the key table 128, the tap 85,
// the device 33; the other 1.4 MiB is garbage within GOGC 50's headroom
// (of which the idle release, above, returns about 1 MiB).
// Outside the arena about 1.5 MiB: the runtime's metadata mappings (528
// and 460 KiB), goroutine and thread stacks (StackInuse 608 KiB, 8-9
// threads), bss 188 KiB. The target is out of reach for this backend at
// 15,000 inodes: with no per-inode cost at all, the runtime's idle anon
// (2,980 KiB) is already above virtiofsd's whole anon (2,844), and our
// file pages after a walk (6,200-6,300 KiB: the request paths' text and
// pclntab) are more than virtiofsd's (5,844-6,248, its libraries), so
// anon+file (about 9,200 KiB at zero bytes per inode) stays above
// virtiofsd's 8,760 (2,844 + 5,916, medians). virtiofsd's own per-inode
// cost is partly kernel memory (an O_PATH file per inode, which RSS does
// not count). At 100,000 files it could not be compared here:
// guestbench/nofile.go (RLIMIT_NOFILE hard 20000, no CAP_SYS_RESOURCE);
// ours there: anon 19,284-19,732 KiB (21,820 with the map).
const serveGCPercent = 50

// tuneServeGC applies serveGCPercent unless GOGC is set (getenv is
// os.Getenv outside tests); it returns the percent in force.
func tuneServeGC(getenv func(string) string) int {
	if getenv("GOGC") != "" {
		old := debug.SetGCPercent(-1)
		debug.SetGCPercent(old)
		return old
	}
	debug.SetGCPercent(serveGCPercent)
	return serveGCPercent
}

func runServe(cmd *cobra.Command, f serveFlags) error {
	tuneServeGC(os.Getenv)
	policy, err := guestPolicy(f)
	if err != nil {
		return err
	}
	payload, err := resolvePayload(f.initFile)
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
	if f.maxHandles < 0 {
		return fmt.Errorf("--max-handles %d: must be 0 (the default) or more", f.maxHandles)
	}
	pt, err := passthrough.New(f.sharedDir, passthrough.Options{Log: log, MaxHandles: f.maxHandles})
	if err != nil {
		return err
	}
	ov := overlay.New(pt)
	rearm := func() {}
	if payload != nil {
		if err := checkPayloadOn(payload, f.sharedDir, f.noCheck); err != nil {
			return err
		}
		if err := ov.SetPayload(payload.Bytes); err != nil {
			return withFlags(err)
		}
		rearm = func() { _ = ov.SetPayload(payload.Bytes) } // checked above
	}
	ov.SetConfig(config)

	eng, err := f.rules.engine()
	if err != nil {
		return err
	}
	var tap *trace.Tap
	opts := fuse.Options{Log: log, Policy: policy, Readdirplus: f.readdirplus}
	if f.writeback {
		// The passthrough widens write-only opens to read-write (the
		// cache reads partial pages) and drops O_APPEND (the kernel
		// appends at its own size): passthrough.openFlags.
		opts.Offer = fuse.Offered | fuse.InitWritebackCache
	}
	if eng != nil {
		opts.Hook = eng
	}
	stopControl, err := f.rules.startControl(eng, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer stopControl()
	if !f.noTap {
		// Nothing in serve lists the inode table; only --trace reads the
		// node counters' last paths (for events about forgotten nodeids).
		tap = trace.NewTap(trace.Options{Resolver: ov, Inodes: ov, NoNodeCounters: f.traceFile == ""})
		opts.Observer = tap
	}
	stopTrace, err := startTrace(tap, f.traceFile, cmd.OutOrStdout())
	if err != nil {
		return err
	}
	srv := fuse.NewServer(ov, opts)
	if f.idleRelease > 0 {
		// Both transports serve through srv, so one watcher sees them.
		idleCtx, stopIdle := context.WithCancel(context.Background())
		defer stopIdle()
		go idlefree.Run(idleCtx, srv.Activity(), idlefree.Options{Idle: f.idleRelease, Log: log})
	}
	if f.socket != "" {
		err = serveVhostUser(cmd, srv, f, log, rearm)
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
	// Signals are caught before the mount appears, so a SIGTERM sent as
	// soon as it does still unmounts.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	m, err := fusedev.New(srv, f.mount, fusedev.Options{Workers: f.workers, AllowOther: true})
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "krunbench: serving %s on %s (Ctrl-C to unmount)\n", f.sharedDir, f.mount)
	done := make(chan error, 1)
	go func() { done <- m.Wait() }()
	select {
	case <-sigs:
		return m.Close()
	case err = <-done:
		return err
	}
}

func serveVhostUser(cmd *cobra.Command, srv *fuse.Server, f serveFlags, log *slog.Logger, rearm func()) error {
	dev, err := virtiofs.NewDevice(srv, virtiofs.DeviceOptions{Tag: f.tag, Workers: f.workers, Log: log})
	if err != nil {
		return err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: f.socket, Net: "unix"})
	if err != nil {
		return err
	}
	ln.SetUnlinkOnClose(true)
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	backend := vhostuser.NewBackend(dev, vhostuser.Options{Log: log})
	defer backend.Close()
	fmt.Fprintf(cmd.ErrOrStderr(), "krunbench: serving %s as vhost-user-fs on %s, tag %s (Ctrl-C to stop)\n", f.sharedDir, f.socket, f.tag)
	err = serveFrontEnds(ln, backend, rearm, log)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// serveFrontEnds serves front-end connections one after another, like
// vhostuser.Backend.Serve, and re-arms the one-shot /init.krun for each:
// a new front-end is a new VM, which the host (not a guest) starts. A
// guest that resets the device or sends INIT again within its connection
// does not get the payload back. A connection arriving while another is
// served waits up to vhostuser.DefaultBusyWait for it to end, else it is
// refused. It returns when ln is closed.
func serveFrontEnds(ln *net.UnixListener, backend *vhostuser.Backend, rearm func(), log *slog.Logger) error {
	var current chan struct{} // closed when the connection being served ends
	for {
		uc, err := ln.AcceptUnix()
		if errors.Is(err, net.ErrClosed) {
			return nil
		} else if err != nil {
			return err
		}
		if current != nil {
			timer := time.NewTimer(vhostuser.DefaultBusyWait)
			select {
			case <-current:
			case <-timer.C:
			}
			timer.Stop()
			select {
			case <-current:
			default:
				log.Warn("vhost-user: refusing connection", "err", vhostuser.ErrBusy)
				uc.Close()
				continue
			}
		}
		rearm()
		done := make(chan struct{})
		current = done
		go func() {
			defer close(done)
			_ = backend.ServeConn(uc)
		}()
	}
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

// readdirplusFlag is --readdirplus: a fuse.ReaddirplusMode as a flag.
type readdirplusFlag struct{ mode *fuse.ReaddirplusMode }

func (f readdirplusFlag) String() string {
	if f.mode == nil {
		return fuse.ReaddirplusAlways.String()
	}
	return f.mode.String()
}

func (f readdirplusFlag) Set(s string) error {
	m, err := fuse.ParseReaddirplusMode(s)
	if err != nil {
		return err
	}
	*f.mode = m
	return nil
}

func (readdirplusFlag) Type() string { return strings.Join(fuse.ReaddirplusModes, "|") }
