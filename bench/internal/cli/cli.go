// Package cli holds what the benchmark commands share around their
// measurements: reading list and size flags, how a run ends (skipped,
// interrupted, failed) and writing the JSON results file.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// ErrSkip, wrapped, reports a missing tool or kernel that was not asked
// for by name: make bench goes on without that benchmark.
var ErrSkip = errors.New("skip")

// Main runs a benchmark command: parse reads the flags (an error exits
// 2), run measures with a context cancelled on SIGINT, SIGTERM or SIGHUP,
// and the process exits as ExitCode says.
func Main[C any](name string, parse func() (C, error), run func(context.Context, C) error) {
	cfg, err := parse()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	err = run(ctx, cfg)
	interrupted := ctx.Err() != nil
	cancel()
	if code := ExitCode(os.Stderr, name, err, interrupted); code != 0 {
		os.Exit(code)
	}
}

// ExitCode says how a run that returned err ends, and why on w: 0 when
// it succeeded or was skipped (ErrSkip), 130 when it was interrupted
// (nothing is written then), 1 on any other error.
func ExitCode(w io.Writer, name string, err error, interrupted bool) int {
	switch {
	case errors.Is(err, ErrSkip):
		fmt.Fprintf(w, "%s: skipped: %v\n", name, err)
	case interrupted:
		fmt.Fprintf(w, "%s: interrupted; nothing written\n", name)
		return 130
	case err != nil:
		fmt.Fprintf(w, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

// SplitList is a comma-separated flag's items, blanks trimmed, empty
// items left out.
func SplitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// ParseSize reads a size flag: a positive number of bytes with an
// optional K, M or G suffix (binary; "MiB", "MB" and "M" alike).
func ParseSize(s string) (int64, error) {
	mult := int64(1)
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// WriteJSON writes v, indented by two spaces and ending in a newline, to
// path (making its directory), through a temporary file renamed over it
// so that a reader never sees half a file.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// FindKernel is session.FindKernel's search without a path given, for
// the benchmarks that boot a guest: $KRUNBENCH_KERNEL (as given, checked
// by the caller), else the bzImage make kernel installs under
// $XDG_DATA_HOME/krunbench (~/.local/share by default); "" if none.
func FindKernel() string {
	if k := os.Getenv("KRUNBENCH_KERNEL"); k != "" {
		return k
	}
	data := os.Getenv("XDG_DATA_HOME")
	if data == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		data = filepath.Join(home, ".local", "share")
	}
	k := filepath.Join(data, "krunbench", "kernel", "bzImage")
	if _, err := os.Stat(k); err != nil {
		return ""
	}
	return k
}

// Save writes a run's results to path with WriteJSON and says so on
// stderr as name; nothing where path is "" (no file asked for).
func Save(name, path string, v any) error {
	if path == "" {
		return nil
	}
	if err := WriteJSON(path, v); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s: wrote %s\n", name, path)
	return nil
}

// Rotate is s started at its k-th item (k modulo its length), the rest
// after in order: a benchmark's mode order for its k-th repetition.
func Rotate(s []string, k int) []string {
	k %= len(s)
	return append(slices.Clone(s[k:]), s[:k]...)
}

// WorkDir makes a temporary directory for a run under dir, named after
// the benchmark; done removes it, or with keep leaves it and says where
// it is on stderr.
func WorkDir(name, dir string, keep bool) (path string, done func() error, err error) {
	path, err = os.MkdirTemp(dir, name+"-")
	if err != nil {
		return "", nil, err
	}
	if keep {
		fmt.Fprintf(os.Stderr, "%s: keeping %s\n", name, path)
		return path, func() error { return nil }, nil
	}
	return path, func() error { return os.RemoveAll(path) }, nil
}

// Human is a byte count for titles: "2 GiB", "256 MiB", else "N B".
func Human(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d B", n)
}
