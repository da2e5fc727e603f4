package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/krunbench/krunbench/virtiofs/trace"
)

func newTraceCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "trace", Short: "Inspect recorded FUSE traces"}
	var summary, initOnly bool
	show := &cobra.Command{
		Use:   "show FILE",
		Short: "Print a JSON-lines trace readably, one request per line",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			events, err := trace.ReadFile(f)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			out := cmd.OutOrStdout()
			for _, ev := range events {
				if initOnly && !ev.Synthetic {
					continue
				}
				trace.Format(out, ev)
			}
			if summary {
				fmt.Fprintln(out)
				trace.Summary(out, events)
			}
			return nil
		},
	}
	show.Flags().BoolVar(&summary, "summary", false, "print per-opcode totals after the events")
	show.Flags().BoolVar(&initOnly, "init-only", false, "only requests that touched synthetic files (/init.krun)")
	cmd.AddCommand(show, newTraceExportCmd())
	return cmd
}
