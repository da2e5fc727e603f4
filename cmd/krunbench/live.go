package main

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/krunbench/krunbench/initlib/milestone"
	"github.com/krunbench/krunbench/session"
	"github.com/krunbench/krunbench/session/recording"
	"github.com/krunbench/krunbench/session/terminal"
	"github.com/krunbench/krunbench/tui"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// liveSource feeds the TUI from a running session: console output, the
// FUSE trace, the init's milestones, stats and the inode table, through a
// tui.Pump so that nothing the UI does can block the guest, except that
// console output waits for a lagging UI (the guest's printing slows down,
// nothing is lost). With a recording writer it records the same stream.
type liveSource struct {
	s     *session.Session
	pump  *tui.Pump
	rec   atomic.Pointer[recording.Writer]
	file  *os.File
	sub   *trace.Subscription
	input chan []byte
	start time.Time
	// reported is how many dropped events the pump was told of (periodic,
	// then wait).
	reported uint64

	lineMu sync.Mutex
	line   []byte // console text since the last newline, for milestones

	stop chan struct{}
	once sync.Once
	done sync.WaitGroup
	// finished is closed when the session has ended and released all it
	// held (engine, runtime directory, recording).
	finished chan struct{}
}

// consoleSink receives console output from the session.
type consoleSink struct{ l *liveSource }

func (c consoleSink) Write(b []byte) (int, error) {
	c.l.pump.ConsoleWait(b)
	if rec := c.l.rec.Load(); rec != nil {
		_ = rec.Console(b)
	}
	c.l.scanMilestones(b)
	return len(b), nil
}

// startLive boots cfg and returns its source; with a record path the
// session is recorded there (replaced if it exists).
func startLive(cfg session.Config, record string) (*liveSource, error) {
	l := &liveSource{pump: tui.NewPump(0, 0), input: make(chan []byte, 256), stop: make(chan struct{}), finished: make(chan struct{})}
	cfg.Out = consoleSink{l}
	cfg.In = nil
	l.status(recording.Status{State: recording.StateBooting})
	s, err := session.Start(cfg)
	if err != nil {
		l.status(recording.Status{State: recording.StateFailed, Reason: err.Error()})
		l.pump.Close()
		return nil, err
	}
	l.s = s
	l.start = s.Tap().Start()
	info := recording.Config{Engine: s.Engine(), Accel: s.Accel(), CPUs: cfg.CPUs, MemMiB: cfg.MemMiB, RootFS: cfg.RootFS, Init: payloadName(cfg.Payload)}
	l.pump.Info(info)
	if record != "" {
		if err := l.openRecording(record, info); err != nil {
			s.Stop()
			s.Wait()
			l.pump.Close()
			return nil, err
		}
	}
	l.sub = s.Tap().Subscribe(trace.DefaultSubscriberBuffer)
	l.done.Add(3)
	go l.events()
	go l.periodic()
	go l.writeInput()
	go l.wait()
	return l, nil
}

func (l *liveSource) status(st recording.Status) {
	l.pump.Status(st)
	if rec := l.rec.Load(); rec != nil {
		_ = rec.Status(st)
	}
}

// scanMilestones finds the init's milestone lines in console output.
func (l *liveSource) scanMilestones(b []byte) {
	l.lineMu.Lock()
	defer l.lineMu.Unlock()
	l.line = append(l.line, b...)
	for {
		i := bytes.IndexByte(l.line, '\n')
		if i < 0 {
			break
		}
		if m, ok := milestone.Parse(string(l.line[:i])); ok {
			ms := recording.Milestone{Name: m.Name, Boot: m.Boot, At: time.Since(l.start), Code: m.Code, HasCode: m.HasCode}
			l.pump.Milestone(ms)
			if rec := l.rec.Load(); rec != nil {
				_ = rec.Milestone(ms)
			}
		}
		l.line = l.line[i+1:]
	}
	if len(l.line) > 4096 {
		l.line = l.line[len(l.line)-4096:]
	}
}

func (l *liveSource) events() {
	defer l.done.Done()
	tap := l.s.Tap()
	for ev := range l.sub.C() {
		tap.Resolve(&ev)
		l.pump.Event(ev)
		if rec := l.rec.Load(); rec != nil {
			_ = rec.Event(ev)
		}
	}
}

