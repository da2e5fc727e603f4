package session

import (
	"sync"
	"time"

	"github.com/krunbench/krunbench/initlib/milestone"
)

// BootTimes are the moments of one run as the host sees them, as offsets
// from Start. Zero means the moment was not seen (KernelEntry on QEMU,
// Exec without the default init's boot trace).
type BootTimes struct {
	// VMCreated: KVM: the VM is built (memory, kernel loaded, devices,
	// vCPUs); QEMU: the process is started.
	VMCreated time.Duration
	// KernelEntry: vCPU 0 first entered the guest (KVM only).
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
		if m, ok := milestone.Parse(string(w.line)); ok && m.Name == milestone.Exec {
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
	return b
}
