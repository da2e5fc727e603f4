package fusedev_test

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// testSyncPoll is the poll window of TestSyncPollFollowsTheClient: wide,
// so that a busy machine's scheduling delays still count as a fast
// client, and a sleep well past it is a slow one.
const testSyncPoll = 20 * time.Millisecond

// TestSyncPollFollowsTheClient drives the poll before a read
// (syncpoll.go) through a real mount with a serial client of LOOKUPs
// (lstat of names that do not exist, each once, so every call reaches the
// server). A client that sends its next request long after each reply
// (sleeps of 3 windows) gets no poll at all, neither one that finds a
// request nor one that gives up; a client that sends the next request
// right after each reply gets polls that find them. Then the slow client
// again: at most the one poll already under way when it slowed down
// gives up, and none finds a request.
func TestSyncPollFollowsTheClient(t *testing.T) {
	mt := mount(t, mountOpts{syncPoll: testSyncPoll})
	lookups := func(n int, pause time.Duration, tag string) {
		t.Helper()
		for i := range n {
			if pause > 0 {
				time.Sleep(pause)
			}
			if _, err := os.Lstat(mt.path(fmt.Sprintf("missing-%s-%d", tag, i))); !os.IsNotExist(err) {
				t.Fatalf("lstat of a missing name: %v", err)
			}
		}
	}
	slow := 3 * testSyncPoll
	// Whatever the mount's first requests started ends within a window.
	time.Sleep(slow)
	hits0, misses0 := mt.syncPolls(t)

	lookups(10, slow, "slow")
	hits1, misses1 := mt.syncPolls(t)
	if hits1 != hits0 || misses1 != misses0 {
		t.Fatalf("slow client: %d polls found a request and %d gave up, want none", hits1-hits0, misses1-misses0)
	}

	lookups(2000, 0, "fast")
	hits2, misses2 := mt.syncPolls(t)
	if hits2 == hits1 {
		t.Fatalf("fast client: no poll found a request (%d gave up)", misses2-misses1)
	}
	t.Logf("fast client, 2000 LOOKUPs: %d polls found a request, %d gave up", hits2-hits1, misses2-misses1)

	lookups(10, slow, "slow-again")
	hits3, misses3 := mt.syncPolls(t)
	if hits3 != hits2 || misses3 > misses2+1 {
		t.Fatalf("slow client after a fast one: %d polls found a request and %d gave up, want none and at most one",
			hits3-hits2, misses3-misses2)
	}
}

// TestSyncPollOff: with polling off (Options.SyncPoll negative) the fast
// client of TestSyncPollFollowsTheClient gets no poll.
func TestSyncPollOff(t *testing.T) {
	mt := mount(t, mountOpts{syncPoll: -1})
	for i := range 500 {
		if _, err := os.Lstat(mt.path(fmt.Sprintf("missing-%d", i))); !os.IsNotExist(err) {
			t.Fatalf("lstat of a missing name: %v", err)
		}
	}
	if hits, misses := mt.syncPolls(t); hits != 0 || misses != 0 {
		t.Fatalf("polling off: %d polls found a request, %d gave up", hits, misses)
	}
}
