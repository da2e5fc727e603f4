package tui

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/krunbench/krunbench/session/recording"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// snapshotEvery is how often a replay publishes statistics and the inode
// table while it plays.
const snapshotEvery = 250 * time.Millisecond

// ReplaySource is a Source that plays a recording back with its original
// timing (scaled by a speed factor), with no VM. Statistics and the inode
// table are computed from the recorded events. Input is ignored.
type ReplaySource struct {
	header recording.Header
	player *recording.Player
	pump   *Pump
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
	agg    aggregator
}

// NewReplaySource replays recs; speed 1 is the original pace, speed <= 0
// as fast as the UI takes it. Playback starts on the first call to Events.
func NewReplaySource(h recording.Header, recs []recording.Record, speed float64) *ReplaySource {
	ctx, cancel := context.WithCancel(context.Background())
	return &ReplaySource{
		header: h, player: recording.NewPlayer(recs, speed),
		pump: NewPump(0, 0), ctx: ctx, cancel: cancel,
	}
}

// OpenReplay reads the recording at path and returns its replay.
func OpenReplay(path string, speed float64) (*ReplaySource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h, recs, err := recording.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return NewReplaySource(h, recs, speed), nil
}

// Header is the recording's header.
func (r *ReplaySource) Header() recording.Header { return r.header }

// Player controls the playback (pause, speed, position).
func (r *ReplaySource) Player() *recording.Player { return r.player }

// Events starts the playback (once) and returns its channel.
func (r *ReplaySource) Events() <-chan SourceMsg {
	r.once.Do(func() { go r.play() })
	return r.pump.C()
}

// Input is ignored: a recording has no guest to type into.
func (r *ReplaySource) Input([]byte) {}

// Resize is ignored.
func (r *ReplaySource) Resize(int, int) {}

// Stop ends the playback.
func (r *ReplaySource) Stop() {
	r.cancel()
	r.pump.Abort()
}

func (r *ReplaySource) play() {
	r.pump.Info(r.header.Config)
	tick := time.NewTicker(snapshotEvery)
	defer tick.Stop()
	var mu sync.Mutex // guards agg between the player and the ticker
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-tick.C:
				mu.Lock()
				r.publish()
				mu.Unlock()
			case <-done:
				return
			}
		}
	}()
	err := r.player.Play(r.ctx, func(rec recording.Record) {
		mu.Lock()
		defer mu.Unlock()
		r.agg.now = max(r.agg.now, rec.T)
		switch rec.Kind {
		case recording.KindConsole:
			r.pump.Console(rec.Data)
		case recording.KindEvent:
			r.agg.add(rec.Event)
			r.pump.Event(*rec.Event)
		case recording.KindMilestone:
			r.pump.Milestone(*rec.Milestone)
		case recording.KindStatus:
			r.pump.Status(*rec.Status)
		}
	})
	close(done)
	if err != nil {
		return
	}
	mu.Lock()
	r.publish()
	mu.Unlock()
	r.pump.Close()
}

func (r *ReplaySource) publish() {
	if !r.agg.dirty {
		return
	}
	r.agg.dirty = false
	r.pump.Stats(r.agg.snapshot(r.header.Created))
	r.pump.Inodes(r.agg.inodes())
}

// aggregator computes what a tap would report from recorded events: per
// opcode statistics and an inode table. The nlookup it shows counts the
// entry replies seen since the last FORGET of a nodeid, an approximation:
// FORGET's count is not recorded.
type aggregator struct {
	ops       map[uint32]*trace.OpStats
	nodes     map[uint64]*trace.InodeRow
	names     map[uint64]string
	now       time.Duration
	malformed uint64
	dirty     bool
}

func (a *aggregator) add(ev *trace.Event) {
	if a.ops == nil {
		a.ops = map[uint32]*trace.OpStats{}
		a.nodes = map[uint64]*trace.InodeRow{}
		a.names = map[uint64]string{fuse.RootID: "/"}
	}
	a.dirty = true
	a.now = max(a.now, ev.Time)
	o := a.ops[ev.Op]
	if o == nil {
		o = &trace.OpStats{Op: ev.Op, Name: opLabel(ev)}
		a.ops[ev.Op] = o
	}
	o.Count++
	if !ev.OK() {
		o.Errors++
	}
	if ev.Bytes > 0 {
		o.Bytes += uint64(ev.Bytes)
	}
	o.Latency.Add(ev.Latency)
	if ev.Dropped != "" {
		a.malformed++
		return
	}
	ok := ev.Errno == 0
	if ev.Nodeid != 0 {
		n := a.node(ev.Nodeid, ev.Path)
		n.Ops++
		n.Synthetic = n.Synthetic || ev.Synthetic
		switch ev.Op {
		case fuse.OpOpen, fuse.OpOpendir:
			if ok {
				n.Open++
			}
		case fuse.OpRelease, fuse.OpReleasedir:
			n.Open = max(n.Open-1, 0)
		case fuse.OpRead:
			if ok && ev.Bytes > 0 {
				n.BytesRead += uint64(ev.Bytes)
			}
		case fuse.OpWrite:
			if ok && ev.Bytes > 0 {
				n.BytesWritten += uint64(ev.Bytes)
			}
		case fuse.OpForget:
			n.Nlookup = 0
		}
	}
	if ok && ev.NewNodeid != 0 {
		p := ""
		if parent := a.names[ev.Nodeid]; parent != "" && ev.Name != "" {
			p = joinPath(parent, ev.Name)
		}
		n := a.node(ev.NewNodeid, p)
		n.Nlookup++
		n.Synthetic = n.Synthetic || ev.Synthetic
		if ev.NewNodeid != ev.Nodeid {
			n.Ops++
		}
		if ev.Op == fuse.OpCreate {
			n.Open++
		}
	}
}

func joinPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

func (a *aggregator) node(id uint64, path string) *trace.InodeRow {
	n := a.nodes[id]
	if n == nil {
		n = &trace.InodeRow{Nodeid: id}
		a.nodes[id] = n
	}
	if path == "" {
		path = a.names[id]
	}
	if path != "" {
		n.Path = path
		a.names[id] = path
	}
	return n
}

func (a *aggregator) snapshot(start time.Time) trace.Snapshot {
	s := trace.Snapshot{Time: start.Add(a.now), Uptime: a.now, Enabled: true}
	s.Total = trace.OpStats{Name: "TOTAL"}
	for _, o := range a.ops {
		op := *o
		op.Latency.Finish()
		s.Ops = append(s.Ops, op)
		s.Total.Count += op.Count
		s.Total.Errors += op.Errors
		s.Total.Bytes += op.Bytes
		s.Total.Latency.Merge(&op.Latency)
	}
	s.Total.Latency.Finish()
	s.Drops.Malformed = a.malformed
	sort.Slice(s.Ops, func(i, j int) bool { return s.Ops[i].Op < s.Ops[j].Op })
	return s
}

func (a *aggregator) inodes() []trace.InodeRow {
	rows := make([]trace.InodeRow, 0, len(a.nodes))
	for _, n := range a.nodes {
		rows = append(rows, *n)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Nodeid < rows[j].Nodeid })
	return rows
}

// opLabel is an event's opcode name.
func opLabel(ev *trace.Event) string {
	if ev.OpName != "" {
		return trace.Printable(ev.OpName)
	}
	return fuse.OpName(ev.Op)
}
