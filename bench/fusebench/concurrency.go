package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/bench/internal/cli"
	"github.com/krunbench/krunbench/bench/internal/fsops"
	schema "github.com/krunbench/krunbench/bench/internal/results"
)

// Concurrency rows (issue 15, item 2): several clients at once through one
// mount, and a mixed case where a small stat-only client runs beside a big
// sequential writer. Each sample runs on a server started for it (default
// settings' cold rows), after drop_caches.
//
//   - par-randread: fio, one job per client, 4 KiB random reads (psync,
//     readahead off by fadvise RANDOM) over a file of its own; the files
//     are read once on the host after the cache drop, so only the FUSE
//     side is cold and the row measures the servers, not the disk.
//   - par-stat: every client walks a tree of its own like find and lstats
//     every entry.
//   - par-create: every client creates, closes and unlinks files in a
//     directory of its own.
//   - mixed: the small client first runs alone (idle latencies), then
//     beside one writer of -mixed-size (1 MiB writes, fsync); the row's
//     value is the writer's MB/s, and every sample keeps the small
//     client's p50/p99 idle and under the writer. The small client
//     lstats names that do not exist, each once, so every call is a
//     LOOKUP that reaches the server whatever its entry timeouts (a name
//     seen before would be answered from the kernel's dentry cache,
//     86400 s for passthrough_hp, 1 s for the others).

// Names of the concurrency rows.
const (
	rowParRead   = "par-randread"
	rowParStat   = "par-stat"
	rowParCreate = "par-create"
	rowMixed     = "mixed"
	parDir       = "par"
	mixedName    = "mixed.dat"
	probeDir     = "probe"
)

// targetP99UnderWriter is issue 15's bound on the small client's p99
// under the writer, as a multiple of its idle p99.
const targetP99UnderWriter = 2.0

// latency is a sample's latencies (bench/internal/results).
type latency = schema.Latency

// outcome is what a detailed run reports: its units, its own time when
// the wall clock around it would include a helper's start-up (fio), and
// latencies.
type outcome struct {
	Units   float64
	Seconds float64
	Latency *latency
}

// concWorkloads are the concurrency rows for cfg; par-randread is left
// out, loudly, without fio.
func concWorkloads(cfg *config) []*workload {
	n := cfg.clients
	treeFiles := n * cfg.concFiles
	wls := []*workload{}
	if fio, err := exec.LookPath("fio"); err != nil {
		fmt.Fprintf(os.Stderr, "fusebench: SKIPPED row %s: fio not found (apt-get install fio)\n", rowParRead)
	} else {
		wls = append(wls, &workload{
			Name: rowParRead, Title: fmt.Sprintf("%d x fio 4K randread", n), Unit: "IOPS", concurrent: true,
			Desc: fmt.Sprintf("fio, %d jobs at once, each %d random 4 KiB psync reads (fadvise RANDOM: no readahead) of a %s file of its own; the files are read on the host after drop_caches so only the FUSE side is cold; IOPS = all jobs' I/Os over the longest job's runtime", n, cfg.concReads, cli.Human(cfg.concFileSize)),
			warm: func(share string) error {
				for i := range n {
					if _, err := fsops.ReadFile(parFile(share, i), chunk, nil); err != nil {
						return err
					}
				}
				return nil
			},
			detail: func(dir string, stop <-chan struct{}) (outcome, error) { return runFio(fio, cfg, dir) },
		})
	}
	wls = append(wls,
		&workload{
			Name: rowParStat, Title: fmt.Sprintf("%d x find+stat %d files", n, cfg.concFiles), Unit: "files/s", concurrent: true,
			Desc: fmt.Sprintf("%d clients at once, each walking a tree of its own (%d files) like find and lstat-ing every entry, after drop_caches; files/s counts every client's regular files", n, cfg.concFiles),
			run: func(dir string, stop <-chan struct{}) (float64, error) {
				found, err := parallel(n, func(i int) (int, error) { return fsops.WalkStat(parTree(dir, i), stop) })
				if err == nil && found != treeFiles {
					err = fmt.Errorf("found %d files, want %d", found, treeFiles)
				}
				return float64(found), err
			},
		},
		&workload{
			Name: rowParCreate, Title: fmt.Sprintf("%d x create+unlink %d", n, cfg.concCreates), Unit: "ops/s", concurrent: true,
			Desc: fmt.Sprintf("%d clients at once, each creating, closing and unlinking %d files in a fresh directory of its own on the share's filesystem; ops/s counts every client's triples", n, cfg.concCreates),
			prepare: func(dir, _ string) error {
				for i := range n {
					d := parCreateDir(dir, i)
					if err := os.RemoveAll(d); err != nil {
						return err
					}
					if err := os.MkdirAll(d, 0o755); err != nil {
						return err
					}
				}
				return nil
			},
			run: func(dir string, stop <-chan struct{}) (float64, error) {
				_, err := parallel(n, func(i int) (int, error) {
					return cfg.concCreates, fsops.CreateUnlink(parCreateDir(dir, i), cfg.concCreates, stop)
				})
				return float64(n * cfg.concCreates), err
			},
			after: func(dir, _ string) error { return os.RemoveAll(filepath.Join(dir, parDir, "create")) },
		},
		&workload{
			Name: rowMixed, Title: fmt.Sprintf("%s writer + stat client", cli.Human(cfg.mixedSize)), Unit: "MB/s", concurrent: true,
			Desc: fmt.Sprintf("one writer of %s (1 MiB writes, fsync) while a stat-only client lstats names that do not exist, each once (every call a LOOKUP reaching the server); the client first runs alone for %d calls (idle latencies); MB/s is the writer's; latency holds the client's p50/p99 idle and under the writer", cli.Human(cfg.mixedSize), cfg.mixedProbes),
			prepare: func(dir, _ string) error {
				if err := removeIfExists(filepath.Join(dir, mixedName)); err != nil {
					return err
				}
				return os.MkdirAll(filepath.Join(dir, probeDir), 0o755)
			},
			detail: func(dir string, stop <-chan struct{}) (outcome, error) { return runMixed(cfg, dir, stop) },
			after:  func(dir, _ string) error { return removeIfExists(filepath.Join(dir, mixedName)) },
		},
	)
	return wls
}

