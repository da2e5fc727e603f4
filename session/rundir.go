package session

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Runtime directories: each session keeps its sockets in a directory
// krunbench-run-PID-* under the temp dir, with an owner file naming the
// process that made it (PID and its start time, so a reused PID is not
// taken for the owner). A krunbench that is killed (SIGKILL) cannot remove
// its directory; the next session to start removes the directories of
// owners that are gone.
const (
	runDirPrefix = "krunbench-run-"
	ownerFile    = "owner"
)

// makeRunDir makes this process's runtime directory for one session.
func makeRunDir() (string, error) {
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", runDirPrefix, os.Getpid()))
	if err != nil {
		return "", fmt.Errorf("runtime directory: %w", err)
	}
	start, err := processStart(os.Getpid())
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, ownerFile), fmt.Appendf(nil, "%d %s\n", os.Getpid(), start), 0o600)
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("runtime directory: %w", err)
	}
	return dir, nil
}

// CleanStaleRunDirs removes the runtime directories under the temp dir
// whose owner process no longer runs, and returns the ones it removed.
// Directories without a readable owner file (another tool's, or being
// created right now) are left alone.
func CleanStaleRunDirs() []string {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), runDirPrefix+"*"))
	var removed []string
	for _, dir := range matches {
		if !ownerGone(dir) {
			continue
		}
		if os.RemoveAll(dir) == nil {
			removed = append(removed, dir)
		}
	}
	return removed
}

// ownerGone reads dir's owner file and reports whether that process is
// gone: no such PID, or a PID that now belongs to a process started at
// another time.
func ownerGone(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return false
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil || pid <= 0 {
		return false
	}
	start, err := processStart(pid)
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	return err == nil && start != fields[1]
}

// processStart is a process's start time in clock ticks since boot (field
// 22 of /proc/PID/stat), which with the PID names one process for good.
func processStart(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is field 3 (state); field 22 is fields[19].
	if len(fields) < 20 {
		return "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return fields[19], nil
}
