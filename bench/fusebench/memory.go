package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Free page reporting. On a VM whose virtio-balloon reports free pages
// (VIRTIO_BALLOON_F_REPORTING), the hypervisor takes back memory a few
// seconds after the guest frees it, and whoever allocates it next pays
// for the hypervisor faulting it in again. Every sample starts with a
// cache drop that frees gigabytes, so whether a sample paid depended on
// timing: measured with cat of a 1 GiB file after the drop, 0.40 s when
// started at once and 1.8-2.2 s when started 5 s later; every FUSE mode's
// 1 GiB samples were bimodal (0.7 s or 1.5 s, the client's CPU time up to
// 10x). With the balloon driver unbound, the same read took 0.41 s even
// 5 s after the drop. So for the run fusebench unbinds the balloon driver
// from such devices (binding it again on the way out, error and Ctrl-C
// included), then touches enough memory once that the run's page caches
// come from memory the hypervisor has already backed.

const balloonDriver = "/sys/bus/virtio/drivers/virtio_balloon"

// featureReporting is VIRTIO_BALLOON_F_REPORTING's bit.
const featureReporting = 5

// quietMemory stops free page reporting for the run, unless
// cfg.keepBalloon, and prefaults the run's working set; it returns the
// devices it unbound.
func quietMemory(cfg *config, cl *cleanups) ([]string, error) {
	if cfg.keepBalloon {
		return nil, nil
	}
	devs, _ := filepath.Glob(filepath.Join(balloonDriver, "virtio*"))
	var unbound []string
	for _, dev := range devs {
		name := filepath.Base(dev)
		feats, err := os.ReadFile(filepath.Join(dev, "features"))
		if err != nil || len(feats) <= featureReporting || feats[featureReporting] != '1' {
			continue
		}
		if err := os.WriteFile(filepath.Join(balloonDriver, "unbind"), []byte(name), 0); err != nil {
			return unbound, fmt.Errorf("unbind %s from virtio_balloon (or pass -keep-balloon): %w", name, err)
		}
		cl.push("bind "+name+" to virtio_balloon", func() error {
			return os.WriteFile(filepath.Join(balloonDriver, "bind"), []byte(name), 0)
		})
		fmt.Fprintf(os.Stderr, "fusebench: %s reports free pages to the hypervisor; its balloon driver is unbound for the run\n", name)
		unbound = append(unbound, name)
	}
	if len(unbound) == 0 {
		return nil, nil
	}
	// Roughly what the run keeps in page caches at once: the read and
	// write files on the host and in a FUSE mount, plus slack.
	need := min(4*cfg.size+(1<<30), availableMemory()/2)
	if need <= 0 {
		return unbound, nil
	}
	b, err := unix.Mmap(-1, 0, int(need), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return unbound, fmt.Errorf("prefault %d MiB: %w", need>>20, err)
	}
	return unbound, unix.Munmap(b)
}

// availableMemory is MemAvailable in bytes, 0 if unknown.
func availableMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		var kb int64
		if n, _ := fmt.Sscanf(line, "MemAvailable: %d kB", &kb); n == 1 {
			return kb << 10
		}
	}
	return 0
}

// Pipe sizes. Both servers splice through pipes and ask for pipes of
// 2 MiB (a 1 MiB READ reply or WRITE request takes 256 pages plus its
// headers); root gets that through CAP_SYS_RESOURCE, but where root lacks
// it (this sandbox drops it) a pipe stops at fs.pipe-max-size, 1 MiB by
// default, and 1 MiB requests are then copied instead. For the run
// fusebench raises the limit to what root normally has room for, and
// puts it back on the way out; -keep-pipe-max leaves it.

const pipeMaxPath = "/proc/sys/fs/pipe-max-size"

// wantPipeMax is the limit fusebench sets when the current one is lower.
const wantPipeMax = 4 << 20

// raisePipeMax raises fs.pipe-max-size for the run and returns the value
// it found (0 when it left it alone).
func raisePipeMax(cfg *config, cl *cleanups) (int, error) {
	if cfg.keepPipeMax {
		return 0, nil
	}
	b, err := os.ReadFile(pipeMaxPath)
	if err != nil {
		return 0, nil
	}
	var was int
	if _, err := fmt.Sscan(string(b), &was); err != nil || was >= wantPipeMax {
		return 0, nil
	}
	if err := os.WriteFile(pipeMaxPath, []byte(fmt.Sprint(wantPipeMax)), 0); err != nil {
		return 0, fmt.Errorf("raise %s (or pass -keep-pipe-max): %w", pipeMaxPath, err)
	}
	cl.push("restore "+pipeMaxPath, func() error { return os.WriteFile(pipeMaxPath, []byte(fmt.Sprint(was)), 0) })
	fmt.Fprintf(os.Stderr, "fusebench: fs.pipe-max-size raised from %d to %d for the run\n", was, wantPipeMax)
	return was, nil
}
