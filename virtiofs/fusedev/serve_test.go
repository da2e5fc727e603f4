package fusedev_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fusedev"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// serveEnv, set to the path of a serveConfig file, makes the test binary a
// FUSE server instead of running tests (see TestMain). The tests use the
// mount from their own process and serve it from this child: a process
// that is both the kernel's FUSE client and its server can wedge on its
// own requests (a runtime-internal syscall on a FUSE file waiting on
// server goroutines that cannot run), and a separate server process also
// lets cleanup abort or kill a stuck server instead of hanging.
const serveEnv = "KRUNBENCH_FUSEDEV_SERVE"

// serveConfig is what the parent asks the child to serve.
type serveConfig struct {
	Shared, Mnt, Trace string
	Payload, Config    []byte
	NoSplice           bool
	// NoFile, when not zero, is the server's RLIMIT_NOFILE soft limit,
	// set before the passthrough sizes its descriptor cache from it.
	NoFile uint64
	// EntryTimeout, when not zero, is how long the kernel caches entries
	// (passthrough.Options.EntryTimeout).
	EntryTimeout time.Duration
	// Writeback offers the kernel's writeback cache (serve --writeback).
	Writeback bool
}

// The child's control protocol, one line each way on stdin and stdout.
// The child prints readyLine once the mount is live, then answers each
// command; stdin's EOF tells it to unmount, flush the trace and exit.
const (
	readyLine  = "ready"
	cmdPayload = "payload"  // payload BASE64: overlay.SetPayload; answers "ok"
	cmdExit    = "exitcode" // answers "CODE SET" from overlay.ExitCode
	cmdSpliced = "spliced"  // answers Mount.SplicedWrites
)

// serveChild runs the server side of a test mount and returns the exit
// status for the child process.
func serveChild(configPath string) int {
	if err := serve(configPath, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fusedev test server:", err)
		return 1
	}
	return 0
}

func serve(configPath string, ctl *os.File, reply *os.File) error {
	b, err := os.ReadFile(configPath)
	if err != nil {
		return err
	}
	var cfg serveConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return err
	}
	if cfg.NoFile != 0 {
		var rl unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			return err
		}
		rl.Cur = cfg.NoFile
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			return err
		}
	}
	pt, err := passthrough.New(cfg.Shared, passthrough.Options{EntryTimeout: cfg.EntryTimeout})
	if err != nil {
		return err
	}
	ov := overlay.New(pt)
	ov.SetPayload(cfg.Payload)
	ov.SetConfig(cfg.Config)
	tap := trace.NewTap(trace.Options{Resolver: ov, Inodes: ov, EagerPaths: true})
	file, err := os.Create(cfg.Trace)
	if err != nil {
		return err
	}
	defer file.Close()
	rec := tap.Record(file, 0)
	defer rec.Close()
	opts := fuse.Options{Observer: tap}
	if cfg.Writeback {
		opts.Offer = fuse.Offered | fuse.InitWritebackCache
	}
	srv := fuse.NewServer(ov, opts)
	m, err := fusedev.New(srv, cfg.Mnt, fusedev.Options{AllowOther: true, NoSplice: cfg.NoSplice})
	if err != nil {
		return err
	}
	defer m.Close()
	if _, err := fmt.Fprintln(reply, readyLine); err != nil {
		return err
	}
	sc := bufio.NewScanner(ctl)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		var answer string
		switch cmd {
		case cmdPayload:
			p, err := base64.StdEncoding.DecodeString(arg)
			if err != nil {
				return err
			}
			ov.SetPayload(p)
			answer = "ok"
		case cmdExit:
			code, set := ov.ExitCode()
			answer = fmt.Sprint(code, set)
		case cmdSpliced:
			answer = fmt.Sprint(m.SplicedWrites())
		default:
			return fmt.Errorf("unknown command %q", cmd)
		}
		if _, err := fmt.Fprintln(reply, answer); err != nil {
			return err
		}
	}
	return sc.Err()
}
