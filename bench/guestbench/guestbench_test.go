package main

import (
	"bufio"
	"bytes"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/krunbench/krunbench/bench/guestbench/runnerconfig"
)

func TestCpioEntry(t *testing.T) {
	var buf bytes.Buffer
	c := &cpioWriter{w: &buf}
	c.file("init", 0o755, []byte("abcde"))
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if string(b[:6]) != "070701" {
		t.Fatalf("magic %q", b[:6])
	}
	field := func(off, i int) uint64 {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if mode := field(0, 1); mode != cpioReg|0o755 {
		t.Errorf("mode %o", mode)
	}
	if size, nameLen := field(0, 6), field(0, 11); size != 5 || nameLen != 5 {
		t.Errorf("size %d namesize %d", size, nameLen)
	}
	// 110-byte header + "init\0" = 115, padded to 116; 5 data bytes padded to 8.
	if got := string(b[116:121]); got != "abcde" {
		t.Errorf("data %q", got)
	}
	next := 124
	if string(b[next:next+6]) != "070701" || !bytes.Contains(b[next:], []byte("TRAILER!!!\x00")) {
		t.Errorf("trailer not where expected: %q", b[next:])
	}
	if len(b)%4 != 0 {
		t.Errorf("archive length %d not 4-aligned", len(b))
	}
}

func TestParseLine(t *testing.T) {
	verb, kv := parseLine(`end name=stat seconds=1.5 units=50000`)
	if verb != "end" || kv["name"] != "stat" || kv["seconds"] != "1.5" || kv["units"] != "50000" {
		t.Errorf("got %q %v", verb, kv)
	}
	verb, kv = parseLine(`error msg="mount: no such \"device\"" x=1`)
	if verb != "error" || kv["msg"] != `mount: no such "device"` || kv["x"] != "1" {
		t.Errorf("got %q %v", verb, kv)
	}
}

// The two records cutRecord reads, in the formats the backends write
// them (krunbench's --trace JSON lines; lines of virtiofsd 7.2's -d log).
func TestCutRecordCountsBetweenMarkers(t *testing.T) {
	trace := strings.Join([]string{
		`{"seq":1,"t":1,"op":26,"opname":"INIT"}`,
		`{"seq":2,"t":2,"op":1,"opname":"LOOKUP","nodeid":1,"name":".guestbench-begin-stat","errno":2}`,
		`{"seq":3,"t":3,"op":27,"opname":"OPENDIR","nodeid":1}`,
		`{"seq":4,"t":4,"op":44,"opname":"READDIRPLUS","nodeid":1}`,
		`{"seq":5,"t":5,"op":1,"opname":"LOOKUP","nodeid":1,"name":"tree"}`,
		`{"seq":9,"t":5,"op":2,"opname":"FORGET","nodeid":7}`,
		`{"seq":6,"t":6,"op":1,"opname":"LOOKUP","nodeid":1,"name":".guestbench-end-stat","errno":2}`,
		`{"seq":7,"t":7,"op":1,"opname":"LOOKUP","nodeid":1,"name":".guestbench-begin-read","errno":2}`,
		`{"seq":8,"t":8,"op":1,"opname":"LOOKUP","nodeid":1,"name":".guestbench-end-read","errno":2}`,
	}, "\n")
	got, err := cutRecord(bufio.NewScanner(strings.NewReader(trace)), true, []string{"stat", "read"})
	if err != nil {
		t.Fatal(err)
	}
	if got["stat"].total() != 3 || got["stat"]["READDIRPLUS"] != 1 || got["stat"]["LOOKUP"] != 1 || got["read"].total() != 0 {
		t.Errorf("krunbench trace: got %v, want stat 3 (OPENDIR, READDIRPLUS, LOOKUP), read 0", got)
	}

	log := strings.Join([]string{
		"[ID: 00000002] unique: 2, opcode: INIT (26), nodeid: 0, insize: 104, pid: 0",
		"[ID: 00000003] unique: 4, opcode: LOOKUP (1), nodeid: 1, insize: 63, pid: 1",
		"[ID: 00000003] lo_lookup(parent=1, name=.guestbench-begin-create)",
		"[ID: 00000003]    unique: 4, error: -2 (No such file or directory), outsize: 16",
		"[ID: 00000003] unique: 6, opcode: CREATE (35), nodeid: 5, insize: 70, pid: 1",
		"[ID: 00000004] unique: 8, opcode: RELEASE (18), nodeid: 6, insize: 64, pid: 0",
		"[ID: 00000005] unique: 0, opcode: FORGET (2), nodeid: 9, insize: 48, pid: 0",
		"[ID: 00000003] unique: 10, opcode: UNLINK (10), nodeid: 5, insize: 48, pid: 1",
		"[ID: 00000003] unique: 12, opcode: LOOKUP (1), nodeid: 1, insize: 61, pid: 1",
		"[ID: 00000003] lo_lookup(parent=1, name=.guestbench-end-create)",
	}, "\n")
	got, err = cutRecord(bufio.NewScanner(strings.NewReader(log)), false, []string{"create"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (opCounts{"CREATE": 1, "RELEASE": 1, "UNLINK": 1}); !maps.Equal(got["create"], want) {
		t.Errorf("virtiofsd log: got %v, want create %v", got, want)
	}

	if _, err := cutRecord(bufio.NewScanner(strings.NewReader(log)), false, []string{"stat"}); err == nil {
		t.Error("a workload without markers was counted")
	}
}

func TestCheckFeaturesWantsAccessPlatformWithBounce(t *testing.T) {
	without := strings.Repeat("0", 64)
	with := without[:virtioFAccessPlatform] + "1" + without[virtioFAccessPlatform+1:]
	bounce, plain := &config{dmaBounce: true}, &config{}
	if err := checkFeatures(bounce, with); err != nil {
		t.Errorf("negotiated: %v", err)
	}
	if err := checkFeatures(bounce, without); err == nil {
		t.Error("not negotiated, yet accepted with -dma-bounce")
	}
	if err := checkFeatures(plain, without); err != nil {
		t.Errorf("without -dma-bounce: %v", err)
	}
	if err := checkFeatures(plain, ""); err == nil {
		t.Error("no features reported, yet accepted")
	}
}

// TestHostSetsEveryField: the config the host writes for a boot sets
// every field of the runner's config except those runnerconfig.Optional
// lets it leave at zero, and reads back unchanged as the runner reads it.
// A field added to runnerconfig.Config that the host does not fill (as
// chunk_bytes once was, in a host-side copy without it) fails here.
func TestHostSetsEveryField(t *testing.T) {
	cfg := &config{size: 1 << 20, dirs: 2, filesPerDir: 3, creates: 4, memoryFiles: 5, largeFiles: 6}
	gc := guestConfig(cfg, []string{"stat", "read"})
	v := reflect.ValueOf(gc).Elem()
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		if _, ok := runnerconfig.Optional[name]; !ok && v.Field(i).IsZero() {
			t.Errorf("the host leaves runnerconfig.Config.%s unset (set it in guestConfig, or say in runnerconfig.Optional what zero means)", name)
		}
	}
	b, err := runnerconfig.Encode(gc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := runnerconfig.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if gc.ChunkBytes == 0 {
		gc.ChunkBytes = runnerconfig.DefaultChunkBytes
	}
	if !reflect.DeepEqual(got, gc) {
		t.Fatalf("the runner reads %+v, the host wrote %+v", got, gc)
	}
}
