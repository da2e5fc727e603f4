package fusedev_test

import (
	"os"
	"runtime"
	"testing"
)

// TestMain gives the runtime more Ps than the 2 CPUs of CI machines: these
// tests use the mount from the process that serves it, and a goroutine
// stuck in a runtime-internal syscall on a FUSE file (epoll registration)
// must not leave the server goroutines without a P to answer it on.
func TestMain(m *testing.M) {
	runtime.GOMAXPROCS(max(8, runtime.NumCPU()))
	os.Exit(m.Run())
}
