package main

import (
	"maps"
	"testing"
	"time"

	"github.com/krunbench/krunbench/session"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// TestLivePanesEndInTheFinalState boots a real guest (QEMU, TCG) whose
// workload walks /etc and /bin and exits at once, and reads the
// workbench's live source to its end, as the TUI does. The last
// statistics and inode table it delivers must be the tap's final ones:
// the statistics count every request delivered, and the inode table is
// the tap's table after the guest ended (issue 12 item 7: the stats pane
// froze at 220 requests while the traffic showed 244, and an inode was
// missing from the table).
func TestLivePanesEndInTheFinalState(t *testing.T) {
	requireQEMU(t)
	payload, err := resolvePayload("default")
	if err != nil {
		t.Fatal(err)
	}
	cfg := session.Config{
		Engine: session.EngineQEMU, Accel: "tcg", RootFS: busyboxRootfs(t), Kernel: guestKernel(t),
		CPUs: 1, MemMiB: 256, Payload: payload,
		Program: "/bin/sh", Args: []string{"-c", "ls -lR /etc /bin >/dev/null; exit 3"},
	}
	l, err := startLive(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(60 * time.Second) })
	var (
		events, dropped uint64
		stats           *trace.Snapshot
		inodes          []trace.InodeRow
	)
	deadline := time.After(300 * time.Second)
	for open := true; open; {
		select {
		case m, ok := <-l.Events():
			if !ok {
				open = false
				break
			}
			events += uint64(len(m.Events))
			dropped = max(dropped, m.Dropped)
			if m.Stats != nil {
				stats = m.Stats
			}
			if m.Inodes != nil {
				inodes = m.Inodes
			}
		case <-deadline:
			t.Fatal("the live source did not end within 300s of the launch")
		}
	}
	if stats == nil || inodes == nil {
		t.Fatalf("no statistics (%v) or inode table (%v) delivered", stats != nil, inodes != nil)
	}
	if got := stats.Total.Count; got != events+dropped {
		t.Errorf("last statistics count %d requests; %d were delivered and %d dropped", got, events, dropped)
	}
	key := func(rows []trace.InodeRow) map[uint64]trace.InodeRow {
		m := map[uint64]trace.InodeRow{}
		for _, r := range rows {
			r.LastAccess = time.Time{}
			m[r.Nodeid] = r
		}
		return m
	}
	final := key(l.s.Tap().Inodes())
	if shown := key(inodes); !maps.Equal(shown, final) {
		t.Errorf("last inode table delivered (%d rows) differs from the tap's final table (%d rows)", len(shown), len(final))
		for id, r := range final {
			if s, ok := shown[id]; !ok || s != r {
				t.Errorf("nodeid %d: shown %+v, final %+v", id, s, r)
			}
		}
	}
}
