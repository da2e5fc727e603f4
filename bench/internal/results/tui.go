package results

import "encoding/json"

// TUI is one tuibench run, the whole file. S is the type of a sample
// (tuibench's sample, with its methods; readers that do not look into
// samples take them raw: TUIFile).
type TUI[S any] struct {
	Machine  TUIMachine         `json:"machine"`
	Config   TUIConfig          `json:"config"`
	Modes    []*TUIMode[S]      `json:"modes"`
	Fuse     *TUIFuseComparison `json:"fuse_comparison"`
	Notes    []string           `json:"notes"`
	ElapsedS float64            `json:"elapsed_s"`
}

// TUIFile is a tuibench file as summary reads it.
type TUIFile = TUI[json.RawMessage]

// TUIConfig is the run's sizes and how it was taken.
type TUIConfig struct {
	Runs        int     `json:"runs"`
	Dirs        int     `json:"dirs"`
	FilesPerDir int     `json:"files_per_dir"`
	Entries     int     `json:"entries_found"`
	Workload    string  `json:"workload"`
	Timing      string  `json:"timing"`
	Accel       string  `json:"accel"`
	Kernel      string  `json:"kernel"`
	Bin         string  `json:"krunbench_bin"`
	Terminal    string  `json:"terminal"`
	SampleS     float64 `json:"sample_interval_s"`
	Lock        string  `json:"lock"`
	Order       string  `json:"order"`
}

// TUIMachine is the host and the build under test.
type TUIMachine struct {
	Kernel    string `json:"host_kernel"`
	CPU       string `json:"cpu_model"`
	NProc     int    `json:"nproc"`
	MemTotal  string `json:"mem_total"`
	Go        string `json:"go_version"`
	QEMU      string `json:"qemu_version"`
	Tmux      string `json:"tmux_version"`
	Date      string `json:"date"`
	Krunbench string `json:"krunbench_commit"`
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
}

// TUIMode is one mode's samples and what was derived from them.
type TUIMode[S any] struct {
	Name      string  `json:"name"`
	Label     string  `json:"label"`
	Desc      string  `json:"description"`
	Samples   []S     `json:"samples"`
	Median    float64 `json:"median_s"`
	Min       float64 `json:"min_s"`
	Max       float64 `json:"max_s"`
	SpreadPct float64 `json:"spread_pct"`
	// HostMedian is the median of the workload's host-clock time, and
	// HostOverheadPct the extra host time over the run mode.
	HostMedian      float64  `json:"median_host_s"`
	HostOverheadPct *float64 `json:"host_overhead_pct,omitempty"`
	// Medians of the host CPU during the workload.
	KrunbenchCPU float64 `json:"median_krunbench_cpu_s"`
	QEMUCPU      float64 `json:"median_qemu_cpu_s"`
	// OverheadPct is the extra guest time over the run mode, from medians.
	OverheadPct *float64  `json:"overhead_pct,omitempty"`
	UI          *TUITotal `json:"ui,omitempty"`
}

// TUITotal sums up the TUI runs of a mode.
type TUITotal struct {
	MedianFPS      float64 `json:"median_flood_fps"`
	MedianAvgMs    float64 `json:"median_flood_frame_avg_ms"`
	MaxMs          float64 `json:"max_frame_max_ms"`
	MaxP99Ms       float64 `json:"max_flood_frame_p99_ms"`
	MaxBacklogMs   float64 `json:"max_flood_backlog_ms"`
	MaxInFlood     int     `json:"runs_with_max_set_during_flood"`
	Dropped        uint64  `json:"dropped_events"`
	ConsoleDropped uint64  `json:"dropped_console_bytes"`
	KeepsRedrawing bool    `json:"keeps_redrawing"`
	RedrawRuns     int     `json:"runs_redrawing"`
}

// TUIFuseComparison holds the target: the TUI's overhead is no more
// than the tap overhead fusebench measured.
type TUIFuseComparison struct {
	File    string `json:"file"`
	Present bool   `json:"present"`
	Note    string `json:"note"`
	Date    string `json:"fusebench_date,omitempty"`
	Commit  string `json:"fusebench_krunbench_commit,omitempty"`
	// TapOverheadPct is every fusebench row's tap overhead; Row is the
	// one compared with, BoundPct its value.
	TapOverheadPct map[string]float64 `json:"tap_overhead_pct,omitempty"`
	Row            string             `json:"row"`
	BoundPct       *float64           `json:"bound_pct"`
	TUIOverheadPct *float64           `json:"tui_overhead_pct"`
	Pass           *bool              `json:"pass"`
	// The same on the host's clock (see the notes on the guest's).
	TUIHostOverheadPct *float64 `json:"tui_host_overhead_pct"`
	PassHostClock      *bool    `json:"pass_host_clock"`
	TargetPct          float64  `json:"fusebench_target_pct"`
	PassTarget         *bool    `json:"pass_vs_fusebench_target"`
}
