package tui

import (
	"strings"
	"time"
)

var sparkBlocks = []rune("▁▂▃▄▅▆▇█")

// Sparkline draws values as one line of block characters, the largest
// value a full block; zeros are drawn as spaces. Only the last width
// values are drawn, right-aligned.
func Sparkline(values []uint64, width int) string {
	if width <= 0 {
		return ""
	}
	if len(values) > width {
		values = values[len(values)-width:]
	}
	var peak uint64
	for _, v := range values {
		peak = max(peak, v)
	}
	var b strings.Builder
	b.WriteString(strings.Repeat(" ", width-len(values)))
	for _, v := range values {
		if v == 0 || peak == 0 {
			b.WriteByte(' ')
			continue
		}
		i := int((v*uint64(len(sparkBlocks)) - 1) / peak)
		b.WriteRune(sparkBlocks[min(i, len(sparkBlocks)-1)])
	}
	return b.String()
}

// secondRing counts things per second over the last len(counts) seconds
// of a clock that only moves forward (trace time).
type secondRing struct {
	counts []uint64
	head   int64 // the second counts[last] holds
	seen   bool
}

func newSecondRing(n int) *secondRing { return &secondRing{counts: make([]uint64, n)} }

// advance moves the ring to the second holding t.
func (r *secondRing) advance(t time.Duration) {
	sec := int64(t / time.Second)
	if !r.seen {
		r.head, r.seen = sec, true
		return
	}
	if sec <= r.head {
		return
	}
	shift := sec - r.head
	if shift >= int64(len(r.counts)) {
		clear(r.counts)
	} else {
		n := copy(r.counts, r.counts[shift:])
		clear(r.counts[n:])
	}
	r.head = sec
}

// add counts one at time t; times older than the ring are ignored.
func (r *secondRing) add(t time.Duration) {
	r.advance(t)
	back := r.head - int64(t/time.Second)
	if back < 0 || back >= int64(len(r.counts)) {
		return
	}
	r.counts[len(r.counts)-1-int(back)]++
}

// values are the counts, oldest first.
func (r *secondRing) values() []uint64 { return r.counts }

// rate is the count of the last complete second (the current one while
// it is the only one).
func (r *secondRing) rate() uint64 {
	n := len(r.counts)
	if n >= 2 {
		return r.counts[n-2]
	}
	return r.counts[n-1]
}
