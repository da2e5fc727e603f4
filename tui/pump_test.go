package tui

import (
	"bytes"
	"testing"
	"time"
)

// TestConsoleWaitLosesNothing: a flood of console output into a pump
// with a small bound and a reader that takes its batches slowly (the UI
// lagging). ConsoleWait holds the producer back instead of dropping:
// every byte arrives, in order. (Console, which the live source used
// before, dropped most of it here and counted it in ConsoleDropped.)
func TestConsoleWaitLosesNothing(t *testing.T) {
	const bound, chunk, chunks = 4 << 10, 1000, 2000
	p := NewPumpInterval(0, bound, 0)
	var want bytes.Buffer
	go func() {
		for i := range chunks {
			b := bytes.Repeat([]byte{byte('a' + i%26)}, chunk)
			want.Write(b)
			p.ConsoleWait(b)
		}
		p.Close()
	}()
	var got []byte
	var last SourceMsg
	batches := 0
	for m := range p.C() {
		got = append(got, m.Console...)
		last = m
		if batches++; batches%50 == 0 {
			time.Sleep(5 * time.Millisecond) // load: the lagging UI
		}
	}
	if last.ConsoleDropped != 0 || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("%d of %d console bytes arrived intact, %d counted dropped", len(got), want.Len(), last.ConsoleDropped)
	}
}

// TestConsoleWaitEndsOnClose: a producer waiting for room (nobody reads)
// returns once the pump is closed or aborted, so a UI that went away
// never holds the session's console reader forever.
func TestConsoleWaitEndsOnClose(t *testing.T) {
	p := NewPumpInterval(0, 1024, 0)
	done := make(chan struct{})
	go func() {
		p.ConsoleWait(make([]byte, 64<<10))
		close(done)
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		p.mu.Lock()
		full := len(p.pending.Console) >= 1024
		p.mu.Unlock()
		if full {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pump never filled")
		}
	}
	p.Abort()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("ConsoleWait still waiting 30 s after Abort")
	}
}
