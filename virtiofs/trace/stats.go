package trace

import (
	"math"
	"math/bits"
	"sort"
	"sync/atomic"
	"time"
)

// numOps is how many opcodes are counted one by one; larger opcodes (CUSE,
// garbage from a malformed header) share the slot numOps.
const numOps = 64

// NumBuckets is the number of latency histogram buckets. Bucket 0 holds
// latencies under 1µs; bucket i (1..NumBuckets-2) holds [2^(i-1), 2^i) µs;
// the last holds everything from 2^(NumBuckets-2) µs (about 1.05s) up.
const NumBuckets = 22

// BucketRange returns the bounds [lo, hi) of histogram bucket i; hi is 0
// for the last, unbounded bucket.
func BucketRange(i int) (lo, hi time.Duration) {
	switch {
	case i <= 0:
		return 0, time.Microsecond
	case i >= NumBuckets-1:
		return time.Duration(1<<(NumBuckets-2)) * time.Microsecond, 0
	}
	return time.Duration(1<<(i-1)) * time.Microsecond, time.Duration(1<<i) * time.Microsecond
}

func bucketOf(d time.Duration) int {
	if d < time.Microsecond {
		return 0
	}
	return min(bits.Len64(uint64(d/time.Microsecond)), NumBuckets-1)
}

// Latency summarises a latency distribution: a log2 histogram (see
// NumBuckets), its sum and maximum, and percentile estimates from it.
type Latency struct {
	Sum     time.Duration      `json:"sum"`
	Max     time.Duration      `json:"max"`
	P50     time.Duration      `json:"p50"`
	P99     time.Duration      `json:"p99"`
	Buckets [NumBuckets]uint64 `json:"buckets"`
}

// Add records one latency; P50 and P99 are refreshed by Finish.
func (l *Latency) Add(d time.Duration) {
	d = max(d, 0)
	l.Buckets[bucketOf(d)]++
	l.Sum += d
	l.Max = max(l.Max, d)
}

// Merge adds o's histogram, sum and maximum to l.
func (l *Latency) Merge(o *Latency) {
	for i := range l.Buckets {
		l.Buckets[i] += o.Buckets[i]
	}
	l.Sum += o.Sum
	l.Max = max(l.Max, o.Max)
}

// Finish computes P50 and P99 from the histogram.
func (l *Latency) Finish() {
	l.P50 = l.Percentile(0.50)
	l.P99 = l.Percentile(0.99)
}

// Count is the number of latencies recorded.
func (l *Latency) Count() uint64 {
	var n uint64
	for _, c := range l.Buckets {
		n += c
	}
	return n
}

// Mean is the average latency, 0 when nothing was recorded.
func (l *Latency) Mean() time.Duration {
	n := l.Count()
	if n == 0 {
		return 0
	}
	return l.Sum / time.Duration(n)
}

// Percentile estimates the p-quantile (0 < p <= 1) by linear interpolation
// inside the bucket that holds it (each latency taken at the middle of its
// share of the bucket), never above Max.
func (l *Latency) Percentile(p float64) time.Duration {
	n := l.Count()
	if n == 0 {
		return 0
	}
	if p >= 1 {
		return l.Max
	}
	p = math.Max(p, 0)
	rank := max(math.Ceil(p*float64(n)), 1)
	var cum float64
	for i, c := range l.Buckets {
		if c == 0 {
			continue
		}
		if cum+float64(c) < rank {
			cum += float64(c)
			continue
		}
		lo, hi := BucketRange(i)
		if hi == 0 || hi > l.Max {
			hi = max(l.Max, lo)
		}
		est := lo + time.Duration((rank-cum-0.5)/float64(c)*float64(hi-lo))
		return min(est, l.Max)
	}
	return l.Max
}

// OpStats counts one opcode's requests. Errors include dropped requests;
// Bytes sums the result byte counts.
type OpStats struct {
	Op      uint32  `json:"op"`
	Name    string  `json:"name"`
	Count   uint64  `json:"count"`
	Errors  uint64  `json:"errors"`
	Bytes   uint64  `json:"bytes"`
	Latency Latency `json:"lat"`
}

func (s *OpStats) add(ev *Event) {
	s.Count++
	if !ev.OK() {
		s.Errors++
	}
	if ev.Bytes > 0 {
		s.Bytes += uint64(ev.Bytes)
	}
	s.Latency.Add(ev.Latency)
}

func (s *OpStats) merge(o *OpStats) {
	s.Count += o.Count
	s.Errors += o.Errors
	s.Bytes += o.Bytes
	s.Latency.Merge(&o.Latency)
}