func parFile(dir string, i int) string {
	return filepath.Join(dir, parDir, "read", fmt.Sprintf("f%d", i))
}
func parTree(dir string, i int) string {
	return filepath.Join(dir, parDir, "tree", fmt.Sprintf("t%d", i))
}
func parCreateDir(dir string, i int) string {
	return filepath.Join(dir, parDir, "create", fmt.Sprintf("c%d", i))
}

// parallel runs f for clients 0..n-1 at once and sums what they return;
// the first error wins.
func parallel(n int, f func(i int) (int, error)) (int, error) {
	var total atomic.Int64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, err := f(i)
			total.Add(int64(k))
			errs[i] = err
		})
	}
	wg.Wait()
	return int(total.Load()), errors.Join(errs...)
}

// prepareConcurrency makes what the concurrency rows read: a file and a
// tree per client, and the probe directory.
func prepareConcurrency(cfg *config, share string) error {
	start := time.Now()
	for i := range cfg.clients {
		if err := os.MkdirAll(filepath.Dir(parFile(share, i)), 0o755); err != nil {
			return err
		}
		if err := writeFile(parFile(share, i), cfg.concFileSize, nil); err != nil {
			return err
		}
		if err := makeTree(parTree(share, i), cfg.concFiles); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(share, probeDir), 0o755); err != nil {
		return err
	}
	unix.Sync()
	fmt.Fprintf(os.Stderr, "fusebench: made %d client files of %s and trees of %d files (%v)\n",
		cfg.clients, cli.Human(cfg.concFileSize), cfg.concFiles, time.Since(start).Round(time.Millisecond))
	return nil
}

// makeTree makes n empty files under root, 1000 a directory.
func makeTree(root string, n int) error {
	for i := range n {
		sub := filepath.Join(root, fmt.Sprintf("d%03d", i/1000))
		if i%1000 == 0 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return err
			}
		}
		fd, err := unix.Open(fmt.Sprintf("%s/f%05d", sub, i%1000), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return err
		}
		unix.Close(fd)
	}
	return nil
}

// fioReport is the part of fio's JSON output the row reads.
type fioReport struct {
	Jobs []struct {
		Name  string `json:"jobname"`
		Error int    `json:"error"`
		Read  struct {
			TotalIOs  float64 `json:"total_ios"`
			RuntimeMs float64 `json:"runtime"`
			Clat      struct {
				Percentile map[string]float64 `json:"percentile"`
			} `json:"clat_ns"`
		} `json:"read"`
	} `json:"jobs"`
}

// runFio runs one fio job per client over the clients' files in dir.
func runFio(fio string, cfg *config, dir string) (outcome, error) {
	args := []string{"--output-format=json", "--ioengine=psync", "--rw=randread", "--bs=4k",
		"--fadvise_hint=1", "--randrepeat=1", "--allow_file_create=0",
		"--size=" + strconv.FormatInt(cfg.concFileSize, 10), "--number_ios=" + strconv.Itoa(cfg.concReads)}
	for i := range cfg.clients {
		args = append(args, fmt.Sprintf("--name=c%d", i), "--filename="+parFile(dir, i))
	}
	cmd := exec.Command(fio, args...)
	var stderr []byte
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	if err != nil {
		return outcome{}, fmt.Errorf("fio: %w: %s", err, tailBytes(stderr, 400))
	}
	var rep fioReport
	if err := json.Unmarshal(jsonStart(out), &rep); err != nil {
		return outcome{}, fmt.Errorf("fio output: %w", err)
	}
	if len(rep.Jobs) != cfg.clients {
		return outcome{}, fmt.Errorf("fio reported %d jobs, want %d", len(rep.Jobs), cfg.clients)
	}
	var ios, runtime, worst float64
	for _, j := range rep.Jobs {
		if j.Error != 0 {
			return outcome{}, fmt.Errorf("fio job %s: error %d", j.Name, j.Error)
		}
		if int(j.Read.TotalIOs) != cfg.concReads {
			return outcome{}, fmt.Errorf("fio job %s did %v reads, want %d", j.Name, j.Read.TotalIOs, cfg.concReads)
		}
		ios += j.Read.TotalIOs
		runtime = max(runtime, j.Read.RuntimeMs/1000)
		worst = max(worst, j.Read.Clat.Percentile["99.000000"]/1000)
	}
	if runtime <= 0 {
		return outcome{}, errors.New("fio reported no runtime")
	}
	return outcome{Units: ios, Seconds: runtime, Latency: &latency{ClientsP99: worst}}, nil
}

// jsonStart skips whatever fio prints before its JSON (notes on stdout).
func jsonStart(b []byte) []byte {
	for i, c := range b {
		if c == '{' {
			return b[i:]
		}
	}
	return b
}

func tailBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// pctUs is the p-th percentile of ds (nearest rank), in microseconds.
func pctUs(ds []time.Duration, p float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	i = min(max(i, 0), len(s)-1)
	return float64(s[i].Nanoseconds()) / 1e3
}
