package results

// GuestMeasure is one sample of one workload in one boot.
type GuestMeasure struct {
	// Round is the repetition (1-based; cli.Rotate's rounds) whose boot
	// took the sample, what pairs it with the other modes' samples of
	// the same round; 0 in files written before rounds were recorded.
	Round   int     `json:"round,omitempty"`
	Value   float64 `json:"value"`
	Seconds float64 `json:"seconds"`
	Units   float64 `json:"units"`
	// ServerCPU and QemuCPU are the host CPU time of the backend (with
	// its descendants) and of QEMU (vCPUs, device emulation) during the
	// timed part; ServerRSSKiB is the backend's resident set (VmRSS of it
	// and its descendants) right after it, and the rest its split (see
	// rssSplit): anonymous (the backend's own), file, shared memory (guest
	// RAM pages the backend touched through its mapping).
	ServerCPU      float64 `json:"server_cpu_s"`
	QemuCPU        float64 `json:"qemu_cpu_s"`
	ServerRSSKiB   int64   `json:"server_rss_kib"`
	ServerAnonKiB  int64   `json:"server_rss_anon_kib"`
	ServerFileKiB  int64   `json:"server_rss_file_kib"`
	ServerShmemKiB int64   `json:"server_rss_shmem_kib"`
	// IdleRSSKiB and IdleAnonKiB are the memory walks' second RSS
	// sample, VmRSS and RssAnon, taken after the guest left the mount
	// alone for GuestConfig.IdleSampleS (0: not taken): what a backend
	// keeps while it waits.
	IdleRSSKiB  int64 `json:"server_rss_idle_kib,omitempty"`
	IdleAnonKiB int64 `json:"server_rss_anon_idle_kib,omitempty"`
	// The memory-large walk only (it goes on past errors): the entries
	// whose lookup or listing failed in the guest and the first error
	// (a backend with a descriptor per inode past its RLIMIT_NOFILE),
	// the descriptors the backend held after the walk, and, if a file the
	// walk had not touched could not be opened and read afterwards, why.
	FilesFailed int `json:"files_failed,omitempty"`
	// FailedByErrno is FilesFailed by errno name: "EMFILE:81" (the
	// runner's fsops.WalkTally.ErrnoCounts).
	FailedByErrno string `json:"failed_by_errno,omitempty"`
	FirstError    string `json:"first_error,omitempty"`
	ServerFDs     int    `json:"server_fds,omitempty"`
	AfterError    string `json:"after_error,omitempty"`
}

// GuestSeries is every sample of one workload in one mode, and what
// was derived from them.
type GuestSeries struct {
	Samples         []GuestMeasure `json:"samples"`
	Median          float64        `json:"median"`
	MedianSeconds   float64        `json:"median_seconds"`
	MedianServerCPU float64        `json:"median_server_cpu_s"`
	MedianQemuCPU   float64        `json:"median_qemu_cpu_s"`
	MedianRSSKiB    float64        `json:"median_server_rss_kib"`
	MedianAnonKiB   float64        `json:"median_server_rss_anon_kib"`
	MedianFileKiB   float64        `json:"median_server_rss_file_kib"`
	MedianShmemKiB  float64        `json:"median_server_rss_shmem_kib"`
	// MedianIdleRSSKiB and MedianIdleAnonKiB: the idle samples' medians
	// (0: none taken).
	MedianIdleRSSKiB  float64 `json:"median_server_rss_idle_kib,omitempty"`
	MedianIdleAnonKiB float64 `json:"median_server_rss_anon_idle_kib,omitempty"`
	SpreadPct         float64 `json:"spread_pct"`
	// Requests is the workload's request count from the counting boot
	// (0: not counted), RequestsByOp the same by opcode name; CPUPer1k
	// is MedianServerCPU per 1,000 of them.
	Requests     int            `json:"requests,omitempty"`
	RequestsByOp map[string]int `json:"requests_by_opcode,omitempty"`
	// Failures are the guest's errors in boots where the workload failed
	// (e.g. virtiofsd's EMFILE past RLIMIT_NOFILE inodes).
	Failures []string `json:"failures,omitempty"`
	CPUPer1k float64  `json:"server_cpu_s_per_1k_requests,omitempty"`
}

