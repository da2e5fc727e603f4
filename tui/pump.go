package tui

import (
	"sync"
	"time"

	"github.com/krunbench/krunbench/session/recording"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// Default bounds of a Pump's pending buffer, and the default shortest
// time between two of its deliveries.
const (
	DefaultPumpEvents   = 8192
	DefaultPumpConsole  = 1 << 20
	DefaultPumpInterval = 66 * time.Millisecond
)

// Pump is the producer side of a Source: its methods hand data over
// without ever blocking, and a goroutine of its own delivers what is
// pending as one SourceMsg at a time on C, coalescing while the reader
// lags and dropping (counted) past its bounds. See the package
// documentation for what it keeps and what it drops.
//
// Each delivery is a frame for the UI, so the pump paces them: it
// delivers at once when the previous delivery is at least the interval
// old (a key's echo is not delayed), else it waits out the interval and
// delivers everything that came meanwhile as one batch. A flood of small
// batches becomes a bounded frame rate.
type Pump struct {
	maxEvents, maxConsole int
	interval              time.Duration

	mu      sync.Mutex
	room    sync.Cond // signalled when pending console bytes were taken, or on Close
	pending SourceMsg
	has     bool
	closing bool
	dropped uint64
	updrop  uint64
	cdrop   uint64

	wake  chan struct{}
	abort chan struct{}
	once  sync.Once
	out   chan SourceMsg
}

// NewPump starts a pump that keeps at most maxEvents events and
// maxConsole console bytes pending, delivering at most once per
// DefaultPumpInterval; 0 means the defaults.
func NewPump(maxEvents, maxConsole int) *Pump {
	return NewPumpInterval(maxEvents, maxConsole, DefaultPumpInterval)
}

// NewPumpInterval is NewPump with the shortest time between two
// deliveries; 0 or less delivers as soon as the reader takes it.
func NewPumpInterval(maxEvents, maxConsole int, interval time.Duration) *Pump {
	if maxEvents <= 0 {
		maxEvents = DefaultPumpEvents
	}
	if maxConsole <= 0 {
		maxConsole = DefaultPumpConsole
	}
	p := &Pump{
		maxEvents: maxEvents, maxConsole: maxConsole, interval: max(interval, 0),
		wake: make(chan struct{}, 1), abort: make(chan struct{}), out: make(chan SourceMsg),
	}
	p.room.L = &p.mu
	go p.forward()
	return p
}

// C is the channel a Source's Events returns.
func (p *Pump) C() <-chan SourceMsg { return p.out }

func (p *Pump) add(f func(m *SourceMsg)) {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return
	}
	f(&p.pending)
	p.markPendingLocked()
	p.mu.Unlock()
	p.signal()
}

// markPendingLocked records that something is pending, stamping when the
// first of it was queued; p.mu is held.
func (p *Pump) markPendingLocked() {
	if !p.has {
		p.pending.Queued = time.Now()
	}
	p.has = true
}

// signal wakes the forwarder without blocking; one wake-up pending is enough.
func (p *Pump) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Console queues console output; b is copied.
func (p *Pump) Console(b []byte) {
	if len(b) == 0 {
		return
	}
	p.add(func(m *SourceMsg) {
		m.Console = append(m.Console, b...)
		if over := len(m.Console) - p.maxConsole; over > 0 {
			m.Console = append(m.Console[:0], m.Console[over:]...)
			p.cdrop += uint64(over)
		}
	})
}

// ConsoleWait queues console output like Console, but never drops it:
// while maxConsole bytes are pending it waits for the reader to take them
// (or for Close). A live console calls it from the session's console
// reader, so a UI that lags slows the guest's printing down instead of
// losing what it printed. b is copied.
func (p *Pump) ConsoleWait(b []byte) {
	for len(b) > 0 {
		p.mu.Lock()
		for !p.closing && len(p.pending.Console) >= p.maxConsole {
			p.room.Wait()
		}
		if p.closing {
			p.mu.Unlock()
			return
		}
		n := min(len(b), p.maxConsole-len(p.pending.Console))
		p.pending.Console = append(p.pending.Console, b[:n]...)
		b = b[n:]
		p.markPendingLocked()
		p.mu.Unlock()
		p.signal()
	}
}

// Event queues a FUSE request.
func (p *Pump) Event(ev trace.Event) {
	p.add(func(m *SourceMsg) {
		if len(m.Events) >= p.maxEvents {
			n := copy(m.Events, m.Events[1:])
			m.Events = m.Events[:n]
			p.dropped++
		}
		m.Events = append(m.Events, ev)
	})
}

// Milestone queues a boot milestone.
func (p *Pump) Milestone(ms recording.Milestone) {
	p.add(func(m *SourceMsg) { m.Milestones = append(m.Milestones, ms) })
}

// Status queues a state change.
func (p *Pump) Status(s recording.Status) {
	p.add(func(m *SourceMsg) { m.Status = append(m.Status, s) })
}

// Info queues the session's description.
func (p *Pump) Info(c recording.Config) {
	p.add(func(m *SourceMsg) { m.Info = &c })
}

// Stats replaces the pending statistics snapshot.
func (p *Pump) Stats(s trace.Snapshot) {
	p.add(func(m *SourceMsg) { m.Stats = &s })
}

// Inodes replaces the pending inode table; rows is not copied.
func (p *Pump) Inodes(rows []trace.InodeRow) {
	if rows == nil {
		rows = []trace.InodeRow{}
	}
	p.add(func(m *SourceMsg) { m.Inodes = rows })
}

// AddDropped counts events lost before they reached the pump (a lagging
// tap subscription, say).
func (p *Pump) AddDropped(n uint64) {
	p.add(func(*SourceMsg) { p.dropped += n; p.updrop += n })
}

// Close delivers what is pending, then closes C. Later calls to the
// queueing methods are ignored.
func (p *Pump) Close() {
	p.mu.Lock()
	p.closing = true
	p.room.Broadcast()
	p.mu.Unlock()
	p.signal()
}

// Abort stops delivering at once, drops what is pending and closes C; for
// a reader that went away.
func (p *Pump) Abort() {
	p.Close()
	p.once.Do(func() { close(p.abort) })
}

func (p *Pump) isClosing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closing
}

func (p *Pump) take() (m SourceMsg, ok, closing bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, ok, closing = p.pending, p.has, p.closing
	m.Dropped, m.UpstreamDropped, m.ConsoleDropped = p.dropped, p.updrop, p.cdrop
	p.pending, p.has = SourceMsg{}, false
	p.room.Broadcast()
	return m, ok, closing
}

func (p *Pump) forward() {
	defer close(p.out)
	var last time.Time
	var pace *time.Timer
	for {
		select {
		case <-p.wake:
		case <-p.abort:
			return
		}
		if wait := p.interval - time.Since(last); wait > 0 && !p.isClosing() {
			if pace == nil {
				pace = time.NewTimer(wait)
			} else {
				pace.Reset(wait)
			}
			select {
			case <-pace.C:
			case <-p.abort:
				return
			}
		}
		m, ok, closing := p.take()
		if ok {
			select {
			case p.out <- m:
				last = time.Now()
			case <-p.abort:
				return
			}
		}
		if closing {
			if m, ok, _ := p.take(); ok {
				select {
				case p.out <- m:
				case <-p.abort:
				}
			}
			return
		}
	}
}
