package variants

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/bench/internal/fsops"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fusedev"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// These benchmarks mount krunbench's server in-process through /dev/fuse,
// the way `krunbench serve` builds it, with one setting changed at a time,
// to explain rows of fusebench where krunbench trails go-fuse or the tap
// costs more than it should. They need root; run them with
//
//	cd bench && go test -run '^$' -bench . -benchtime 5x ./variants

const (
	treeDirs  = 10
	treeFiles = 1000
	creates   = 5000
)

// variant is one server configuration.
type variant struct {
	name        string
	readdirplus fuse.ReaddirplusMode
	tap         bool
}

var statVariants = []variant{
	{name: "auto", readdirplus: fuse.ReaddirplusAuto},
	{name: "auto+tap", readdirplus: fuse.ReaddirplusAuto, tap: true},
	{name: "always", readdirplus: fuse.ReaddirplusAlways},
	{name: "always+tap", readdirplus: fuse.ReaddirplusAlways, tap: true},
}

func needRoot(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to mount through /dev/fuse and drop caches")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		b.Skip("no /dev/fuse")
	}
}

// mount serves share on mnt with v's settings until the benchmark ends.
func mount(b *testing.B, v variant, share, mnt string) {
	pt, err := passthrough.New(share, passthrough.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ov := overlay.New(pt)
	opts := fuse.Options{Readdirplus: v.readdirplus}
	if v.tap {
		opts.Observer = trace.NewTap(trace.Options{Resolver: ov, Inodes: ov})
	}
	m, err := fusedev.New(fuse.NewServer(ov, opts), mnt, fusedev.Options{Workers: 8, AllowOther: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := m.Close(); err != nil {
			b.Error(err)
		}
		pt.Close()
	})
}

func dropCaches(b *testing.B) {
	unix.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
		b.Fatal(err)
	}
}

func makeTree(b *testing.B, root string) {
	for d := range treeDirs {
		dir := filepath.Join(root, fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for i := range treeFiles {
			fd, err := unix.Open(fmt.Sprintf("%s/f%05d", dir, i), unix.O_WRONLY|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
			if err != nil {
				b.Fatal(err)
			}
			unix.Close(fd)
		}
	}
}

// BenchmarkStatTree compares READDIRPLUS_AUTO (serve --readdirplus auto,
// what virtiofsd offers) with plain READDIRPLUS (krunbench's default):
// with AUTO the kernel uses READDIRPLUS only for a directory's first
// READDIR, so a find+stat walk sends one LOOKUP per file.
func BenchmarkStatTree(b *testing.B) {
	needRoot(b)
	share := b.TempDir()
	makeTree(b, share)
	for _, v := range statVariants {
		b.Run(v.name, func(b *testing.B) {
			mnt := b.TempDir()
			mount(b, v, share, mnt)
			for range b.N {
				b.StopTimer()
				dropCaches(b)
				b.StartTimer()
				n, err := fsops.WalkStat(mnt, nil)
				if err != nil {
					b.Fatal(err)
				}
				if n != treeDirs*treeFiles {
					b.Fatalf("walked %d files, want %d", n, treeDirs*treeFiles)
				}
			}
			b.ReportMetric(float64(b.N*treeDirs*treeFiles)/b.Elapsed().Seconds(), "files/s")
		})
	}
}

// BenchmarkCreateUnlink measures the tap on fusebench's create workload,
// which sends about six requests per file.
func BenchmarkCreateUnlink(b *testing.B) {
	needRoot(b)
	for _, v := range []variant{{name: "no-tap"}, {name: "tap", tap: true}} {
		b.Run(v.name, func(b *testing.B) {
			share, mnt := b.TempDir(), b.TempDir()
			mount(b, v, share, mnt)
			for range b.N {
				for i := range creates {
					p := fmt.Sprintf("%s/f%06d", mnt, i)
					fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
					if err != nil {
						b.Fatal(err)
					}
					unix.Close(fd)
					if err := unix.Unlink(p); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N*creates)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}
