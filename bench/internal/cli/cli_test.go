package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestExitCode: skipped 0, interrupted 130 (even with an error), failed
// 1, done 0, each with its line.
func TestExitCode(t *testing.T) {
	for _, c := range []struct {
		err         error
		interrupted bool
		code        int
		line        string
	}{
		{fmt.Errorf("%w: qemu not found", ErrSkip), false, 0, "b: skipped: skip: qemu not found\n"},
		{errors.New("boom"), true, 130, "b: interrupted; nothing written\n"},
		{errors.New("boom"), false, 1, "b: boom\n"},
		{nil, false, 0, ""},
	} {
		var w bytes.Buffer
		if code := ExitCode(&w, "b", c.err, c.interrupted); code != c.code || w.String() != c.line {
			t.Errorf("ExitCode(%v, %v) = %d %q, want %d %q", c.err, c.interrupted, code, w.String(), c.code, c.line)
		}
	}
}

// TestSplitListAndParseSize: lists drop blanks; sizes take binary
// suffixes and refuse zero, negatives and junk.
func TestSplitListAndParseSize(t *testing.T) {
	if got := SplitList(" a, ,b,"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("SplitList = %q", got)
	}
	for in, want := range map[string]int64{"4096": 4096, "64K": 64 << 10, "256M": 256 << 20, "1G": 1 << 30, "2MiB": 2 << 20, "3mb": 3 << 20} {
		if got, err := ParseSize(in); got != want || err != nil {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1M", "M", "1T", "x"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q): no error", in)
		}
	}
}

// TestWriteJSONIndentsAndReplaces: the file is the indented JSON and a
// newline, in a directory made for it, and no temporary file is left.
func TestWriteJSONIndentsAndReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "r.json")
	for _, v := range []map[string]int{{"a": 1}, {"b": 2}} {
		if err := WriteJSON(path, v); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "{\n  \"b\": 2\n}\n" {
		t.Fatalf("file = %q, %v", got, err)
	}
	if left, _ := filepath.Glob(path + ".tmp"); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	if err := WriteJSON(path, func() {}); err == nil {
		t.Fatal("WriteJSON(a func) = nil error")
	}
}

// TestFindKernel: $KRUNBENCH_KERNEL first, as given; else the installed
// bzImage under $XDG_DATA_HOME; else none.
func TestFindKernel(t *testing.T) {
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	t.Setenv("KRUNBENCH_KERNEL", "")
	if k := FindKernel(); k != "" {
		t.Fatalf("FindKernel with nothing installed = %q", k)
	}
	installed := filepath.Join(data, "krunbench", "kernel", "bzImage")
	if err := os.MkdirAll(filepath.Dir(installed), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(installed, []byte("kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	if k := FindKernel(); k != installed {
		t.Fatalf("FindKernel = %q, want %q", k, installed)
	}
	t.Setenv("KRUNBENCH_KERNEL", "/given/bzImage")
	if k := FindKernel(); k != "/given/bzImage" {
		t.Fatalf("FindKernel with KRUNBENCH_KERNEL = %q", k)
	}
}

// TestHuman: whole GiB and MiB by name, anything else in bytes.
func TestHuman(t *testing.T) {
	for n, want := range map[int64]string{1 << 30: "1 GiB", 3 << 29: "1536 MiB", 256 << 20: "256 MiB", 1<<20 + 1: "1048577 B", 0: "0 B"} {
		if got := Human(n); got != want {
			t.Errorf("Human(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestRotateAndSave: rotation keeps every item in order from k; Save
// writes nothing for no path and the file for one.
func TestRotateAndSave(t *testing.T) {
	if got := Rotate([]string{"a", "b", "c"}, 4); !slices.Equal(got, []string{"b", "c", "a"}) {
		t.Errorf("Rotate(abc, 4) = %q", got)
	}
	if err := Save("b", "", map[string]int{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := Save("b", path, map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "{\n  \"a\": 1\n}\n" {
		t.Fatalf("saved %q", got)
	}
}

// TestWorkDir: the directory is made under dir with the name's prefix;
// done removes it, or leaves it with keep.
func TestWorkDir(t *testing.T) {
	for _, keep := range []bool{false, true} {
		path, done, err := WorkDir("b", t.TempDir(), keep)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(filepath.Base(path), "b-") {
			t.Errorf("WorkDir made %s", path)
		}
		if err := done(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); (err == nil) != keep {
			t.Errorf("keep %v: after done, stat %s: %v", keep, path, err)
		}
	}
}
