// Package results is the schema of the benchmarks' JSON files under
// bench/results: fusebench's (fuse.json, fuse-tuned.json), guestbench's
// (guest.json), tuibench's (tui.json) and bootbench's (boot.json). Each
// is one declaration that its writer writes with and bench/summary (and
// tuibench, for fusebench's file) reads with, so that writer and readers
// cannot drift apart (they did once, when tap_overhead_pct became a
// median over rounds in the writer only).
//
// Where a writer's records also carry what it runs (fusebench's modes
// and rows: argv, workload functions; guestbench's modes; tuibench's
// samples, with their methods), the file type takes them as type
// parameters and readers use the *File alias, whose types declare the
// same JSON fields. Each writer's TestWrittenFileReadsBack reads the
// committed file with the readers' types, refusing undeclared fields
// (DecodeStrict), writes it again with the writer's and wants the same
// bytes back.
package results

import "slices"

// Fuse is one fusebench run, the whole file. M is the type of a mode,
// R the type of a row (FuseFile: Mode and Row).
type Fuse[M, R any] struct {
	Machine Machine `json:"machine"`
	Config  Config  `json:"config"`
	// Label is -label: what kind of run this was (e.g. a smoke run).
	Label string `json:"label,omitempty"`
	// Settings is "default" or "tuned" (fusebench's settings.go).
	Settings string `json:"settings"`
	// Memory is the memory row (fusebench's inodes.go).
	Memory  *Memory               `json:"memory,omitempty"`
	Skipped []SkippedPeer         `json:"skipped_peers,omitempty"`
	Modes   []M                   `json:"modes"`
	Rows    []R                   `json:"workloads"`
	Traces  map[string][]TraceRun `json:"trace_files,omitempty"`
	Targets map[string]*Target    `json:"targets"`
	Elapsed float64               `json:"elapsed_s"`
}

// FuseFile is a fusebench file as its readers see it.
type FuseFile = Fuse[*Mode, *Row]

// Mode is one way of reaching the shared directory (fusebench's mode
// declares the same fields).
type Mode struct {
	Name  string   `json:"name"`
	Label string   `json:"label"`
	Desc  string   `json:"description"`
	Argv  []string `json:"argv,omitempty"`
	// Mount is where a FUSE mode is mounted for the whole run.
	Mount string `json:"mount,omitempty"`
}

// Workload names a row (fusebench's workload declares the same fields).
type Workload struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	Unit  string `json:"unit"`
	Desc  string `json:"description"`
}

// Row is one workload's results as readers see them.
type Row struct {
	Workload
	RowStats
}

