package console

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sync"

	"github.com/krunbench/krunbench/vmm/virtio"
)

// port is the host side of one console port. It lives as long as the
// Console, across activations.
type port struct {
	id      int
	name    string
	console bool
	host    io.ReadWriter

	mu      sync.Mutex
	space   sync.Cond    // signalled when pending shrinks or the port closes
	pending bytes.Buffer // host bytes not yet delivered to the guest
	closed  bool
	hostEOF bool // the host side's Read returned io.EOF: no more input

	data   chan struct{} // wakes the receive loop: pending grew
	writes chan txData   // transmit data for the host writer
	// txCredit holds one token per txUnit of transmit data taken from
	// the guest and not yet written (TxBacklog/txUnit at most).
	txCredit chan struct{}
}

// txData is one transmit chain's bytes and the txCredit tokens they hold.
type txData struct {
	data   []byte
	tokens int
}

func newPort(id int, p Port) *port {
	pt := &port{
		id: id, name: p.Name, console: p.Console, host: p.Host,
		data:     make(chan struct{}, 1),
		writes:   make(chan txData, TxBacklog/txUnit),
		txCredit: make(chan struct{}, TxBacklog/txUnit),
	}
	pt.space.L = &pt.mu
	return pt
}

// close stops the reader at its next wake-up and ends the writer once its
// backlog is written. The transmit loops must be stopped already.
func (p *port) close() {
	p.mu.Lock()
	p.closed = true
	p.space.Broadcast()
	p.mu.Unlock()
	close(p.writes)
}

// readLoop reads the host side into pending, at most maxPending ahead of
// the guest, until Read fails or the port is closed.
func (c *Console) readLoop(p *port) {
	buf := make([]byte, readChunk)
	for {
		p.mu.Lock()
		for p.pending.Len() >= maxPending && !p.closed {
			p.space.Wait()
		}
		closed := p.closed
		p.mu.Unlock()
		if closed {
			return
		}
		n, err := p.host.Read(buf)
		if n > 0 {
			p.mu.Lock()
			p.pending.Write(buf[:n])
			p.mu.Unlock()
			wake(p.data)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				p.mu.Lock()
				p.hostEOF = true
				p.mu.Unlock()
				wake(p.data)
			} else if !errors.Is(err, os.ErrClosed) {
				c.log.Info("virtio-console: host side stopped reading", "port", p.id, "err", err)
			}
			return
		}
	}
}

// writeLoop writes transmit data to the host side in order. After a write
// error the rest is discarded: the guest must not stall on a dead host.
func (c *Console) writeLoop(p *port) {
	var failed bool
	for tx := range p.writes {
		if !failed && p.host != nil {
			if _, err := p.host.Write(tx.data); err != nil {
				c.log.Warn("virtio-console: host side stopped writing; output discarded", "port", p.id, "err", err)
				failed = true
			}
		}
		for range tx.tokens {
			<-p.txCredit
		}
	}
}

// takeCredit reserves the backlog for n transmit bytes: ceil(n/txUnit)
// tokens, at most all of them (one oversized chain waits for an empty
// backlog). It returns the tokens taken, or false when the activation
// stops first (the partial reservation is returned).
func (p *port) takeCredit(n int, stop <-chan struct{}) (int, bool) {
	tokens := min(max((n+txUnit-1)/txUnit, 1), cap(p.txCredit))
	for i := range tokens {
		select {
		case p.txCredit <- struct{}{}:
		case <-stop:
			for range i {
				<-p.txCredit
			}
			return 0, false
		}
	}
	return tokens, true
}

// rxLoop fills the port's receive queue with pending host bytes whenever
// the guest posts buffers or the host produces data.
func (c *Console) rxLoop(a *activation, p *port) {
	defer a.wg.Done()
	qi := rxQueue(p.id)
	var ch virtio.Chain
	for {
		if !c.fillRx(a, p, &ch) {
			return
		}
		select {
		case <-a.kicks[qi]:
		case <-p.data:
		case <-a.stop:
			return
		}
	}
}

// fillRx copies pending bytes into receive buffers. A chain is only popped
// when there are bytes for it, so buffers are never held empty. With
// MULTIPORT nothing is delivered until the guest opens the port (Linux
// discards data for ports that are not open), and once the host side has
// ended (Read gave io.EOF) and everything before is in the guest's
// buffers, the port is reported closed on the host side
// (VIRTIO_CONSOLE_PORT_OPEN 0): Linux then returns 0 from a read, the end
// of file. It returns false when the queue is dead.
func (c *Console) fillRx(a *activation, p *port, ch *virtio.Chain) bool {
	if a.multiport && !a.open[p.id].Load() {
		return true
	}
	qi := rxQueue(p.id)
	p.mu.Lock()
	defer p.mu.Unlock()
	defer c.reportHostEOFLocked(a, p)
	used := false
	for p.pending.Len() > 0 {
		ok, dead := c.pop(a, qi, ch)
		if dead {
			return false
		}
		if !ok {
			break
		}
		n := 0
		for _, b := range ch.Writable {
			n += copy(b, p.pending.Bytes()[n:])
		}
		p.pending.Next(n)
		if !c.complete(a, qi, ch.Head, uint32(n)) {
			return false
		}
		used = true
	}
	if used {
		p.space.Broadcast()
		c.notify(a, qi)
	}
	return true
}

// reportHostEOFLocked sends PORT_OPEN 0 for p once its host side has
// ended and every byte of it is delivered; p.mu is held. Sent once per
// activation, MULTIPORT only (port 0 without it has no way to say so).
func (c *Console) reportHostEOFLocked(a *activation, p *port) {
	if !a.multiport || !p.hostEOF || p.pending.Len() > 0 || a.eofSent[p.id].Swap(true) {
		return
	}
	a.mu.Lock()
	c.sendLocked(a, Control{ID: uint32(p.id), Event: EventPortOpen, Value: 0})
	a.mu.Unlock()
	a.wakeCtrl()
}

// txLoop copies transmit chains out of guest memory and hands them to the
// host writer. A chain is copied and returned to the guest only once the
// writer's backlog (TxBacklog) has room for it, which is how a slow host
// slows the guest down.
func (c *Console) txLoop(a *activation, p *port) {
	defer a.wg.Done()
	qi := txQueue(p.id)
	var ch virtio.Chain
	for {
		for {
			ok, dead := c.pop(a, qi, &ch)
			if dead {
				return
			}
			if !ok {
				break
			}
			if ch.ReadableLen > 0 {
				tokens, ok := p.takeCredit(int(ch.ReadableLen), a.stop)
				if !ok {
					return
				}
				data := make([]byte, 0, ch.ReadableLen)
				for _, b := range ch.Readable {
					data = append(data, b...)
				}
				// Never blocks: every queued chain holds a token.
				p.writes <- txData{data: data, tokens: tokens}
			}
			if !c.complete(a, qi, ch.Head, 0) {
				return
			}
			c.notify(a, qi)
		}
		select {
		case <-a.kicks[qi]:
		case <-a.stop:
			return
		}
	}
}
