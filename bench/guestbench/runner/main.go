// Command runner is guestbench's guest side: a static program that is the
// init (/init) of the benchmark initramfs. It reads /guestbench.json (put
// there by the host harness; bench/guestbench/runnerconfig), mounts the filesystem under test at /mnt,
// runs the workloads with the guest caches dropped before each, prints one
// line per event on the console and powers the guest off.
//
// Console protocol, one line each, fields space separated key=value:
//
//	GUESTBENCH mounted fs=virtiofs opts=""
//	GUESTBENCH features bits=0100...
//	GUESTBENCH begin name=stat
//	GUESTBENCH end name=stat seconds=12.345678 units=50000
//	GUESTBENCH end name=memory-large seconds=... units=19000 failed=81 errnos="EMFILE:81" first_error="..." after_error="..."
//	GUESTBENCH idle name=memory seconds=2.000000   (memory walks, with idle_after_memory_ms)
//	GUESTBENCH failed name=memory msg="..."   (that workload only; the rest go on)
//	GUESTBENCH error msg="..."
//	GUESTBENCH done
//
// begin is printed after the cache drop, right before the timed part, so
// the host can attribute its own CPU time to the workload. Around each
// workload the runner looks up /mnt/.guestbench-begin-W and
// /mnt/.guestbench-end-W (both missing): markers in the backend's own
// request record, so the host can count each workload's requests.
// features is the virtio-fs device's negotiated feature bits from sysfs.
// idle follows a memory walk's end line after the config's
// idle_after_memory_ms without any access to the mount: the host samples
// the backend's RSS there too (what an idle backend keeps).
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/krunbench/krunbench/bench/guestbench/runnerconfig"
	"github.com/krunbench/krunbench/bench/internal/fsops"
	"golang.org/x/sys/unix"
)

const mnt = "/mnt"

func main() {
	err := run()
	if err != nil {
		fmt.Printf("GUESTBENCH error msg=%q\n", err.Error())
	} else {
		fmt.Println("GUESTBENCH done")
	}
	unix.Sync()
	// The kernel runs with reboot=k and QEMU with -no-reboot: a restart
	// through the keyboard controller ends QEMU.
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	select {}
}

