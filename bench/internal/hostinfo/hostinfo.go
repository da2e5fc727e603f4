// Package hostinfo holds what the benchmark programs share: facts about
// the host they run on (load, CPU busy time, /proc fields, a process's
// CPU time, the kernel), the commit of the krunbench under test, and the
// median they report.
package hostinfo

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Median is the middle of v (the mean of the two middle values for an
// even count); 0 for none.
func Median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Pick is f of every item of xs, in order: the samples' values that
// Median and the spread are taken over.
func Pick[T any](xs []T, f func(T) float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// LoadAvg is /proc/loadavg's 1, 5 and 15 minute averages.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// CPUBusy is the percentage of non-idle CPU time over d, from /proc/stat.
func CPUBusy(d time.Duration) float64 {
	read := func() (idle, total uint64) {
		b, err := os.ReadFile("/proc/stat")
		if err != nil {
			return 0, 0
		}
		line, _, _ := strings.Cut(string(b), "\n")
		for i, f := range strings.Fields(line)[1:] {
			v, _ := strconv.ParseUint(f, 10, 64)
			total += v
			if i == 3 || i == 4 {
				idle += v
			}
		}
		return idle, total
	}
	i0, t0 := read()
	time.Sleep(d)
	i1, t1 := read()
	if t1 <= t0 {
		return 0
	}
	return 100 * (1 - float64(i1-i0)/float64(t1-t0))
}

// ProcField is the value of "key:" in a /proc file such as meminfo.
func ProcField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// ProcStat is the fields of /proc/PID/stat after the command name, the
// state first (so utime is [11], stime [12]); nil when pid is gone. The
// name may hold spaces and parentheses: the fields resume after its last
// ')'.
func ProcStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// ProcCPUSeconds is the user+system CPU time pid has used so far
// (utime + stime of /proc/PID/stat).
func ProcCPUSeconds(pid int) (float64, error) {
	f := ProcStat(pid)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: gone or malformed", pid)
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return float64(utime+stime) / clockTicks, nil
}

// Kernel is the running kernel's release and version (uname -rv).
func Kernel() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Version[:])
}

// Commit is the short commit of the git tree holding dir, with "-dirty"
// when a tracked file differs from it; "" where git cannot tell.
func Commit(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	commit := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		commit += "-dirty"
	}
	return commit
}

// FSType names the filesystem holding dir (ext4, xfs, btrfs, tmpfs,
// overlay), or gives its magic number in hex; "" where statfs fails.
func FSType(dir string) string {
	var sfs unix.Statfs_t
	if unix.Statfs(dir, &sfs) != nil {
		return ""
	}
	switch sfs.Type {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlay"
	}
	return fmt.Sprintf("0x%x", sfs.Type)
}