// RowStats is what a row holds besides its workload's names: its samples
// per mode and what was derived from them.
type RowStats struct {
	Modes map[string]*Series `json:"modes"`
	// OursOverGoFuse is tap (c) throughput over go-fuse's, taken round by
	// round: > 1 means krunbench is faster.
	OursOverGoFuse *Paired `json:"ours_over_gofuse,omitempty"`
	// OursOverPtHP is tap (c) throughput over passthrough_hp's, likewise.
	OursOverPtHP *Paired `json:"ours_over_passthrough_hp,omitempty"`
	// WritebackOverPtHP is krunbench --writeback (f) throughput over
	// passthrough_hp's, within rounds: both with the kernel's writeback
	// cache (fusebench's writeback.go).
	WritebackOverPtHP *Paired `json:"writeback_over_passthrough_hp,omitempty"`
	// CacheModeDiffers names peers whose cache mode, not their server,
	// may explain this row's difference.
	CacheModeDiffers map[string]string `json:"cache_mode_differs,omitempty"`
	// OursOverGoFuseOfMedians is the same from the two medians, for
	// comparison with earlier results.
	OursOverGoFuseOfMedians *float64 `json:"ours_over_gofuse_of_medians,omitempty"`
	// TapOverheadPct and TraceOverheadPct are the extra time (c) and (d)
	// take over (b), round by round: 100 * (time/time_b - 1).
	TapOverheadPct   *Paired `json:"tap_overhead_pct,omitempty"`
	TraceOverheadPct *Paired `json:"trace_overhead_pct,omitempty"`
	// TapCPUPct and TraceCPUPct are the extra server CPU time, likewise.
	TapCPUPct   *Paired `json:"tap_server_cpu_pct,omitempty"`
	TraceCPUPct *Paired `json:"trace_server_cpu_pct,omitempty"`
	// Rules100OverheadPct, Rules100CPUPct and Rules100ExtraUsPerUnit are
	// what 100 non-matching rules add over tap (c), within rounds: extra
	// time and server CPU in percent, extra microseconds per unit of the
	// row (file stat-ed, create+unlink triple).
	Rules100OverheadPct    *Paired `json:"rules100_overhead_pct,omitempty"`
	Rules100CPUPct         *Paired `json:"rules100_server_cpu_pct,omitempty"`
	Rules100ExtraUsPerUnit *Paired `json:"rules100_extra_us_per_unit,omitempty"`
	// P99UnderWriter is, per mode, the small client's p99 under the
	// writer over its idle p99, sample by sample (mixed row).
	P99UnderWriter map[string]*Paired `json:"p99_under_writer_over_idle,omitempty"`
}

// Measure is one sample.
type Measure struct {
	Value     float64 `json:"value"`
	Seconds   float64 `json:"seconds"`
	ServerCPU float64 `json:"server_cpu_s"`
	ClientCPU float64 `json:"client_cpu_s"`
	// Latency is the small client's (mixed) or fio's (par-randread).
	Latency *Latency `json:"latency,omitempty"`
	// Memory is the machine's memory state around the timed part
	// (fusebench's coldmemory.go); nil where not recorded.
	Memory *SampleMemory `json:"memory,omitempty"`
	// Requests counts the FUSE requests the sample's mount sent during
	// the timed part (fusebench -count-requests, reqcount.go).
	Requests *Requests `json:"requests,omitempty"`
}

// SampleMemory is what free page reporting (a virtio-balloon that hands
// freed guest memory back to the hypervisor, which faults it in again on
// next use) did around one sample, read from the kernel's page_reporting
// counters where it exposes them, and what fusebench did about it.
type SampleMemory struct {
	// SinceDropMs is the time from the cache drop to the timed part.
	SinceDropMs float64 `json:"since_drop_ms"`
	// ReportedKiBBefore and ReportedKiBDuring are the free memory
	// reported to the hypervisor between the drop and the timed part,
	// and during it; -1 where the kernel has no such counter.
	ReportedKiBBefore int64 `json:"reported_kib_before"`
	ReportedKiBDuring int64 `json:"reported_kib_during"`
	// PrefaultMiB is how much memory fusebench touched and freed just
	// before the timed part (-cold-memory backed), PrefaultMs how long
	// that took (long when the memory had been handed back).
	PrefaultMiB int64   `json:"prefault_mib,omitempty"`
	PrefaultMs  float64 `json:"prefault_ms,omitempty"`
	// PassWaitMs is how long it then waited for a reporting pass to
	// end (absent when none ended within the wait).
	PassWaitMs float64 `json:"pass_wait_ms,omitempty"`
}

// Requests is one sample's FUSE requests by opcode, and the replies of
// the opcodes that return data (READ, READDIR, READDIRPLUS) by opcode
// and size: KiB of data (rounded down), as the kernel's fuse_request_end
// saw them.
type Requests struct {
	ByOpcode map[string]int         `json:"by_opcode"`
	ReplyKiB map[string]map[int]int `json:"reply_kib,omitempty"`
}

