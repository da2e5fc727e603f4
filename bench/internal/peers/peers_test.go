package peers

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestPassthroughHPBuilds builds passthrough_hp from ../shared/peers into a
// temporary cache and runs its --help: the build command, the cache key and
// the binary are real. Without g++ or libfuse3-dev it must say which is
// missing, wrapped in ErrMissing.
func TestPassthroughHPBuilds(t *testing.T) {
	cache := t.TempDir()
	p, err := PassthroughHP("../../"+SourceDir, cache)
	if errors.Is(err, ErrMissing) && !strings.Contains(err.Error(), "g++:") {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(p.Path, "--help").CombinedOutput()
	if !strings.Contains(string(out), "num-threads") {
		t.Fatalf("%s --help printed:\n%s", p.Path, out)
	}
	again, err := PassthroughHP("../../"+SourceDir, cache)
	if err != nil || again.Path != p.Path {
		t.Fatalf("second call: %v, %v; want the cached %s", again, err, p.Path)
	}
}

// TestPassthroughHPMissingSource reports a missing source directory as
// ErrMissing, so callers skip the peer's rows instead of failing.
func TestPassthroughHPMissingSource(t *testing.T) {
	_, err := PassthroughHP(t.TempDir(), t.TempDir())
	if !errors.Is(err, ErrMissing) {
		t.Fatalf("got %v, want ErrMissing", err)
	}
}
