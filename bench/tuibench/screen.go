package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/krunbench/krunbench/bench/internal/hostinfo"
)

// tmux is a terminal of a fixed size on a tmux server of its own (-L), so
// that closing it never touches anyone else's sessions.
type tmux struct{ socket, path string }

const tmuxSession = "tuibench"

func newTmux(cols, rows int) (*tmux, error) {
	t := &tmux{socket: fmt.Sprintf("krunbench-tuibench-%d", os.Getpid())}
	if out, err := t.cmd("new-session", "-d", "-s", tmuxSession, "-x", fmt.Sprint(cols), "-y", fmt.Sprint(rows), "sh").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("tmux new-session: %v %s", err, out)
	}
	if out, err := t.cmd("display-message", "-p", "#{socket_path}").Output(); err == nil {
		t.path = strings.TrimSpace(string(out))
	}
	return t, nil
}

func (t *tmux) cmd(args ...string) *exec.Cmd {
	return exec.Command("tmux", append([]string{"-L", t.socket}, args...)...)
}

// close ends the server, and with it the shell and whatever still runs in
// it (the pane's processes get SIGHUP), and removes its socket.
func (t *tmux) close() {
	t.cmd("kill-server").Run()
	if t.path != "" {
		os.Remove(t.path)
	}
}

func (t *tmux) panePID() (int, error) {
	out, err := t.cmd("display-message", "-p", "-t", tmuxSession, "#{pane_pid}").Output()
	if err != nil {
		return 0, fmt.Errorf("tmux display-message: %w", err)
	}
	return strconv.Atoi(strings.TrimSpace(string(out)))
}

func (t *tmux) send(keys ...string) error {
	if out, err := t.cmd(append([]string{"send-keys", "-t", tmuxSession}, keys...)...).CombinedOutput(); err != nil {
		return fmt.Errorf("send-keys %q: %v %s", keys, err, out)
	}
	return nil
}

// sendEach sends each group of keys, leaving the app time to react.
func (t *tmux) sendEach(groups ...[]string) error {
	for _, g := range groups {
		if err := t.send(g...); err != nil {
			return err
		}
		time.Sleep(150 * time.Millisecond)
	}
	return nil
}

func (t *tmux) screen() string {
	out, _ := t.cmd("capture-pane", "-p", "-t", tmuxSession).Output()
	return string(out)
}