// How often the live source sends statistics and the inode table. Listing
// the inodes locks the filesystem's inode table and builds every path, a
// cost that grows with the table (50,000 rows after a find over as many
// files), so the listing also waits inodeDuty times as long as the last
// one took: the guest's server is never held up more than 1/inodeDuty of
// the time.
const (
	statsEvery = 250 * time.Millisecond
	inodeEvery = time.Second
	inodeDuty  = 50
)

func (l *liveSource) periodic() {
	defer l.done.Done()
	tick := time.NewTicker(statsEvery)
	defer tick.Stop()
	running := false
	var nextInodes time.Time
	for {
		select {
		case <-tick.C:
		case <-l.s.Done():
			return
		}
		tap := l.s.Tap()
		l.pump.Stats(tap.Stats())
		if now := time.Now(); !now.Before(nextInodes) {
			l.pump.Inodes(tap.Inodes())
			nextInodes = now.Add(max(inodeEvery, inodeDuty*time.Since(now)))
		}
		if d := l.sub.Dropped(); d > l.reported {
			l.pump.AddDropped(d - l.reported)
			l.reported = d
		}
		if !running && tap.Seq() > 0 {
			running = true
			l.status(recording.Status{State: recording.StateRunning})
		}
	}
}

func (l *liveSource) writeInput() {
	defer l.done.Done()
	for {
		select {
		case b := <-l.input:
			_, _ = l.s.Input(b)
		case <-l.s.Done():
			return
		}
	}
}

// wait reports how the guest ended and closes the stream. The last
// statistics and inode table are sent after every event, so the panes
// end in the final state and agree with each other.
func (l *liveSource) wait() {
	defer close(l.finished)
	res, err := l.s.Wait()
	l.sub.Close()
	l.done.Wait()
	tap := l.s.Tap()
	l.pump.Stats(tap.Stats())
	l.pump.Inodes(tap.Inodes())
	if d := l.sub.Dropped(); d > l.reported {
		l.pump.AddDropped(d - l.reported)
	}
	switch {
	case err != nil:
		l.status(recording.Status{State: recording.StateFailed, Reason: err.Error()})
	default:
		l.status(recording.Status{State: recording.StateExited, Code: res.ExitCode})
	}
	if rec := l.rec.Swap(nil); rec != nil {
		_ = rec.Close()
		l.file.Close()
	}
	l.pump.Close()
}

// recordFlushAfter bounds how long a record waits in the buffer: a
// krunbench killed with SIGKILL loses at most that much of its recording.
const recordFlushAfter = 500 * time.Millisecond

// openRecording starts recording the session to path.
func (l *liveSource) openRecording(path string, info recording.Config) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--record: %w", err)
	}
	rec, err := recording.NewWriter(f, recording.Header{Version: recording.Version, Created: time.Now(), Config: info},
		recording.WithFlushAfter(recordFlushAfter))
	if err != nil {
		f.Close()
		return err
	}
	l.file = f
	l.rec.Store(rec)
	_ = rec.Status(recording.Status{State: recording.StateBooting})
	return nil
}

// Events is the pump's channel.
func (l *liveSource) Events() <-chan tui.SourceMsg { return l.pump.C() }

// Input queues keystrokes for the guest; when the guest does not read
// them and the queue is full, they are dropped rather than block the UI.
func (l *liveSource) Input(b []byte) {
	if rec := l.rec.Load(); rec != nil {
		_ = rec.Input(b)
	}
	select {
	case l.input <- append([]byte(nil), b...):
	default:
	}
}

// Resize sets the guest console's size.
func (l *liveSource) Resize(cols, rows int) {
	if rec := l.rec.Load(); rec != nil {
		_ = rec.Resize(cols, rows)
	}
	l.s.Resize(terminal.Size{Cols: uint16(cols), Rows: uint16(rows)})
}

// Stop ends the guest.
func (l *liveSource) Stop() { l.once.Do(l.s.Stop) }

// RunsGuest says that stopping this source stops a guest (the TUI asks
// before it quits).
func (l *liveSource) RunsGuest() bool { return true }

// Close stops the guest and waits, up to limit, until the session has
// released everything; it reports whether it did.
func (l *liveSource) Close(limit time.Duration) bool {
	l.Stop()
	select {
	case <-l.finished:
		return true
	case <-time.After(limit):
		return false
	}
}
