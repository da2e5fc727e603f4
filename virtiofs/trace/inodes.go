package trace

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

const (
	nodeShards = 64
	// maxShardNodes bounds a shard when no lister prunes it: past it, an
	// entry without open handles is evicted for each new one.
	maxShardNodes = 4096
)

// InodeRow is one row of the live inode table: what the filesystem
// reports about a nodeid merged with what the tap counted for it.
type InodeRow struct {
	Nodeid    uint64 `json:"nodeid"`
	Path      string `json:"path,omitempty"`
	Nlookup   uint64 `json:"nlookup,omitempty"`
	Synthetic bool   `json:"syn,omitempty"`
	// Open is OPEN, OPENDIR and CREATE successes minus RELEASE and
	// RELEASEDIR seen since the tap started.
	Open         int64  `json:"open,omitempty"`
	BytesRead    uint64 `json:"read,omitempty"`
	BytesWritten uint64 `json:"written,omitempty"`
	// Ops counts the requests about this nodeid (or that created it).
	Ops uint64 `json:"ops,omitempty"`
	// LastAccess is when the latest of them arrived; zero if none did.
	LastAccess time.Time `json:"last,omitzero"`
}

type nodeCounters struct {
	open    int64
	read    uint64
	written uint64
	ops     uint64
	last    time.Duration
	epoch   uint64
	path    string
}

type nodeShard struct {
	mu sync.Mutex
	m  map[uint64]*nodeCounters
	_  [48]byte
}

// nodeTable holds per-nodeid counters, sharded by nodeid so concurrent
// requests about different files rarely share a lock. epoch lets a merge
// prune only entries last touched before it listed the filesystem. A
// table that was never initialised (Options.NoNodeCounters) is off: it
// keeps nothing and every lookup misses.
type nodeTable struct {
	shards [nodeShards]nodeShard
	epoch  atomic.Uint64
	on     bool
}

func (nt *nodeTable) init() {
	for i := range nt.shards {
		nt.shards[i].m = make(map[uint64]*nodeCounters)
	}
	nt.on = true
}

func (nt *nodeTable) shard(nodeid uint64) *nodeShard {
	return &nt.shards[nodeid%nodeShards]
}

// entry returns nodeid's counters, creating them; the shard must be locked.
func (sh *nodeShard) entry(nodeid uint64) *nodeCounters {
	if e := sh.m[nodeid]; e != nil {
		return e
	}
	if len(sh.m) >= maxShardNodes {
		for k, e := range sh.m {
			if e.open <= 0 {
				delete(sh.m, k)
				break
			}
		}
	}
	e := &nodeCounters{}
	sh.m[nodeid] = e
	return e
}

func (nt *nodeTable) touch(ev *Event) {
	if !nt.on {
		return
	}
	epoch := nt.epoch.Load()
	ok := ev.Errno == 0
	if ev.Nodeid != 0 {
		var open int64
		var read, written uint64
		switch ev.Op {
		case fuse.OpOpen, fuse.OpOpendir:
			if ok {
				open = 1
			}
		case fuse.OpRelease, fuse.OpReleasedir:
			open = -1
		case fuse.OpRead:
			if ok && ev.Bytes > 0 {
				read = uint64(ev.Bytes)
			}
		case fuse.OpWrite:
			if ok && ev.Bytes > 0 {
				written = uint64(ev.Bytes)
			}
		}
		nt.bump(ev.Nodeid, epoch, ev.Time, open, read, written)
	}
	if ok && ev.NewNodeid != 0 && ev.NewNodeid != ev.Nodeid {
		var open int64
		if ev.Op == fuse.OpCreate {
			open = 1
		}
		nt.bump(ev.NewNodeid, epoch, ev.Time, open, 0, 0)
	}
}

func (nt *nodeTable) bump(nodeid, epoch uint64, at time.Duration, open int64, read, written uint64) {
	sh := nt.shard(nodeid)
	sh.mu.Lock()
	e := sh.entry(nodeid)
	e.open += open
	e.read += read
	e.written += written
	e.ops++
	e.last = max(e.last, at)
	e.epoch = epoch
	sh.mu.Unlock()
}

// rememberPath records p as nodeid's path when it is known and returns it,
// or returns the last path remembered when p is empty.
func (nt *nodeTable) rememberPath(nodeid uint64, p string) string {
	if !nt.on {
		return p
	}
	sh := nt.shard(nodeid)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[nodeid]
	switch {
	case e == nil:
	case p != "":
		if e.path != p {
			e.path = p
		}
	default:
		p = e.path
	}
	return p
}

func (nt *nodeTable) get(nodeid uint64) (nodeCounters, bool) {
	if !nt.on {
		return nodeCounters{}, false
	}
	sh := nt.shard(nodeid)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.m[nodeid]; e != nil {
		return *e, true
	}
	return nodeCounters{}, false
}

func (t *Tap) fillRow(r *InodeRow, c *nodeCounters) {
	r.Open = max(c.open, 0)
	r.BytesRead = c.read
	r.BytesWritten = c.written
	r.Ops = c.ops
	r.LastAccess = t.start.Add(c.last)
	if r.Path == "" {
		r.Path = c.path
	}
}

// Inodes returns the live inode table sorted by nodeid. With an
// InodeLister, its rows are the filesystem's table merged with the tap's
// counters, and counters of nodeids it no longer reports are dropped.
// Without one, its rows are the nodeids the tap has seen. With
// Options.NoNodeCounters, rows carry no counters (and without a lister
// there are none).
func (t *Tap) Inodes() []InodeRow {
	if t.lister == nil {
		return t.seenInodes()
	}
	cutoff := t.nodes.epoch.Add(1) - 1
	infos := t.lister.Inodes()
	rows := make([]InodeRow, len(infos))
	live := make(map[uint64]struct{}, len(infos))
	for i, in := range infos {
		rows[i] = InodeRow{Nodeid: in.Nodeid, Path: in.Path, Nlookup: in.Nlookup, Synthetic: in.Synthetic}
		live[in.Nodeid] = struct{}{}
		if c, ok := t.nodes.get(in.Nodeid); ok {
			t.fillRow(&rows[i], &c)
		}
	}
	for i := range t.nodes.shards {
		sh := &t.nodes.shards[i]
		sh.mu.Lock()
		for id, e := range sh.m {
			if _, ok := live[id]; !ok && e.epoch <= cutoff {
				delete(sh.m, id)
			}
		}
		sh.mu.Unlock()
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Nodeid < rows[j].Nodeid })
	return rows
}

func (t *Tap) seenInodes() []InodeRow {
	var rows []InodeRow
	for i := range t.nodes.shards {
		sh := &t.nodes.shards[i]
		sh.mu.Lock()
		for id, e := range sh.m {
			r := InodeRow{Nodeid: id}
			t.fillRow(&r, e)
			rows = append(rows, r)
		}
		sh.mu.Unlock()
	}
	for i := range rows {
		if t.resolver != nil {
			if p := t.resolver.PathOf(rows[i].Nodeid); p != "" {
				rows[i].Path = p
			}
		}
		if rows[i].Path == "" && rows[i].Nodeid == fuse.RootID {
			rows[i].Path = "/"
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Nodeid < rows[j].Nodeid })
	return rows
}