// Latency is what the small client (mixed) or the fio jobs (par-randread)
// saw in one sample, in microseconds.
type Latency struct {
	IdleP50Us  float64 `json:"idle_p50_us,omitempty"`
	IdleP99Us  float64 `json:"idle_p99_us,omitempty"`
	IdleCalls  int     `json:"idle_calls,omitempty"`
	BusyP50Us  float64 `json:"under_writer_p50_us,omitempty"`
	BusyP99Us  float64 `json:"under_writer_p99_us,omitempty"`
	BusyMaxUs  float64 `json:"under_writer_max_us,omitempty"`
	BusyCalls  int     `json:"under_writer_calls,omitempty"`
	ClientsP99 float64 `json:"clients_worst_p99_us,omitempty"`
	// The mixed row's calls under the writer, split at the writer's last
	// write() (before its fsync): p99 and calls of each phase, and the
	// write() phase's length. Added for issue 15: the row's p99 mixes
	// the two phases, whose latencies differ by up to 10x.
	WritePhaseP99Us   float64 `json:"write_phase_p99_us,omitempty"`
	WritePhaseCalls   int     `json:"write_phase_calls,omitempty"`
	WritePhaseSeconds float64 `json:"write_phase_s,omitempty"`
	FsyncPhaseP99Us   float64 `json:"fsync_phase_p99_us,omitempty"`
	FsyncPhaseCalls   int     `json:"fsync_phase_calls,omitempty"`
	// SlowRunqPct (fusebench -mixed-runq only): of the time the slowest
	// 1% of calls under the writer took, the share their thread spent
	// runnable but waiting for a CPU (/proc/thread-self/schedstat). nil
	// when not measured, so that a measured 0% is told from no number.
	SlowRunqPct *float64 `json:"slow_calls_runq_pct,omitempty"`
}

// Series is every sample of one workload in one mode.
type Series struct {
	Samples         []Measure `json:"samples"`
	Median          float64   `json:"median"`
	MedianSeconds   float64   `json:"median_seconds"`
	MedianServerCPU float64   `json:"median_server_cpu_s"`
	Min             float64   `json:"min"`
	Max             float64   `json:"max"`
	// SpreadPct is (max - min) / median: how far apart the samples are.
	SpreadPct float64 `json:"spread_pct"`
}

// Paired summarises one quantity computed within each round from two
// modes' samples (taken seconds apart): its median over the rounds and
// the 25th and 75th percentiles.
type Paired struct {
	Median float64 `json:"median"`
	P25    float64 `json:"p25"`
	P75    float64 `json:"p75"`
	Rounds int     `json:"rounds"`
}

// Target is one of issue 15's targets and its verdict per row; Pass is
// nil when no row was judged.
type Target struct {
	Description string          `json:"description"`
	Pass        *bool           `json:"pass"`
	Rows        map[string]bool `json:"rows"`
}

// Verdict is the target's word: "PASS", miss when a row missed it, "n/a"
// when no row was judged.
func (t *Target) Verdict(miss string) string {
	switch {
	case t.Pass == nil:
		return "n/a"
	case *t.Pass:
		return "PASS"
	}
	return miss
}

// Settle sets Pass from Rows: true when every judged row met the
// target, nil when none was judged.
func (t *Target) Settle() {
	if len(t.Rows) == 0 {
		return
	}
	pass := true
	for _, ok := range t.Rows {
		pass = pass && ok
	}
	t.Pass = &pass
}

