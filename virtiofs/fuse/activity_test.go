package fuse_test

import (
	"context"
	"testing"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// TestActivitySeesRequests: every request served marks the server's
// Activity (one Take sees it, the next does not), whatever its opcode,
// and Sleep blocks while none comes and returns when one does.
func TestActivitySeesRequests(t *testing.T) {
	s, _ := newServer(t)
	act := s.Activity()
	if !act.Take() {
		t.Fatal("Take after INIT = false, want true")
	}
	if act.Take() {
		t.Fatal("second Take with no request = true, want false")
	}
	serve(t, s, [][]byte{request(fuse.OpGetattr, 1, fuse.GetAttrIn{})})
	if !act.Take() {
		t.Fatal("Take after GETATTR = false, want true")
	}
	// A request the server drops (a short header) still came.
	serve(t, s, [][]byte{{1, 2, 3}})
	if !act.Take() {
		t.Fatal("Take after a dropped request = false, want true")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if act.Sleep(ctx) {
		t.Fatal("Sleep with no request returned true, want false at ctx's end")
	}

	woke := make(chan bool, 1)
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel2()
	go func() { woke <- act.Sleep(ctx2) }()
	time.Sleep(20 * time.Millisecond) // most likely asleep by now; either way it must return true
	for {
		serve(t, s, [][]byte{request(fuse.OpGetattr, 1, fuse.GetAttrIn{})})
		select {
		case ok := <-woke:
			if !ok {
				t.Fatal("Sleep returned false although a request came")
			}
			// Sleep starts a fresh interval: the request that woke it
			// is not counted again.
			if act.Take() {
				// A second serve may have raced in after the wake; that
				// is a new request, so only check it is not stuck busy.
				if act.Take() {
					t.Fatal("Take stays true with no request")
				}
			}
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}
