package fusedev

import (
	"os"
	"slices"
	"strconv"
	"strings"
)

// Readahead. The kernel offers max_readahead at INIT as its block device
// default (128 KiB) and keeps the lesser of the reply's value and its
// mount's window, so a sequential read(2) through the mount, however
// large, reached the server as 128 KiB READs: four round trips per
// 512 KiB a READ could carry (max_pages). The mount's own backing device
// (/sys/class/bdi/MAJ:MIN, which lives and dies with the mount) exists
// once mount(2) returns, before the server has read INIT: New raises its
// window to the request size then, and the server answers INIT with
// max_readahead of that size (fuse.Server.LimitRequests), so the kernel
// keeps it. No request is needed for it (an earlier version sent a
// STATFS to wait for INIT, which a --break rule could hold forever).
// Measured on default settings, 256 MiB read in 1 MiB reads after
// drop_caches, 4 rounds alternating on one mount: 1.2-1.8 GB/s with
// 128 KiB, 2.3-2.4 GB/s with 512 KiB in three rounds of four (one
// 0.97 GB/s: the disk).

// raiseReadahead raises the readahead window of the krunbench mount on
// dir (absolute, symlinks resolved) to size bytes; it never lowers it.
// The mount's device number comes from /proc/self/mountinfo: a stat(2)
// of the mount before its server answers INIT would wait for that
// answer. Failures are ignored: the mount works with the default window.
func raiseReadahead(dir string, size int) {
	dev := mountDevice(dir)
	if dev == "" {
		return
	}
	path := "/sys/class/bdi/" + dev + "/read_ahead_kb"
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	cur, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || cur >= size>>10 {
		return
	}
	_ = os.WriteFile(path, []byte(strconv.Itoa(size>>10)), 0)
}

// mountDevice returns "MAJ:MIN" of the last fuse.krunbench mount on dir
// in /proc/self/mountinfo, or "" (mount points there escape space, tab,
// newline and backslash as octal).
func mountDevice(dir string) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	esc := strings.NewReplacer(`\`, `\134`, " ", `\040`, "\t", `\011`, "\n", `\012`).Replace(dir)
	dev := ""
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if sep < 6 || sep+1 >= len(f) || f[4] != esc || f[sep+1] != "fuse.krunbench" {
			continue
		}
		dev = f[2]
	}
	return dev
}

// The cold read's spread (issue 15, "read fresh": 38-48% on every
// server in bench/results/summary.md) is the machine's, not ours.
// fusebench, default settings, 512 MiB after drop_caches, a fresh server
// per sample, 4 rounds (session 8): our slow samples took 0.84 and
// 0.58 s of server CPU (766 and 974 MB/s) against 0.12 s in the fast
// ones (3093-3224 MB/s), go-fuse's slow one 0.52 s against 0.28-0.30 s;
// each slow sample was the first of its round. The same read through a
// fresh mount of each server, alternating (ab script: drop_caches, then
// read the file through the mount in 1 MiB reads), server CPU and MB/s
// medians over rounds:
//
//	                           krunbench       passthrough_hp  go-fuse
//	read at once (10 rounds)   0.11 s 3761     0.14 s 2649     0.27 s 1829
//	6 s idle first (4 rounds)  0.71 s  810     0.67 s  883     0.93 s  673
//
// Waiting 6 s after drop_caches lets the balloon's free page reporting
// (bench/fusebench/memory.go) hand the freed page cache back to the
// host, and every server then pays for faulting it in while it fills
// the host file's page cache: 6.5x, 4.8x and 3.4x the server CPU for
// the same 512 MiB. Within those rounds ours is 0.94x [0.85-1.49]
// passthrough_hp's CPU and 0.93x its MB/s (1.08x [0.96-1.51] the other
// way), within the noise. Nothing here raised our own cost: without
// the idle time our server spends the least CPU of the three.
//
// Request sizes against go-fuse (session 10, h-parread; 512 MiB cold
// read in 1 MiB reads, fresh mount per sample, drop_caches then the host
// file read once, 6 rounds alternating, perf stat on the server): ours
// gets 1,029 READs (512 KiB each: the raised window above) and go-fuse's
// loopback 4,102 (128 KiB: it answers INIT with the kernel's
// max_readahead); server CPU 84-123 ms against 241-293 ms (0.16-0.24
// against 0.47-0.57 ms per MiB), context switches 1.2-1.8k against
// 5.0-8.7k, MB/s 1.98x [1.85-2.10] go-fuse's. Read at once, our cold read
// meets issue 15's 1.2x; the row's misses are its balloon-reporting
// samples above, which every server pays.
