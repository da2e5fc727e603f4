package recording

import (
	"context"
	"sync"
	"time"
)

// Player replays records with their original timing, scaled by a speed
// factor, and can be paused. Its methods are safe for concurrent use.
type Player struct {
	recs []Record

	mu      sync.Mutex
	speed   float64
	paused  bool
	pos     time.Duration // playback position when base was taken
	base    time.Time     // wall time pos was taken at; zero while paused
	changed chan struct{}
	now     func() time.Time
}

// NewPlayer returns a player of recs (in time order) at speed: 1 is the
// original pace, 2 twice as fast; speed <= 0 replays without waiting.
func NewPlayer(recs []Record, speed float64) *Player {
	return &Player{recs: recs, speed: speed, changed: make(chan struct{}, 1), now: time.Now}
}

// Duration is the time of the last record.
func (p *Player) Duration() time.Duration {
	if len(p.recs) == 0 {
		return 0
	}
	return p.recs[len(p.recs)-1].T
}

// Position is the playback position in recording time.
func (p *Player) Position() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.positionLocked()
}

func (p *Player) positionLocked() time.Duration {
	if p.base.IsZero() || p.speed <= 0 {
		return p.pos
	}
	return p.pos + time.Duration(float64(p.now().Sub(p.base))*p.speed)
}

// Speed is the current speed factor.
func (p *Player) Speed() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.speed
}

// SetSpeed changes the speed factor from now on.
func (p *Player) SetSpeed(x float64) {
	p.mu.Lock()
	p.pos = p.positionLocked()
	if !p.base.IsZero() {
		p.base = p.now()
	}
	p.speed = x
	p.mu.Unlock()
	p.poke()
}

// Pause stops playback until Resume.
func (p *Player) Pause() {
	p.mu.Lock()
	if !p.paused {
		p.pos = p.positionLocked()
		p.paused = true
		p.base = time.Time{}
	}
	p.mu.Unlock()
	p.poke()
}

// Resume continues a paused playback.
func (p *Player) Resume() {
	p.mu.Lock()
	if p.paused {
		p.paused = false
		p.base = p.now()
	}
	p.mu.Unlock()
	p.poke()
}

// Paused reports whether playback is paused.
func (p *Player) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused
}

func (p *Player) poke() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// Play calls fn with each record when its time comes, in order, on the
// calling goroutine, and returns when all were played (nil) or ctx is
// done (its error). Play may be called once.
func (p *Player) Play(ctx context.Context, fn func(Record)) error {
	p.mu.Lock()
	if !p.paused {
		p.base = p.now()
	}
	p.mu.Unlock()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for _, rec := range p.recs {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			p.mu.Lock()
			paused, speed := p.paused, p.speed
			wait := time.Duration(0)
			if !paused && speed > 0 {
				if at := p.positionLocked(); at < rec.T {
					wait = time.Duration(float64(rec.T-at) / speed)
				}
			}
			p.mu.Unlock()
			if !paused && (speed <= 0 || wait <= 0) {
				break
			}
			var tc <-chan time.Time
			if !paused {
				timer.Reset(wait)
				tc = timer.C
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-p.changed:
			case <-tc:
			}
			timer.Stop()
		}
		p.mu.Lock()
		if p.speed <= 0 || p.paused {
			p.pos = max(p.pos, rec.T)
		}
		p.mu.Unlock()
		fn(rec)
	}
	return nil
}

// Records plays into a channel, closed at the end of the recording or
// when ctx is done.
func (p *Player) Records(ctx context.Context) <-chan Record {
	ch := make(chan Record)
	go func() {
		defer close(ch)
		p.Play(ctx, func(rec Record) {
			select {
			case ch <- rec:
			case <-ctx.Done():
			}
		})
	}()
	return ch
}
