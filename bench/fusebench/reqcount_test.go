package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Lines as the kernel's fuse tracepoints print them: the READ replies
// are counted by their data size, other opcodes only by name.
func TestCountRequestsReadsTraceLines(t *testing.T) {
	trace := `# tracer: nop
            cat-1200    [001] .....   10.000001: fuse_request_send: connection 52 req 4 opcode 1 (FUSE_LOOKUP) len 53
    loopback-1100    [000] .....   10.000002: fuse_request_end: connection 52 req 4 len 144 error 0
            cat-1200    [001] .....   10.000003: fuse_request_send: connection 52 req 6 opcode 15 (FUSE_READ) len 80
            cat-1200    [001] .....   10.000004: fuse_request_send: connection 52 req 8 opcode 15 (FUSE_READ) len 80
    loopback-1100    [000] .....   10.000005: fuse_request_end: connection 52 req 6 len 524304 error 0
    loopback-1100    [000] .....   10.000006: fuse_request_end: connection 52 req 8 len 16400 error 0
            cat-1200    [001] .....   10.000007: fuse_request_send: connection 52 req 10 opcode 44 (FUSE_READDIRPLUS) len 80
    loopback-1100    [000] .....   10.000008: fuse_request_end: connection 52 req 10 len 4096 error 0
`
	got, err := countRequests(bufio.NewScanner(strings.NewReader(trace)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.ByOpcode) != 3 || got.ByOpcode["LOOKUP"] != 1 || got.ByOpcode["READ"] != 2 || got.ByOpcode["READDIRPLUS"] != 1 {
		t.Errorf("by opcode %v, want LOOKUP 1, READ 2, READDIRPLUS 1", got.ByOpcode)
	}
	if r := got.ReplyKiB["READ"]; len(r) != 2 || r[512] != 1 || r[16] != 1 {
		t.Errorf("READ replies %v, want one of 512 KiB and one of 16 KiB", r)
	}
	if r := got.ReplyKiB["READDIRPLUS"]; len(r) != 1 || r[3] != 1 || len(got.ReplyKiB) != 2 {
		t.Errorf("replies %v, want READ's and one READDIRPLUS of 4080 bytes (3 KiB), not LOOKUP's", got.ReplyKiB)
	}
}

// The counter on a real mount (go-fuse's loopback, in this process):
// it sees the mount's requests, sized, and none of another mount's.
func TestRequestCounterCountsOneMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: needs root (mount, tracefs)")
	}
	rc, remove, err := newReqCounter()
	if err != nil {
		t.Skip("SKIP: ", err)
	}
	defer remove()
	share := t.TempDir()
	data := make([]byte, 300<<10)
	if err := os.WriteFile(filepath.Join(share, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	mount := func() string {
		mnt := t.TempDir()
		root, err := fs.NewLoopbackRoot(share)
		if err != nil {
			t.Fatal(err)
		}
		// Passthrough off (go-fuse turns it on for root), or the
		// kernel reads the file itself and no READ reaches the server.
		opts := &fs.Options{MountOptions: fuse.MountOptions{DirectMountStrict: true, MaxWrite: 128 << 10}}
		opts.DisabledCapabilities |= fuse.CAP_PASSTHROUGH
		srv, err := fs.Mount(mnt, root, opts)
		if err != nil {
			t.Skip("SKIP: mount: ", err)
		}
		t.Cleanup(func() { srv.Unmount() })
		return mnt
	}
	counted, other := mount(), mount()
	if err := rc.start(counted); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(other, "f")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(counted, "f"))
	if err != nil || len(b) != len(data) {
		t.Fatalf("read %d bytes, %v", len(b), err)
	}
	time.Sleep(10 * time.Millisecond) // replies to readahead READs end after read(2) returns
	got, err := rc.stop()
	if err != nil {
		t.Fatal(err)
	}
	if got.ByOpcode["LOOKUP"] != 1 || got.ByOpcode["OPEN"] != 1 || got.ByOpcode["READ"] < 3 {
		t.Errorf("by opcode %v: want the counted mount's LOOKUP and OPEN once, READs of at most 128 KiB for 300 KiB, and nothing of the other mount", got.ByOpcode)
	}
	kib := 0
	for size, n := range got.ReplyKiB["READ"] {
		kib += size * n
	}
	if kib != 300 {
		t.Errorf("READ replies %v: %d KiB in all, want 300", got.ReplyKiB["READ"], kib)
	}
}
