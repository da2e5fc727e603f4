package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	schema "github.com/krunbench/krunbench/bench/internal/results"
)

// Request counting (-count-requests). The kernel's fuse tracepoints
// (fuse_request_send, fuse_request_end: Linux 6.15 and later) see every
// request any FUSE server gets, so one method counts every server's
// requests alike, ours and the peers'. fusebench enables them in a
// tracefs instance of its own, filtered to the sample's mount, for the
// timed part only, and records per sample the requests by opcode and the
// READ replies by size. Tracing costs every request the same few hundred
// nanoseconds; runs that count are for explaining rows, not for judging
// them.

const tracefs = "/sys/kernel/tracing"

// reqCounter is fusebench's tracefs instance.
type reqCounter struct {
	dir string
}

// newReqCounter makes the instance; the returned function removes it.
func newReqCounter() (*reqCounter, func() error, error) {
	if _, err := os.Stat(filepath.Join(tracefs, "events/fuse/fuse_request_send")); err != nil {
		return nil, nil, fmt.Errorf("-count-requests needs the kernel's fuse tracepoints (Linux 6.15+) in %s: %w", tracefs, err)
	}
	dir := filepath.Join(tracefs, "instances", fmt.Sprintf("fusebench-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, nil, err
	}
	rc := &reqCounter{dir: dir}
	remove := func() error {
		_ = rc.write("tracing_on", "0")
		_ = rc.write("events/fuse/enable", "0")
		return os.Remove(dir)
	}
	if err := rc.write("buffer_size_kb", "32768"); err != nil {
		remove()
		return nil, nil, err
	}
	return rc, remove, nil
}

func (rc *reqCounter) write(name, val string) error {
	return os.WriteFile(filepath.Join(rc.dir, name), []byte(val), 0)
}

// start clears the buffer and traces the requests of the mount at mnt.
func (rc *reqCounter) start(mnt string) error {
	var st unix.Stat_t
	if err := unix.Stat(mnt, &st); err != nil {
		return err
	}
	// The tracepoints' connection is the superblock's dev_t in the
	// kernel's own encoding (major << 20 | minor).
	filter := fmt.Sprintf("connection == %d", uint64(unix.Major(st.Dev))<<20|uint64(unix.Minor(st.Dev)))
	for _, ev := range []string{"fuse_request_send", "fuse_request_end"} {
		if err := rc.write("events/fuse/"+ev+"/filter", filter); err != nil {
			return err
		}
		if err := rc.write("events/fuse/"+ev+"/enable", "1"); err != nil {
			return err
		}
	}
	if err := rc.write("trace", ""); err != nil {
		return err
	}
	return rc.write("tracing_on", "1")
}

// stop ends tracing and counts what it recorded.
func (rc *reqCounter) stop() (*schema.Requests, error) {
	if err := rc.write("tracing_on", "0"); err != nil {
		return nil, err
	}
	if lost := rc.overruns(); lost > 0 {
		return nil, fmt.Errorf("request count: the trace buffer overran (%d events lost)", lost)
	}
	f, err := os.Open(filepath.Join(rc.dir, "trace"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return countRequests(bufio.NewScanner(f))
}

// overruns is the events the instance's buffer lost, over every CPU.
func (rc *reqCounter) overruns() int {
	paths, _ := filepath.Glob(filepath.Join(rc.dir, "per_cpu/cpu*/stats"))
	lost := 0
	for _, p := range paths {
		b, _ := os.ReadFile(p)
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "overrun: "); ok {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				lost += n
			}
		}
	}
	return lost
}

// countRequests reads trace lines such as
//
//	fuse_request_send: connection 52 req 8 opcode 15 (FUSE_READ) len 80
//	fuse_request_end: connection 52 req 8 len 524304 error 0
//
// counting requests by opcode name and the replies of sizedReplies by
// KiB of data (the reply's length less its 16-byte header).
func countRequests(sc *bufio.Scanner) (*schema.Requests, error) {
	out := &schema.Requests{ByOpcode: map[string]int{}}
	sized := map[string]string{} // unique -> opcode, for sizedReplies
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if _, ev, ok := strings.Cut(line, "fuse_request_send: "); ok {
			f := strings.Fields(ev)
			if len(f) < 7 || f[2] != "req" || f[4] != "opcode" {
				return nil, fmt.Errorf("request count: unexpected line %q", line)
			}
			name := strings.TrimPrefix(strings.Trim(f[6], "()"), "FUSE_")
			out.ByOpcode[name]++
			if slices.Contains(sizedReplies, name) {
				sized[f[3]] = name
			}
		} else if _, ev, ok := strings.Cut(line, "fuse_request_end: "); ok {
			f := strings.Fields(ev)
			if len(f) < 6 || f[2] != "req" || f[4] != "len" {
				return nil, fmt.Errorf("request count: unexpected line %q", line)
			}
			name, ok := sized[f[3]]
			if !ok {
				continue
			}
			n, err := strconv.Atoi(f[5])
			if err != nil {
				return nil, fmt.Errorf("request count: %q: %w", line, err)
			}
			if out.ReplyKiB == nil {
				out.ReplyKiB = map[string]map[int]int{}
			}
			if out.ReplyKiB[name] == nil {
				out.ReplyKiB[name] = map[int]int{}
			}
			out.ReplyKiB[name][max(n-16, 0)>>10]++
		}
	}
	return out, sc.Err()
}

// sizedReplies are the opcodes whose replies are counted by size.
var sizedReplies = []string{"READ", "READDIR", "READDIRPLUS"}
