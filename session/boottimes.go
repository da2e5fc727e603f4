package session

import (
	"io"
	"sync"
	"time"

	"github.com/krunbench/krunbench/initlib/milestone"
)

// BootTimes are the moments of one run as the host sees them, as offsets
// from Start. Zero means the moment was not seen (KernelEntry and Exec
// without the default init's boot trace, on QEMU).
type BootTimes struct {
	// VMCreated: KVM: the VM is built (memory, kernel loaded, devices,
	// vCPUs); QEMU: the process is started.
	VMCreated time.Duration
	// KernelEntry: vCPU 0 first entered the guest (KVM); on QEMU, the
	// host time of the init's first milestone less the guest's time since
	// boot that it reports (CLOCK_BOOTTIME), when the init traces.
	KernelEntry time.Duration
	// FirstRequest: the guest's first FUSE request (its INIT) arrived.
	FirstRequest time.Duration
	// InitEOF: the READ at /init.krun's end that returned 0 bytes arrived.
	InitEOF time.Duration
	// Exec: the default init's "exec" milestone reached the console.
	Exec time.Duration
	// Exit: the engine ended.
	Exit time.Duration
}

// since is t as an offset from start, zero for a zero t.
func since(start, t time.Time) time.Duration {
	if t.IsZero() {
		return 0
	}
	return max(t.Sub(start), 0)
}

// milestoneWatch is an io.Writer on the console output that notes when
// the default init's exec milestone line arrives.
type milestoneWatch struct {
	mu   sync.Mutex
	line []byte
	exec time.Time
	// booted is the host time of the guest's boot as the first
	// milestone tells it: when the line arrived less its time since boot.
	booted time.Time
}

// maxMilestoneLine bounds the line kept while looking for a milestone.
const maxMilestoneLine = 256

func (w *milestoneWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.exec.IsZero() {
		return len(p), nil
	}
	for _, c := range p {
		if c != '\n' {
			if len(w.line) < maxMilestoneLine {
				w.line = append(w.line, c)
			}
			continue
		}
		m, ok := milestone.Parse(string(w.line))
		if ok && w.booted.IsZero() {
			w.booted = time.Now().Add(-m.Boot)
		}
		if ok && m.Name == milestone.Exec {
			w.exec = time.Now()
			return len(p), nil
		}
		w.line = w.line[:0]
	}
	return len(p), nil
}

func (w *milestoneWatch) execAt() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.exec
}

func (w *milestoneWatch) bootedAt() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.booted
}

// entered is implemented by engines that know when the guest's kernel
// was entered.
type entered interface{ Entered() time.Time }

// bootTimes collects the run's moments; called once the engine ended.
func (s *Session) bootTimes() BootTimes {
	b := BootTimes{
		VMCreated:    since(s.t0, s.vmCreated),
		FirstRequest: since(s.t0, s.fs.tap.FirstRequest()),
		InitEOF:      since(s.t0, s.fs.tap.InitEOF()),
		Exec:         since(s.t0, s.milestones.execAt()),
		Exit:         since(s.t0, s.exited),
	}
	if e, ok := s.proc.(entered); ok {
		b.KernelEntry = since(s.t0, e.Entered())
	}
	if b.KernelEntry == 0 {
		b.KernelEntry = since(s.t0, s.milestones.bootedAt())
	}
	return b
}

// milestonePrefix starts every milestone line of the default init.
const milestonePrefix = "krun-init: milestone "

// milestoneFilter passes console output on to w without the init's
// milestone lines (Config.HideMilestones). It holds back only the start
// of a line while it could still be a milestone, so a prompt without a
// newline is not delayed.
type milestoneFilter struct {
	w        io.Writer
	held     []byte // the current line's start, a prefix of milestonePrefix
	midLine  bool   // the current line is not a milestone: pass it on
	dropping bool   // the current line is a milestone: drop it
}

func newMilestoneFilter(w io.Writer) *milestoneFilter { return &milestoneFilter{w: w} }

func (f *milestoneFilter) Write(p []byte) (int, error) {
	out := make([]byte, 0, len(p)+len(f.held))
	for _, c := range p {
		switch {
		case f.dropping:
			if c == '\n' {
				f.dropping = false
			}
		case f.midLine:
			out = append(out, c)
			if c == '\n' {
				f.midLine = false
			}
		default: // at the start of a line
			f.held = append(f.held, c)
			switch {
			case len(f.held) == len(milestonePrefix) && string(f.held) == milestonePrefix:
				f.held, f.dropping = f.held[:0], true
			case string(f.held) != milestonePrefix[:len(f.held)]:
				out = append(out, f.held...)
				f.midLine = c != '\n'
				f.held = f.held[:0]
			}
		}
	}
	if len(out) > 0 {
		if _, err := f.w.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}