func run() error {
	for _, m := range []struct{ src, dst, fs string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
	} {
		_ = os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.fs, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	b, err := os.ReadFile("/" + runnerconfig.Name)
	if err != nil {
		return err
	}
	cfg, err := runnerconfig.Decode(b)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(cfg.Tag, mnt, cfg.FS, 0, cfg.MountOpts); err != nil {
		return fmt.Errorf("mount -t %s -o %q %s %s: %w", cfg.FS, cfg.MountOpts, cfg.Tag, mnt, err)
	}
	fmt.Printf("GUESTBENCH mounted fs=%s opts=%q\n", cfg.FS, cfg.MountOpts)
	fmt.Printf("GUESTBENCH features bits=%s\n", virtiofsFeatures())
	for _, name := range cfg.Workloads {
		if err := sample(cfg, name); err != nil {
			// A backend that cannot serve one workload (virtiofsd past
			// its RLIMIT_NOFILE on the memory tree) still gets the rest.
			fmt.Printf("GUESTBENCH failed name=%s msg=%q\n", name, err.Error())
		}
	}
	return unix.Unmount(mnt, 0)
}

// sample prepares, drops the caches, and times one workload.
func sample(cfg *runnerconfig.Config, name string) error {
	var body func() (float64, error)
	var after func() error
	var tally *fsops.WalkTally
	switch name {
	case "stat":
		body = func() (float64, error) {
			n, err := fsops.WalkStat(mnt+"/"+cfg.Tree, nil)
			if err == nil && n != cfg.TreeFiles {
				err = fmt.Errorf("found %d files, want %d", n, cfg.TreeFiles)
			}
			return float64(n), err
		}
	case "memory":
		body = func() (float64, error) {
			n, err := fsops.WalkStat(mnt+"/"+cfg.MemTree, nil)
			if err == nil && n != cfg.MemFiles {
				err = fmt.Errorf("found %d files, want %d", n, cfg.MemFiles)
			}
			return float64(n), err
		}
	case "memory-large":
		// Walked past errors: a backend that keeps a descriptor per
		// inode (virtiofsd) cannot look up more inodes than its
		// RLIMIT_NOFILE, and what it does then is the result.
		tally = &fsops.WalkTally{}
		body = func() (float64, error) {
			fsops.WalkTolerant(mnt+"/"+cfg.LargeTree, tally, nil)
			if tally.Failed == 0 && tally.Seen != cfg.LargeFiles {
				return 0, fmt.Errorf("found %d files, want %d", tally.Seen, cfg.LargeFiles)
			}
			return float64(tally.Seen), nil
		}
	case "read":
		body = func() (float64, error) {
			n, err := fsops.ReadFile(mnt+"/"+cfg.ReadFile, cfg.ChunkBytes, nil)
			if err == nil && n != cfg.ReadSize {
				err = fmt.Errorf("read %d bytes, want %d", n, cfg.ReadSize)
			}
			return float64(n), err
		}
	case "create":
		dir := mnt + "/" + cfg.CreateDir
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		body = func() (float64, error) { return float64(cfg.Creates), fsops.CreateUnlink(dir, cfg.Creates, nil) }
		after = func() error { return os.Remove(dir) }
	default:
		return errors.New("unknown workload")
	}
	unix.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
		return fmt.Errorf("drop_caches: %w", err)
	}
	fmt.Printf("GUESTBENCH begin name=%s\n", name)
	t0 := time.Now()
	mark("begin", name)
	units, err := body()
	mark("end", name)
	secs := time.Since(t0).Seconds()
	if err != nil {
		return err
	}
	extra := ""
	if tally != nil {
		extra = fmt.Sprintf(" failed=%d errnos=%q first_error=%q after_error=%q", tally.Failed, tally.ErrnoCounts(), tally.FirstError, stillServes(cfg))
	}
	fmt.Printf("GUESTBENCH end name=%s seconds=%.6f units=%.0f%s\n", name, secs, units, extra)
	if (name == "memory" || name == "memory-large") && cfg.IdleAfterMemoryMs > 0 {
		idle := time.Duration(cfg.IdleAfterMemoryMs) * time.Millisecond
		time.Sleep(idle)
		fmt.Printf("GUESTBENCH idle name=%s seconds=%.6f\n", name, idle.Seconds())
	}
	if after != nil {
		return after()
	}
	return nil
}

// stillServes lists the mount's root and reads the head of the read
// workload's file, neither touched by the memory walk, after it: "" if
// the backend still serves new lookups and opens, else the error.
func stillServes(cfg *runnerconfig.Config) string {
	if _, err := os.ReadDir(mnt); err != nil {
		return err.Error()
	}
	f, err := os.Open(mnt + "/" + cfg.ReadFile)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if _, err := f.Read(make([]byte, 4096)); err != nil {
		return fmt.Sprintf("read %s: %v", cfg.ReadFile, err)
	}
	return ""
}

// mark looks up a name that does not exist: one LOOKUP the backend
// records, and the host finds by name (see the package comment).
func mark(edge, workload string) {
	var st unix.Stat_t
	_ = unix.Lstat(mnt+"/.guestbench-"+edge+"-"+workload, &st)
}

// virtiofsFeatures is the feature string (one 0/1 per bit) of the first
// virtio device of type 26 (virtio-fs), or "" if there is none.
func virtiofsFeatures() string {
	devs, _ := filepath.Glob("/sys/bus/virtio/devices/*")
	for _, d := range devs {
		id, err := os.ReadFile(d + "/device")
		if err != nil || strings.TrimSpace(string(id)) != "0x001a" {
			continue
		}
		b, _ := os.ReadFile(d + "/features")
		return strings.TrimSpace(string(b))
	}
	return ""
}
