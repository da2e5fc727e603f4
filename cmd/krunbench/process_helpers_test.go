package main

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
	"time"
)

// What the tests that start krunbench as a long-lived process share:
// starting it with its output collected, waiting (bounded) for the socket
// it creates and for its exit, and killing it when the test ends.

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.String()
}

// process is a program a test started, its stdout and stderr collected
// together in out.
type process struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{} // closed once the program has exited; err is then set
	err    error
}

// startProcess starts cmd with its output collected; the test's cleanup
// kills it if it still runs and waits for it.
func startProcess(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{cmd: cmd, out: newSyncBuffer(), exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// waitExit waits up to limit for the program to end and returns how it
// ended (cmd.Wait's error); still running then fails the test, saying
// what did not end.
func (p *process) waitExit(t *testing.T, limit time.Duration, what string) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(limit):
		t.Fatalf("%s still running after %s:\n%s", what, limit, p.out.String())
		return nil
	}
}

// waitPath waits up to limit for the program to create path (its
// socket); an exit before that, or a longer wait, fails the test.
func (p *process) waitPath(t *testing.T, path string, limit time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case <-p.exited:
			t.Fatalf("exited (%v) before creating %s:\n%s", p.err, path, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s:\n%s", path, limit, p.out.String())
		}
	}
}

// waitMounted waits up to limit for the program to mount mnt; an exit
// before that, or a longer wait, fails the test.
func (p *process) waitMounted(t *testing.T, mnt string, limit time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(limit); !mounted(t, mnt); time.Sleep(20 * time.Millisecond) {
		select {
		case <-p.exited:
			t.Fatalf("exited (%v) before mounting %s:\n%s", p.err, mnt, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not mounted after %s:\n%s", mnt, limit, p.out.String())
		}
	}
}
