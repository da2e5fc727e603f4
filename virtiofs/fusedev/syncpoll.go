package fusedev

import (
	"time"

	"golang.org/x/sys/unix"
)

// A short poll of /dev/fuse before a reader blocks in read(2), while the
// stream of requests looks synchronous (issue 15's sequential write: every
// 512 KiB WRITE waits for its reply before the client copies the next).
//
// A reader blocked in read(2) is woken by the client's next request. On
// this machine (a paravirtualised guest with no cpuidle driver) a vCPU
// with nothing to run halts, and waking a thread on it takes an IPI
// through the hypervisor; in the write phase both CPUs are 59-67% idle,
// so each WRITE pays that wakeup. A reader that polls with a zero timeout
// instead keeps its CPU awake and sees the request without being woken.
//
// When it polls: a request read within syncGap of the last reply counts
// towards a streak; after syncStreak such requests in a row the reader
// polls, up to the poll window after the later of its start and the last
// reply (a reply by another worker, such as the WRITE being served while
// this reader waits, moves the window on), and never more than maxSpin in
// all. A poll that finds nothing ends the streak, so a client that slows
// down gets blocking reads again until it shows a streak anew. At most
// one reader polls at a time (Mount.spinning); it holds only its own
// reader token, as a reader blocked in read(2) does.

// DefaultSyncPoll is the poll window Options.SyncPoll defaults to.
const DefaultSyncPoll = 300 * time.Microsecond

// syncStreak is how many requests in a row must come within the window
// of the previous reply before a reader polls.
const syncStreak = 3

// maxSpin bounds one poll however often replies move the window.
const maxSpin = 2 * time.Millisecond

// now is the mount's clock: monotonic nanoseconds since it was made.
func (m *Mount) now() int64 { return int64(time.Since(m.epoch)) }

// replied records that a reply went out.
func (m *Mount) replied() {
	if m.syncPoll > 0 {
		m.lastReply.Store(m.now())
	}
}

// arrived updates the streak for a request just read.
func (m *Mount) arrived() {
	if m.syncPoll <= 0 {
		return
	}
	if m.now()-m.lastReply.Load() <= int64(m.syncPoll) {
		if m.streak.Load() < syncStreak {
			m.streak.Add(1)
		}
		return
	}
	m.streak.Store(0)
}

// pollBeforeRead polls fd until a request is queued or the window closes,
// when the stream looks synchronous and no other reader is polling.
func (m *Mount) pollBeforeRead(fd int) {
	if m.syncPoll <= 0 || m.streak.Load() < syncStreak || !m.spinning.CompareAndSwap(false, true) {
		return
	}
	defer m.spinning.Store(false)
	start := m.now()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if n > 0 || (err != nil && err != unix.EINTR) {
			m.pollHits.Add(1)
			return
		}
		// Yield between polls: a spinner that kept its CPU made the
		// client its reply woke wait for it (measured below).
		_, _, _ = unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
		t := m.now()
		if t-max(start, m.lastReply.Load()) > int64(m.syncPoll) || t-start > int64(maxSpin) {
			m.pollMisses.Add(1)
			m.streak.Store(0)
			return
		}
	}
}

// SyncPolls reports how many polls before a read found a request (hits)
// and how many gave up and blocked in read(2) (misses).
func (m *Mount) SyncPolls() (hits, misses uint64) {
	return m.pollHits.Load(), m.pollMisses.Load()
}
