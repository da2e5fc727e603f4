package fusedev_test

import (
	"os"
	"testing"
)

// TestMain runs the tests, or, in a child the harness started with
// serveEnv set, serves one test mount (serve_test.go), or, with xattrEnv
// set, makes one extended attribute call as another user (groups_test.go).
func TestMain(m *testing.M) {
	if cfg := os.Getenv(serveEnv); cfg != "" {
		os.Exit(serveChild(cfg))
	}
	if os.Getenv(xattrEnv) != "" {
		os.Exit(xattrChild(os.Args[1:]))
	}
	os.Exit(m.Run())
}
