package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// DecodeStrict reads a results file into v, refusing any field v does
// not declare: how the benchmarks' tests check that what a writer writes
// is what a reader declares.
func DecodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// ReadCommitted reads bench/results/name, as committed, from the test of
// a benchmark command (its working directory a sibling of results/), and
// decodes it into v with DecodeStrict; it returns the file's bytes, the
// want of SameAfterWrite. The error says which step failed.
func ReadCommitted(name string, v any) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join("..", "results", name))
	if err != nil {
		return nil, err
	}
	if err := DecodeStrict(b, v); err != nil {
		return nil, fmt.Errorf("a reader cannot read %s: %w", name, err)
	}
	return b, nil
}

// FirstDiff says where got first differs from want, with 80 bytes of
// each around it; "" when they are equal.
func FirstDiff(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	i := 0
	for i < min(len(got), len(want)) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("differs from byte %d: got %q, want %q", i,
		got[max(0, i-80):min(len(got), i+80)], want[max(0, i-80):min(len(want), i+80)])
}

// SameAfterWrite has write write a file into a temporary directory and
// says where it differs from want; nil when it holds the same bytes.
func SameAfterWrite(want []byte, write func(path string) error) error {
	dir, err := os.MkdirTemp("", "results-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "written.json")
	if err := write(path); err != nil {
		return err
	}
	got, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if d := FirstDiff(got, want); d != "" {
		return errors.New(d)
	}
	return nil
}
