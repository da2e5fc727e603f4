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
	var wb workbenchFlags
	root := &cobra.Command{
		Use:   "krunbench",
		Short: "A workbench for libkrun-style microVMs and their virtio-fs traffic",
		Long: `krunbench with no command opens the workbench: pick a root filesystem, an init
payload and a kernel in the library pane, launch, type into the guest console,
and watch every FUSE request, the inode table and the boot timeline live.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE:          func(cmd *cobra.Command, _ []string) error { return runWorkbench(cmd, &wb) },
	}
	addWorkbenchFlags(root, &wb)
	root.AddCommand(newRunCmd(), newServeCmd(), newTraceCmd(), newLibraryCmd(), newDoctorCmd(), newReplayCmd(), newRulesCmd())
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
