// Package peers finds or builds the third-party servers the benchmarks
// compare krunbench with: libfuse 3.14's passthrough_hp (C++, built from
// ../shared/peers against Debian's libfuse3-dev into a cache directory,
// never committed and never linked into the product), QEMU's C virtiofsd
// (Debian's qemu-system-common) and go-fuse v2.12.1's loopback
// (bench/loopback, built static). A peer that cannot be had is reported
// with the reason, so the caller can skip its rows loudly instead of
// failing the whole run.
package peers

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrMissing wraps every reason a peer is unavailable.
var ErrMissing = errors.New("peer unavailable")

// Peer is a runnable peer server.
type Peer struct {
	// Name is the peer's short name ("passthrough_hp", "virtiofsd",
	// "go-fuse").
	Name string `json:"name"`
	// Path is the executable.
	Path string `json:"path"`
	// Version says what was built or found.
	Version string `json:"version"`
}

// VirtiofsdPath is where Debian 12's qemu-system-common installs QEMU's C
// virtiofsd (7.2).
const VirtiofsdPath = "/usr/lib/qemu/virtiofsd"

// Virtiofsd returns QEMU's C virtiofsd, or ErrMissing.
func Virtiofsd() (*Peer, error) {
	st, err := os.Stat(VirtiofsdPath)
	if err != nil || st.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("%w: virtiofsd: %s not found (apt-get install qemu-system-common)", ErrMissing, VirtiofsdPath)
	}
	version := "qemu virtiofsd"
	if out, err := exec.Command(VirtiofsdPath, "--version").CombinedOutput(); err == nil {
		version = firstLine(string(out))
	}
	return &Peer{Name: "virtiofsd", Path: VirtiofsdPath, Version: version}, nil
}

// SourceDir is where the passthrough_hp sources are, relative to the
// bench module (the worktree sits next to ../shared).
const SourceDir = "../../shared/peers/libfuse-3.14.0-example"

// PassthroughHP returns libfuse's passthrough_hp, building it into
// cacheDir (default ~/.cache/krunbench/peers) when no build of the same
// sources and libfuse version is there. src is the directory holding
// passthrough_hp.cc and cxxopts.hpp. It needs g++, pkg-config and
// libfuse3-dev; without them it returns ErrMissing saying which.
func PassthroughHP(src, cacheDir string) (*Peer, error) {
	cc, err := os.ReadFile(filepath.Join(src, "passthrough_hp.cc"))
	if err != nil {
		return nil, fmt.Errorf("%w: passthrough_hp: %w", ErrMissing, err)
	}
	opts, err := os.ReadFile(filepath.Join(src, "cxxopts.hpp"))
	if err != nil {
		return nil, fmt.Errorf("%w: passthrough_hp: %w", ErrMissing, err)
	}
	for _, tool := range []string{"g++", "pkg-config"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%w: passthrough_hp: %s not found (apt-get install g++ pkg-config libfuse3-dev)", ErrMissing, tool)
		}
	}
	ver, err := exec.Command("pkg-config", "--modversion", "fuse3").Output()
	if err != nil {
		return nil, fmt.Errorf("%w: passthrough_hp: libfuse3-dev not found (apt-get install libfuse3-dev)", ErrMissing)
	}
	flags, err := exec.Command("pkg-config", "--cflags", "--libs", "fuse3").Output()
	if err != nil {
		return nil, fmt.Errorf("%w: passthrough_hp: pkg-config fuse3: %w", ErrMissing, err)
	}
	libfuse := strings.TrimSpace(string(ver))
	h := sha256.New()
	h.Write(cc)
	h.Write(opts)
	h.Write([]byte(libfuse))
	h.Write(flags)
	key := hex.EncodeToString(h.Sum(nil))[:16]
	if cacheDir == "" {
		home, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("%w: passthrough_hp: no cache directory: %w", ErrMissing, err)
		}
		cacheDir = filepath.Join(home, "krunbench", "peers")
	}
	dir := filepath.Join(cacheDir, "passthrough_hp-"+key)
	bin := filepath.Join(dir, "passthrough_hp")
	peer := &Peer{Name: "passthrough_hp", Path: bin, Version: "libfuse " + libfuse + " example/passthrough_hp.cc"}
	if _, err := os.Stat(bin); err == nil {
		return peer, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: passthrough_hp: %w", ErrMissing, err)
	}
	// Build into a temporary name and rename, so an interrupted build
	// never leaves a half-written binary that looks cached.
	tmp := bin + ".tmp"
	args := append([]string{"-O2", "-std=c++17", "-I" + src, filepath.Join(src, "passthrough_hp.cc"), "-o", tmp},
		strings.Fields(string(flags))...)
	args = append(args, "-lpthread")
	cmd := exec.Command("g++", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("%w: passthrough_hp: g++: %w\n%s", ErrMissing, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return nil, fmt.Errorf("%w: passthrough_hp: %w", ErrMissing, err)
	}
	return peer, nil
}

// GoFuseLoopback builds bench/loopback (go-fuse v2's fs.NewLoopbackRoot;
// FUSE passthrough stays off unless the server is started with
// -passthrough) as a static binary into dir. goCmd is the go command; it
// must run inside the bench module.
func GoFuseLoopback(goCmd, dir string) (*Peer, error) {
	out := filepath.Join(dir, "loopback")
	cmd := exec.Command(goCmd, "build", "-trimpath", "-o", out, "github.com/krunbench/krunbench/bench/loopback")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%w: go-fuse loopback (run from the bench module): %w\n%s", ErrMissing, err, b)
	}
	version := "go-fuse"
	if b, err := exec.Command(goCmd, "list", "-m", "-f", "{{.Path}} {{.Version}}", "github.com/hanwen/go-fuse/v2").Output(); err == nil {
		version = strings.TrimSpace(string(b))
	}
	return &Peer{Name: "go-fuse", Path: out, Version: version}, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