// waitFor polls the screen until re matches.
func (t *tmux) waitFor(ctx context.Context, re string, limit time.Duration) (string, error) {
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(limit)
	for {
		s := t.screen()
		if rx.MatchString(s) {
			return s, nil
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("screen never matched %q within %s:\n%s", re, limit, s)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// overlayStats is what the debug overlay (tui/debug.go) and the traffic
// pane's footer show at one moment. The overlay's numbers are cumulative
// since the TUI started, except the frame and update times of the last
// frame, the percentiles (of the last 512 frames), the rates (of the last
// second) and the backlog (of the last batch, and the worst in the last
// second).
type overlayStats struct {
	Seen           bool    `json:"seen"`
	LastMs         float64 `json:"frame_last_ms"`
	P50Ms          float64 `json:"frame_p50_ms"`
	P99Ms          float64 `json:"frame_p99_ms"`
	AvgMs          float64 `json:"frame_avg_ms"`
	MaxMs          float64 `json:"frame_max_ms"`
	Frames         uint64  `json:"frames"`
	FPS            uint64  `json:"fps"`
	UpdateMs       float64 `json:"update_last_ms"`
	Batches        uint64  `json:"batches"`
	Events         uint64  `json:"events_seen"`
	Kept           uint64  `json:"events_kept"`
	EventsPerS     uint64  `json:"events_per_s"`
	BacklogMs      float64 `json:"backlog_ms"`
	BacklogMaxMs   float64 `json:"backlog_max_ms"`
	Dropped        uint64  `json:"dropped_events"`
	SubDropped     uint64  `json:"dropped_by_subscription"`
	BufferDropped  uint64  `json:"dropped_by_buffer"`
	ConsoleDropped uint64  `json:"dropped_console_bytes"`
	// Requests is the traffic pane's counter ("N requests"); -1 when the
	// footer was not on the screen.
	Requests int64 `json:"traffic_requests"`
}

var (
	reFrame    = regexp.MustCompile(`\bframe\s+(\S+) \(p50 (\S+), p99 (\S+), avg (\S+), max (\S+?)\)`)
	reFrames   = regexp.MustCompile(`\bframes\s+(\d+) · (\d+)/s`)
	reUpdate   = regexp.MustCompile(`\bupdate\s+(\S+)`)
	reBatches  = regexp.MustCompile(`\bbatches\s+(\d+)`)
	reEvents   = regexp.MustCompile(`\bevents\s+(\d+) seen, (\d+) kept · (\d+)/s`)
	reBacklog  = regexp.MustCompile(`\bbacklog\s+(\S+) \(max (\S+) in 1s\)`)
	reDropped  = regexp.MustCompile(`\bdropped\s+(\d+) events, (\d+) console bytes`)
	reDropBy   = regexp.MustCompile(`(\d+) by the subscription, (\d+) by the buffer`)
	reRequests = regexp.MustCompile(`(\d+) requests · `)
)

func parseOverlay(screen string) overlayStats {
	o := overlayStats{Requests: -1}
	ms := func(s string) float64 {
		d, err := time.ParseDuration(s)
		if err != nil {
			return -1
		}
		return float64(d) / float64(time.Millisecond)
	}
	num := func(s string) uint64 {
		n, _ := strconv.ParseUint(s, 10, 64)
		return n
	}
	if m := reFrame.FindStringSubmatch(screen); m != nil {
		o.Seen = true
		o.LastMs, o.P50Ms, o.P99Ms, o.AvgMs, o.MaxMs = ms(m[1]), ms(m[2]), ms(m[3]), ms(m[4]), ms(m[5])
	}
	if m := reFrames.FindStringSubmatch(screen); m != nil {
		o.Frames, o.FPS = num(m[1]), num(m[2])
	}
	if m := reUpdate.FindStringSubmatch(screen); m != nil {
		o.UpdateMs = ms(m[1])
	}
	if m := reBatches.FindStringSubmatch(screen); m != nil {
		o.Batches = num(m[1])
	}
	if m := reEvents.FindStringSubmatch(screen); m != nil {
		o.Events, o.Kept, o.EventsPerS = num(m[1]), num(m[2]), num(m[3])
	}
	if m := reBacklog.FindStringSubmatch(screen); m != nil {
		o.BacklogMs, o.BacklogMaxMs = ms(m[1]), ms(m[2])
	}
	if m := reDropped.FindStringSubmatch(screen); m != nil {
		o.Dropped, o.ConsoleDropped = num(m[1]), num(m[2])
	}
	if m := reDropBy.FindStringSubmatch(screen); m != nil {
		o.SubDropped, o.BufferDropped = num(m[1]), num(m[2])
	}
	if m := reRequests.FindStringSubmatch(screen); m != nil {
		o.Requests = int64(num(m[1]))
	}
	return o
}

// screenSample is one look at the screen during the flood.
type screenSample struct {
	T            float64 `json:"t_s"`
	Requests     int64   `json:"traffic_requests"`
	Frames       uint64  `json:"frames"`
	FPS          uint64  `json:"fps"`
	Events       uint64  `json:"events_seen"`
	EventsPerS   uint64  `json:"events_per_s"`
	Dropped      uint64  `json:"dropped_events"`
	LastMs       float64 `json:"frame_last_ms"`
	P50Ms        float64 `json:"frame_p50_ms"`
	P99Ms        float64 `json:"frame_p99_ms"`
	AvgMs        float64 `json:"frame_avg_ms"`
	MaxMs        float64 `json:"frame_max_ms"`
	BacklogMaxMs float64 `json:"backlog_max_ms"`
}

// uiStats is what a TUI run saw: the overlay as the workload was typed
// and as its result appeared, the samples in between, and what follows
// from them.
type uiStats struct {
	Start   overlayStats   `json:"overlay_start"`
	End     overlayStats   `json:"overlay_end"`
	Samples []screenSample `json:"samples"`
	// FloodFrames, FloodFPS and FloodAvgMs are the frames drawn during
	// the workload, per second, and their mean time (from the overlay's
	// cumulative count and mean at both ends).
	FloodFrames uint64  `json:"flood_frames"`
	FloodFPS    float64 `json:"flood_fps"`
	FloodAvgMs  float64 `json:"flood_frame_avg_ms"`
	// FloodMaxMs is the overlay's max if it rose during the workload
	// (else the max came from before it, and this is the floor).
	FloodMaxMs  float64 `json:"flood_frame_max_ms"`
	MaxInFlood  bool    `json:"frame_max_set_during_flood"`
	FloodEvents uint64  `json:"flood_events"`
	FloodDrops  uint64  `json:"flood_dropped_events"`
	// FloodP99Ms and FloodBacklogMs are the worst frame p99 and backlog
	// the samples saw.
	FloodP99Ms     float64 `json:"flood_frame_p99_max_ms"`
	FloodBacklogMs float64 `json:"flood_backlog_max_ms"`
	// Intervals are consecutive sample pairs; Rises those in which the
	// traffic pane's request counter went up on the screen.
	Intervals      int  `json:"intervals"`
	Rises          int  `json:"rises"`
	KeepsRedrawing bool `json:"keeps_redrawing"`
}

func (u *uiStats) add(t float64, screen string) {
	o := parseOverlay(screen)
	u.Samples = append(u.Samples, screenSample{T: t, Requests: o.Requests, Frames: o.Frames, FPS: o.FPS, Events: o.Events,
		EventsPerS: o.EventsPerS, Dropped: o.Dropped, LastMs: o.LastMs, P50Ms: o.P50Ms, P99Ms: o.P99Ms, AvgMs: o.AvgMs,
		MaxMs: o.MaxMs, BacklogMaxMs: o.BacklogMaxMs})
}

// finish derives the flood's numbers; elapsed is the workload's host time.
func (u *uiStats) finish(elapsed float64) {
	a, b := u.Start, u.End
	if b.Frames > a.Frames {
		u.FloodFrames = b.Frames - a.Frames
		u.FloodAvgMs = (b.AvgMs*float64(b.Frames) - a.AvgMs*float64(a.Frames)) / float64(u.FloodFrames)
	}
	if elapsed > 0 {
		u.FloodFPS = float64(u.FloodFrames) / elapsed
	}
	u.MaxInFlood = b.MaxMs > a.MaxMs
	u.FloodMaxMs = b.MaxMs
	u.FloodEvents = b.Events - min(a.Events, b.Events)
	u.FloodDrops = b.Dropped - min(a.Dropped, b.Dropped)
	for _, s := range u.Samples {
		u.FloodP99Ms = max(u.FloodP99Ms, s.P99Ms)
		u.FloodBacklogMs = max(u.FloodBacklogMs, s.BacklogMaxMs)
	}
	for i := 1; i < len(u.Samples); i++ {
		u.Intervals++
		if p, q := u.Samples[i-1], u.Samples[i]; q.Requests > p.Requests && p.Requests >= 0 {
			u.Rises++
		}
	}
	u.KeepsRedrawing = u.Intervals > 0 && u.Rises == u.Intervals
}

// watch follows the processes under root (flock, krunbench, QEMU), to
// time their CPU and to make sure no QEMU outlives its run.
type watch struct {
	root      int
	krunbench int
	qemu      int
	seen      map[int]string
}

func newWatch(root int) *watch { return &watch{root: root, seen: map[int]string{}} }

// scan looks for krunbench and QEMU under the root.
func (w *watch) scan() {
	for _, pid := range descendants(w.root) {
		comm := readComm(pid)
		switch {
		case comm == "krunbench":
			w.krunbench = pid
		case strings.HasPrefix(comm, "qemu-system"):
			w.qemu = pid
		default:
			continue
		}
		w.seen[pid] = comm
	}
}

// cpuPair is the CPU seconds of krunbench and QEMU.
type cpuPair struct{ krunbench, qemu float64 }

func (w *watch) cpu() cpuPair { return cpuPair{cpuSeconds(w.krunbench), cpuSeconds(w.qemu)} }

func (c cpuPair) since(old cpuPair) (float64, float64) {
	return c.krunbench - old.krunbench, c.qemu - old.qemu
}

// reap waits for every krunbench and QEMU seen to be gone; any still
// there after a grace period is killed and reported.
func (w *watch) reap() error {
	deadline := time.Now().Add(10 * time.Second)
	var left []string
	for pid, comm := range w.seen {
		for alive(pid, comm) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if alive(pid, comm) {
			syscall.Kill(pid, syscall.SIGKILL)
			left = append(left, fmt.Sprintf("%s (%d)", comm, pid))
		}
	}
	w.seen = map[int]string{}
	if len(left) > 0 {
		return fmt.Errorf("left behind, killed: %s", strings.Join(left, ", "))
	}
	return nil
}

func alive(pid int, comm string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil || readComm(pid) != comm {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}

func readComm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// cpuSeconds is utime + stime of pid; 0 where there is none.
func cpuSeconds(pid int) float64 {
	c, _ := hostinfo.ProcCPUSeconds(pid)
	return c
}

// descendants lists every process under root.
func descendants(root int) []int {
	children := map[int][]int{}
	entries, _ := filepath.Glob("/proc/[0-9]*")
	for _, e := range entries {
		pid, err := strconv.Atoi(filepath.Base(e))
		if err != nil {
			continue
		}
		if f := hostinfo.ProcStat(pid); len(f) > 1 {
			if ppid, err := strconv.Atoi(f[1]); err == nil {
				children[ppid] = append(children[ppid], pid)
			}
		}
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}