// Missed is the rows that missed the target, sorted.
func (t *Target) Missed() []string {
	var out []string
	for name, ok := range t.Rows {
		if !ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// TraceRun is one trace file a run wrote.
type TraceRun struct {
	Bytes   int64  `json:"bytes"`
	Events  int64  `json:"events"`
	Dropped uint64 `json:"dropped"`
}

// Machine is the host and the build under test.
type Machine struct {
	Kernel    string `json:"kernel"`
	CPU       string `json:"cpu_model"`
	NProc     int    `json:"nproc"`
	MemTotal  string `json:"mem_total"`
	Go        string `json:"go_version"`
	Date      string `json:"date"`
	Workdir   string `json:"workdir"`
	WorkdirFS string `json:"workdir_fs"`
	Krunbench string `json:"krunbench_commit"`
	GoFuse    string `json:"go_fuse_version"`
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
	// BusyStart is the share of CPU time other work used in the second
	// before the benchmark started.
	BusyStart float64 `json:"cpu_busy_pct_start"`
	// BalloonsUnbound are the free-page-reporting balloons unbound for
	// the run (fusebench's memory.go).
	BalloonsUnbound []string `json:"balloons_unbound,omitempty"`
	// PipeMaxRaisedFrom is fs.pipe-max-size before fusebench raised it for
	// the run; 0 if it did not.
	PipeMaxRaisedFrom int `json:"pipe_max_size_raised_from,omitempty"`
	// PipeMaxSize is fs.pipe-max-size during the run.
	PipeMaxSize int `json:"pipe_max_size"`
	// BalloonsReporting are free-page-reporting balloons still bound
	// during the run (default settings leave them): every row was
	// measured with them.
	BalloonsReporting []string `json:"balloons_reporting_bound,omitempty"`
}

// Config is the run's sizes and how it was taken.
type Config struct {
	Runs        int    `json:"runs"`
	SizeBytes   int64  `json:"size_bytes"`
	Dirs        int    `json:"dirs"`
	FilesPerDir int    `json:"files_per_dir"`
	Creates     int    `json:"creates"`
	Bin         string `json:"krunbench_bin"`
	Order       string `json:"order"`
	CacheDrop   string `json:"cache_drop"`
	// ColdMemory is fusebench's -cold-memory: the memory state every
	// sample starts its timed part in (coldmemory.go); empty in runs from
	// before it existed (as "as-is").
	ColdMemory string   `json:"cold_memory,omitempty"`
	Caching    []string `json:"caching"`
	// The concurrency and memory rows' sizes (fusebench's concurrency.go,
	// inodes.go).
	Clients      int   `json:"clients"`
	ConcFiles    int   `json:"conc_files_per_client"`
	ConcCreates  int   `json:"conc_creates_per_client"`
	ConcReads    int   `json:"conc_reads_per_client"`
	ConcFileSize int64 `json:"conc_file_size_bytes"`
	MixedSize    int64 `json:"mixed_writer_bytes"`
	MixedProbes  int   `json:"mixed_idle_probes"`
	MemFiles     int   `json:"mem_files"`
	Quick        bool  `json:"quick,omitempty"`
}

// Memory is the memory section: server RSS after looking up many inodes.
type Memory struct {
	Files        int                  `json:"files"`
	RlimitNofile uint64               `json:"rlimit_nofile"`
	Desc         string               `json:"description"`
	Modes        map[string]*InodeRun `json:"modes"`
	Virtiofsd    string               `json:"virtiofsd"`
}

// InodeRun is one mode's memory measurement.
type InodeRun struct {
	RSSIdleKiB  int64 `json:"rss_idle_kib"`
	RSSAfterKiB int64 `json:"rss_after_kib"`
	HWMKiB      int64 `json:"rss_peak_kib"`
	// FDs is how many descriptors the server held after the walk.
	FDs int `json:"fds_after"`
	// Seen counts regular files lstat-ed without error; Failed the
	// entries whose lstat or directory listing failed.
	Seen       int     `json:"files_seen"`
	Failed     int     `json:"entries_failed"`
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"walk_seconds"`
	// StillServes says whether a file the walk had not touched could be
	// stat-ed and read through the mount afterwards.
	StillServes bool   `json:"still_serves"`
	AfterError  string `json:"after_error,omitempty"`
}

// SkippedPeer is a peer mode left out of the run, and why.
type SkippedPeer struct {
	Mode   string `json:"mode"`
	Reason string `json:"reason"`
}
