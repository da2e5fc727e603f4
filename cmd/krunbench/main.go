// Command krunbench is a workbench for libkrun-style microVMs: it serves a
// host directory as a virtio-fs root with a synthetic /init.krun, and shows
// every FUSE request the guest makes.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code (a guest's, say) out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "krunbench",
		Short:         "A workbench for libkrun-style microVMs and their virtio-fs traffic",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(), newServeCmd(), newTraceCmd(), newLibraryCmd(), newDoctorCmd(), newReplayCmd())
	return root
}

func main() {
	err := newRootCmd().Execute()
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.code)
	default:
		fmt.Fprintln(os.Stderr, "krunbench:", err)
		os.Exit(1)
	}
}
