package hostinfo

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestCommitOfThisTree: the tree these tests run in is a git checkout,
// so its commit is a short hash (dirty or not); a directory outside any
// git tree has none.
func TestCommitOfThisTree(t *testing.T) {
	if _, err := os.Stat("../../../.git"); err != nil {
		t.Skipf("SKIPPED: not a git checkout: %v", err)
	}
	if c := Commit("."); !regexp.MustCompile(`^[0-9a-f]{7,}(-dirty)?$`).MatchString(c) {
		t.Fatalf("Commit(.) = %q, want a short hash", c)
	}
	if c := Commit(t.TempDir()); c != "" {
		t.Fatalf("Commit(a temporary directory) = %q, want none", c)
	}
}

// TestKernelIsTheRunningOne: Kernel starts with the release the kernel
// reports in /proc.
func TestKernelIsTheRunningOne(t *testing.T) {
	release, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Skipf("SKIPPED: no /proc: %v", err)
	}
	if k := Kernel(); !strings.HasPrefix(k, strings.TrimSpace(string(release))+" ") {
		t.Fatalf("Kernel() = %q, want it to start with %q", k, release)
	}
}

// TestFSTypeNamesTheMount: FSType of a directory on a tmpfs mount (as
// /proc/mounts lists it) is "tmpfs"; of a path that is not there, "".
func TestFSTypeNamesTheMount(t *testing.T) {
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Skipf("SKIPPED: no /proc: %v", err)
	}
	tmpfs := ""
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "tmpfs" {
			tmpfs = f[1]
			break
		}
	}
	if tmpfs == "" {
		t.Skip("SKIPPED: no tmpfs mounted")
	}
	if got := FSType(tmpfs); got != "tmpfs" {
		t.Errorf("FSType(%s) = %q, want tmpfs", tmpfs, got)
	}
	if got := FSType(t.TempDir() + "/missing"); got != "" {
		t.Errorf("FSType(a missing path) = %q, want none", got)
	}
}

// TestPick: f of every item, in order.
func TestPick(t *testing.T) {
	got := Pick([]string{"a", "bbb", "cc"}, func(s string) float64 { return float64(len(s)) })
	if len(got) != 3 || got[0] != 1 || got[1] != 3 || got[2] != 2 || Median(got) != 2 {
		t.Fatalf("Pick = %v", got)
	}
}

// TestProcCPUSecondsOfAChild: a child whose command name holds spaces and
// parentheses (the name of the link it was run by) burns some CPU and
// waits; ProcStat finds it sleeping, and ProcCPUSeconds agrees with the
// CPU time the kernel reports for it once it is reaped (its rusage, less
// at most the two 10 ms ticks /proc truncates), after which it has none.
func TestProcCPUSecondsOfAChild(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skipf("SKIPPED: no sh: %v", err)
	}
	link := filepath.Join(t.TempDir(), "a) b (c")
	if err := os.Symlink(sh, link); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link, "-c", `i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo burnt; read -r line`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// The shell then waits in a read of its own, not in a child that
	// would outlive it (and hold whatever descriptors it inherited).
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "burnt\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	pid := cmd.Process.Pid
	if comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); err != nil || string(comm) != "a) b (c\n" {
		t.Fatalf("the child's command name is %q (%v), want the link's", comm, err)
	}
	// The shell waits in its read from here on (within moments; 30 s
	// bounds a state field that never reads S).
	for i := 0; ; i++ {
		f := ProcStat(pid)
		if len(f) > 0 && f[0] == "S" {
			break
		}
		if len(f) == 0 || i == 3000 {
			t.Fatalf("ProcStat(%d) = %q, want the fields of a sleeping process", pid, f)
		}
		syscall.Nanosleep(&syscall.Timespec{Nsec: 10e6}, nil)
	}
	got, err := ProcCPUSeconds(pid)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	want := float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
	if want < 0.02 || got < want-0.03 || got > want+0.01 {
		t.Fatalf("ProcCPUSeconds = %.3f s, the reaped child's rusage %.3f s (want at least 0.02 s; /proc truncates utime and stime to 10 ms ticks each, so up to 0.03 s less, never more)", got, want)
	}
	if c, err := ProcCPUSeconds(pid); err == nil {
		t.Fatalf("ProcCPUSeconds of a reaped child = %.3f, want an error", c)
	}
}
