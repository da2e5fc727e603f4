package results

// Boot is one bootbench run, the whole file (bench/results/boot.json).
// Its fields stand in the order the file has them (bootbench wrote a map
// before, whose keys JSON sorts).
type Boot struct {
	Config BootConfig `json:"config"`
	// ExitRatio is the in-process KVM engine's median time to the
	// workload's exit over QEMU's; 0 where QEMU has none.
	ExitRatio float64 `json:"exit_ratio"`
	// Failed counts the measured runs that failed, by engine.
	Failed  map[string]int `json:"failed"`
	Machine BootMachine    `json:"machine"`
	// MedianMs is, by engine, the median milliseconds to each moment of
	// the boot ("wall": the whole process).
	MedianMs map[string]map[string]float64 `json:"median_ms"`
	Samples  []BootSample                  `json:"samples"`
	// Target is the verdict in words.
	Target string `json:"target"`
}

// BootConfig says where and how the run was taken.
type BootConfig struct {
	Kernel   string `json:"kernel"`
	Note     string `json:"note"`
	Runs     int    `json:"runs"`
	Where    string `json:"where"`
	Workload string `json:"workload"`
}

// BootMachine is the host the L1 ran on.
type BootMachine struct {
	CPU       string  `json:"cpu_model"`
	Date      string  `json:"date"`
	L1WallS   float64 `json:"l1_wall_s"`
	LoadEnd   string  `json:"loadavg_end"`
	LoadStart string  `json:"loadavg_start"`
	NProc     int     `json:"nproc"`
}

// BootSample is one run of one engine.
type BootSample struct {
	Engine string             `json:"engine"`
	Run    int                `json:"run"`
	WallMS float64            `json:"wall_ms"`
	Code   int                `json:"exit_code"`
	Boot   map[string]float64 `json:"boot_ms"`
	Err    string             `json:"error,omitempty"`
}