// Drops counts what the trace lost or the server refused: events
// overwritten in the ring, events not delivered to lagging subscribers
// (summed over all subscribers, past and present), and malformed requests
// the server dropped.
type Drops struct {
	RingOverwritten uint64 `json:"ring"`
	Subscribers     uint64 `json:"subs"`
	Malformed       uint64 `json:"malformed"`
}

// Snapshot is a copy of a tap's statistics at Time. Take two and call
// RatesSince to get rates.
type Snapshot struct {
	Time        time.Time     `json:"time"`
	Uptime      time.Duration `json:"uptime"`
	Enabled     bool          `json:"enabled"`
	Total       OpStats       `json:"total"`
	Ops         []OpStats     `json:"ops"`
	Drops       Drops         `json:"drops"`
	Subscribers int           `json:"subscribers"`
}

// Op returns the statistics of one opcode (zero counts if it never ran).
func (s *Snapshot) Op(op uint32) OpStats {
	for _, o := range s.Ops {
		if o.Op == op {
			return o
		}
	}
	return OpStats{Op: op, Name: opName(op)}
}

// Rates are per-second rates between two snapshots.
type Rates struct {
	Interval time.Duration `json:"interval"`
	Events   float64       `json:"events"`
	Errors   float64       `json:"errors"`
	Bytes    float64       `json:"bytes"`
	Drops    float64       `json:"drops"`
}

// RatesSince returns the rates from prev to s; zero if no time passed.
func (s *Snapshot) RatesSince(prev *Snapshot) Rates {
	dt := s.Time.Sub(prev.Time)
	r := Rates{Interval: dt}
	if dt <= 0 {
		return r
	}
	sec := dt.Seconds()
	delta := func(a, b uint64) float64 {
		if a < b {
			return 0
		}
		return float64(a-b) / sec
	}
	r.Events = delta(s.Total.Count, prev.Total.Count)
	r.Errors = delta(s.Total.Errors, prev.Total.Errors)
	r.Bytes = delta(s.Total.Bytes, prev.Total.Bytes)
	r.Drops = delta(s.Drops.RingOverwritten+s.Drops.Subscribers, prev.Drops.RingOverwritten+prev.Drops.Subscribers)
	return r
}

// opCounters is the lock-free form of OpStats that Observe updates. It is
// padded to keep neighbouring opcodes off each other's cache lines.
type opCounters struct {
	count  atomic.Uint64
	errors atomic.Uint64
	bytes  atomic.Uint64
	latSum atomic.Int64
	latMax atomic.Int64
	hist   [NumBuckets]atomic.Uint64
	_      [40]byte
}

func (c *opCounters) add(ok bool, nbytes int, lat time.Duration) {
	c.count.Add(1)
	if !ok {
		c.errors.Add(1)
	}
	if nbytes > 0 {
		c.bytes.Add(uint64(nbytes))
	}
	lat = max(lat, 0)
	c.hist[bucketOf(lat)].Add(1)
	c.latSum.Add(int64(lat))
	for {
		m := c.latMax.Load()
		if int64(lat) <= m || c.latMax.CompareAndSwap(m, int64(lat)) {
			break
		}
	}
}

func (c *opCounters) load(op uint32) OpStats {
	s := OpStats{Op: op, Name: opName(op), Count: c.count.Load(), Errors: c.errors.Load(), Bytes: c.bytes.Load()}
	for i := range c.hist {
		s.Latency.Buckets[i] = c.hist[i].Load()
	}
	s.Latency.Sum = time.Duration(c.latSum.Load())
	s.Latency.Max = time.Duration(c.latMax.Load())
	return s
}

// Summarize computes statistics over recorded events, as a tap would have
// counted them. Uptime is the span from the first to the last event.
func Summarize(events []Event) Snapshot {
	byOp := map[uint32]*OpStats{}
	var s Snapshot
	for i := range events {
		ev := &events[i]
		o := byOp[ev.Op]
		if o == nil {
			name := ev.OpName
			if name == "" {
				name = opName(ev.Op)
			}
			o = &OpStats{Op: ev.Op, Name: name}
			byOp[ev.Op] = o
		}
		o.add(ev)
		if ev.Dropped != "" {
			s.Drops.Malformed++
		}
	}
	if len(events) > 0 {
		first, last := &events[0], &events[len(events)-1]
		s.Time = last.Wall
		s.Uptime = last.Time - first.Time
	}
	for _, o := range byOp {
		s.Ops = append(s.Ops, *o)
	}
	finishOps(&s)
	return s
}

func finishOps(s *Snapshot) {
	sort.Slice(s.Ops, func(i, j int) bool { return s.Ops[i].Op < s.Ops[j].Op })
	s.Total = OpStats{Name: "TOTAL"}
	for i := range s.Ops {
		s.Ops[i].Latency.Finish()
		s.Total.merge(&s.Ops[i])
	}
	s.Total.Latency.Finish()
}
