package fuse_test

import (
	"bytes"
	"testing"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// TestNoReplyOpsNeverReply: FORGET, BATCH_FORGET and INTERRUPT have no
// reply in the protocol, so the driver gives them chains with no writable
// bytes. Even when they fail validation (before INIT, a length that lies
// or is too large, a body shorter than its struct) the server must not
// write or report a reply: a 16-byte error written into 0 writable bytes
// breaks the virtqueue's used-length contract.
func TestNoReplyOpsNeverReply(t *testing.T) {
	bodies := map[string][]byte{
		"FORGET":       request(fuse.OpForget, 5, fuse.ForgetIn{Nlookup: 1}),
		"BATCH_FORGET": request(fuse.OpBatchForget, 0, fuse.BatchForgetIn{Count: 1}, fuse.ForgetOne{Nodeid: 5, Nlookup: 1}),
		"INTERRUPT":    request(fuse.OpInterrupt, 0, fuse.InterruptIn{Unique: 7}),
	}
	for name, req := range bodies {
		cases := map[string][]byte{
			"valid":          req,
			"length lies":    withLen(req, uint32(len(req)+8)),
			"length huge":    withLen(req, 1<<30),
			"short body":     withLen(req[:fuse.InHeaderSize+4], uint32(fuse.InHeaderSize+4)),
			"length too low": withLen(req, 8),
		}
		for what, in := range cases {
			for _, initialized := range []bool{true, false} {
				var s *fuse.Server
				if initialized {
					s, _ = newServer(t)
				} else {
					s = fuse.NewServer(newMemFS(), fuse.Options{})
				}
				for _, size := range []int{0, 16, 4096} {
					out := bytes.Repeat([]byte{0xaa}, size)
					n, sent := s.Serve([][]byte{in}, [][]byte{out})
					if sent || n != 0 {
						t.Errorf("%s %s (initialized %v, %d writable bytes): reply of %d bytes, want none", name, what, initialized, size, n)
					}
					if !bytes.Equal(out, bytes.Repeat([]byte{0xaa}, size)) {
						t.Errorf("%s %s (initialized %v, %d writable bytes): reply buffer written", name, what, initialized, size)
					}
				}
			}
		}
	}
}
