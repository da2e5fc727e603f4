package main

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// cleanups is a stack of undo actions (unmount, kill, remove) that runs in
// reverse order on every way out: normal return, error, panic or signal.
// Every action runs at most once, whoever triggers it.
type cleanups struct {
	mu    sync.Mutex
	stack []*cleanup
	// running is held by runAll, so that a second caller returns only
	// once the first has finished.
	running sync.Mutex
}

type cleanup struct {
	name string
	once sync.Once
	fn   func() error
}

func (c *cleanup) run() {
	c.once.Do(func() {
		if err := c.fn(); err != nil {
			fmt.Fprintf(os.Stderr, "fusebench: cleanup %s: %v\n", c.name, err)
		}
	})
}

// push registers fn and returns a function that runs it now (and takes it
// off the stack), for undoing one thing before the end.
func (s *cleanups) push(name string, fn func() error) (runNow func()) {
	c := &cleanup{name: name, fn: fn}
	s.mu.Lock()
	s.stack = append(s.stack, c)
	s.mu.Unlock()
	return func() {
		c.run()
		s.mu.Lock()
		for i, x := range s.stack {
			if x == c {
				s.stack = append(s.stack[:i], s.stack[i+1:]...)
				break
			}
		}
		s.mu.Unlock()
	}
}

// runAll undoes everything still registered, last first. It is safe to
// call concurrently and more than once.
func (s *cleanups) runAll() {
	s.running.Lock()
	defer s.running.Unlock()
	for {
		s.mu.Lock()
		if len(s.stack) == 0 {
			s.mu.Unlock()
			return
		}
		c := s.stack[len(s.stack)-1]
		s.stack = s.stack[:len(s.stack)-1]
		s.mu.Unlock()
		c.run()
	}
}

// interrupts closes the returned channel on the first SIGINT/SIGTERM so
// the benchmark stops at its next check; a second signal runs every
// cleanup at once and exits, for when a workload is stuck in a hung mount.
func (s *cleanups) interrupts() <-chan struct{} {
	stop := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "\nfusebench: %v: stopping after the current step (again to abort now)\n", sig)
		close(stop)
		<-sigs
		fmt.Fprintln(os.Stderr, "fusebench: aborting")
		s.runAll()
		os.Exit(130)
	}()
	return stop
}
