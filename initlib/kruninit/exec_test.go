package kruninit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"testing"
	"testing/fstest"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		ws   syscall.WaitStatus // the raw wait(2) status word
		want int
	}{
		{"exit 0", 0 << 8, 0},
		{"exit 3", 3 << 8, 3},
		{"exit 255", 255 << 8, 255},
		{"SIGKILL", syscall.WaitStatus(syscall.SIGKILL), 137},
		{"SIGTERM", syscall.WaitStatus(syscall.SIGTERM), 143},
		{"SIGSEGV with core", syscall.WaitStatus(syscall.SIGSEGV) | 0x80, 139},
		{"stopped is not final", 0x7f | syscall.WaitStatus(syscall.SIGSTOP)<<8, CodeInitFailure},
	}
	for _, tc := range tests {
		if got := ExitCode(tc.ws); got != tc.want {
			t.Errorf("%s: ExitCode(%#x) = %d, want %d", tc.name, uint32(tc.ws), got, tc.want)
		}
	}
}

func TestExecErrorCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{syscall.ENOENT, 127},
		{syscall.ENOTDIR, 127},
		{&fs.PathError{Op: "exec", Path: "x", Err: syscall.ENOENT}, 127},
		{fmt.Errorf("wrapped: %w", syscall.ENOTDIR), 127},
		{syscall.EACCES, 126},
		{syscall.ENOEXEC, 126},
		{syscall.ELOOP, 126},
		{syscall.E2BIG, 126},
		{errors.New("other"), 126},
	}
	for _, tc := range tests {
		if got := ExecErrorCode(tc.err); got != tc.want {
			t.Errorf("ExecErrorCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestLookPath(t *testing.T) {
	root := fstest.MapFS{
		"bin/sh":          {Mode: 0o755},
		"bin/noexec":      {Mode: 0o644},
		"bin/dir":         {Mode: fs.ModeDir | 0o755},
		"usr/bin/noexec":  {Mode: 0o755},
		"usr/bin/only":    {Mode: 0o700},
		"opt/bin/denied":  {Mode: 0o600},
		"work/bin/tool":   {Mode: 0o755},
		"local/bin/later": {Mode: 0o755},
	}
	stat := StatFS(root)
	tests := []struct {
		file, path, want string
		code             int // ExecErrorCode of the error, 0 for success
	}{
		{"sh", "/bin:/usr/bin", "/bin/sh", 0},
		{"only", "/bin:/usr/bin", "/usr/bin/only", 0},
		{"noexec", "/bin:/usr/bin", "/usr/bin/noexec", 0},
		{"later", "/nonexistent:/bin/sh:/local/bin", "/local/bin/later", 0},
		{"tool", "/bin::/usr/bin", "", 127},
		{"/abs/missing", "/bin", "/abs/missing", 0},
		{"./rel", "", "./rel", 0},
		{"missing", "/bin:/usr/bin", "", 127},
		{"denied", "/opt/bin", "", 126},
		{"noexec", "/bin", "", 126},
		{"dir", "/bin", "", 126},
		{"", "/bin", "", 127},
	}
	for _, tc := range tests {
		got, err := LookPath(tc.file, tc.path, stat)
		if tc.code == 0 {
			if err != nil || got != tc.want {
				t.Errorf("LookPath(%q, %q) = %q, %v; want %q", tc.file, tc.path, got, err, tc.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("LookPath(%q, %q) = %q, want an error", tc.file, tc.path, got)
			continue
		}
		if c := ExecErrorCode(err); c != tc.code {
			t.Errorf("LookPath(%q, %q): error %v maps to %d, want %d", tc.file, tc.path, err, c, tc.code)
		}
	}
}

// TestLookPathCurrentDir checks that an empty PATH entry means the current
// directory, as for execvp, against the real file system.
func TestLookPathCurrentDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/prog", []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	got, err := LookPath("prog", "/nonexistent:", os.Stat)
	if err != nil || got != "./prog" {
		t.Fatalf("LookPath = %q, %v; want ./prog", got, err)
	}
}