// GuestRow is one workload's results.
type GuestRow struct {
	Name  string                  `json:"name"`
	Title string                  `json:"title"`
	Unit  string                  `json:"unit"`
	Desc  string                  `json:"description"`
	Modes map[string]*GuestSeries `json:"modes"`
	// Ratios of each krunbench mode to virtiofsd (< 1: krunbench uses
	// less), keyed by mode: backend CPU per 1,000 requests, wall time,
	// and RSS at the end of the workload. CPURatio and WallRatio, the
	// judged ones, are the median over rounds of each round's ratio (the
	// krunbench boot against the virtiofsd boot of the same round; the
	// CPU one scaled by the two modes' request counts), their spread and
	// rounds in CPURatioRounds and WallRatioRounds; in files without
	// those (written before session 15) they are the ratio of the two
	// modes' medians. RSSRatio is the ratio of medians.
	CPURatio       map[string]float64      `json:"cpu_per_1k_over_virtiofsd,omitempty"`
	CPURatioRounds map[string]*RoundRatios `json:"cpu_per_1k_over_virtiofsd_by_round,omitempty"`
	// CPURatioOfMedians and WallRatioOfMedians are the ratios of the two
	// modes' medians (CPUPer1k, MedianSeconds): the estimator judged
	// before, shown beside the paired one.
	CPURatioOfMedians map[string]float64 `json:"cpu_ratio_of_medians,omitempty"`
	// TotalCPURatio is the backend CPU of the whole workload over
	// virtiofsd's: what matters where the two answer the same workload
	// with different requests (READDIRPLUS instead of READDIR+LOOKUPs).
	// Taken like CPURatio (where that is paired, this is too: CPURatio
	// times virtiofsd's requests over krunbench's).
	TotalCPURatio      map[string]float64      `json:"cpu_over_virtiofsd,omitempty"`
	WallRatio          map[string]float64      `json:"seconds_over_virtiofsd,omitempty"`
	WallRatioRounds    map[string]*RoundRatios `json:"seconds_over_virtiofsd_by_round,omitempty"`
	WallRatioOfMedians map[string]float64      `json:"wall_ratio_of_medians,omitempty"`
	RSSRatio           map[string]float64      `json:"rss_over_virtiofsd,omitempty"`
	// IdleRSSRatio is the same for the idle RSS sample (shown, not
	// judged: the target is RSSRatio's).
	IdleRSSRatio map[string]float64 `json:"rss_idle_over_virtiofsd,omitempty"`
}

// RoundRatios is one ratio taken within each round (a krunbench boot
// against the virtiofsd boot of the same round, minutes apart at most)
// over the rounds where both modes have a sample: its median, which is
// what is judged, the smallest and largest, and each round's.
type RoundRatios struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	// Rounds are the rounds (GuestMeasure.Round) that gave a ratio, in
	// order, and Ratios each one's ratio.
	Rounds []int     `json:"rounds"`
	Ratios []float64 `json:"ratios"`
}

// GuestMachine is the host and the build under test.
type GuestMachine struct {
	Kernel    string  `json:"host_kernel"`
	CPU       string  `json:"cpu_model"`
	NProc     int     `json:"nproc"`
	MemTotal  string  `json:"mem_total"`
	Go        string  `json:"go_version"`
	QEMU      string  `json:"qemu_version"`
	Date      string  `json:"date"`
	WorkdirFS string  `json:"workdir_fs"`
	Krunbench string  `json:"krunbench_commit"`
	LoadStart string  `json:"loadavg_start"`
	LoadEnd   string  `json:"loadavg_end"`
	BusyStart float64 `json:"cpu_busy_pct_start"`
}

// Guest is one guestbench run, the whole file. M is the type of a mode
// (GuestFile: GuestMode; guestbench's mode declares the same fields and
// what it runs).
type Guest[M any] struct {
	Label   string               `json:"label,omitempty"`
	Machine GuestMachine         `json:"machine"`
	Config  GuestConfig          `json:"config"`
	Modes   []M                  `json:"modes"`
	Rows    []*GuestRow          `json:"workloads"`
	Boots   map[string][]float64 `json:"boot_wall_s"`
	Targets map[string]*Target   `json:"targets"`
	Elapsed float64              `json:"elapsed_s"`
}

// GuestFile is a guestbench file as its readers see it.
type GuestFile = Guest[*GuestMode]

// GuestMode is one vhost-user-fs backend for the guest's shared
// directory.
type GuestMode struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	Desc  string `json:"description"`
	// Server is the backend's command line without the share and socket.
	Server []string `json:"server_argv"`
	// Counting says how the counting boot records requests.
	Counting string `json:"request_count_source"`
	// Features is the guest's negotiated virtio-fs feature bits.
	Features string `json:"guest_virtio_features,omitempty"`
}

// GuestConfig is the run's sizes and how it was taken.
type GuestConfig struct {
	Runs        int      `json:"runs"`
	SizeBytes   int64    `json:"read_size_bytes"`
	Dirs        int      `json:"dirs"`
	FilesPerDir int      `json:"files_per_dir"`
	Creates     int      `json:"creates"`
	Bin         string   `json:"krunbench_bin"`
	GuestKernel string   `json:"guest_kernel"`
	Accel       string   `json:"accel"`
	CPUs        int      `json:"vcpus"`
	MemMiB      int      `json:"mem_mib"`
	QueueSize   int      `json:"virtiofs_queue_size"`
	Guest       string   `json:"guest"`
	Order       string   `json:"order"`
	CacheDrop   string   `json:"cache_drop"`
	HostCache   string   `json:"host_cache"`
	Caching     []string `json:"caching"`
	Device      string   `json:"virtiofs_device"`
	DMABounce   bool     `json:"dma_bounce"`
	Counting    string   `json:"request_counting"`
	MemoryFiles int      `json:"memory_files"`
	LargeFiles  int      `json:"memory_large_files"`
	// IdleSampleS is how long the guest left the mount alone after each
	// memory walk before the idle RSS sample (0: none).
	IdleSampleS float64 `json:"idle_sample_s,omitempty"`
	// LargeRuns is -large-runs: memory-large runs in the first this
	// many rounds only (0: in every round, or a file from before).
	LargeRuns int `json:"memory_large_runs,omitempty"`
	// Ratios says how the ratios to virtiofsd are taken (absent in files
	// from before session 15: ratios of medians).
	Ratios string `json:"ratios,omitempty"`
}
