package fusedev_test

import (
	"os"
	"testing"
)

// TestMain runs the tests, or, in a child the harness started with
// serveEnv set, serves one test mount (serve_test.go).
func TestMain(m *testing.M) {
	if cfg := os.Getenv(serveEnv); cfg != "" {
		os.Exit(serveChild(cfg))
	}
	os.Exit(m.Run())
}
