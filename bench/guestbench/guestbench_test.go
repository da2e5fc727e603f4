package main

import (
	"bytes"
	"strconv"
	"testing"
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
