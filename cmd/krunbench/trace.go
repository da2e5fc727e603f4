package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/krunbench/krunbench/session/recording"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

func newTraceCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "trace", Short: "Inspect recorded FUSE traces"}
	var summary, initOnly bool
	show := &cobra.Command{
		Use:   "show FILE",
		Short: "Print the FUSE requests of a JSON-lines trace or a recording readably, one per line",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			events, err := readEvents(f)
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

// readEvents reads the FUSE requests of a JSON-lines trace (serve
// --trace, run --trace) or of a recording (--record); anything else is an
// error, rather than lines read as requests of opcode 0.
func readEvents(r io.Reader) ([]trace.Event, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	first, _ := br.Peek(4096)
	if i := bytes.IndexByte(first, '\n'); i >= 0 {
		first = first[:i]
	}
	if _, isRec := recording.ParseHeader(first); isRec {
		_, recs, err := recording.ReadAll(br)
		var events []trace.Event
		for _, rec := range recs {
			if rec.Kind == recording.KindEvent {
				events = append(events, *rec.Event)
			}
		}
		return events, err
	}
	events, err := trace.ReadFile(br)
	if err != nil {
		return events, err
	}
	for _, ev := range events {
		if ev.Op == 0 { // no FUSE opcode is 0
			return nil, errors.New("not a trace: a line is no FUSE request (want serve --trace, run --trace or --record output)")
		}
	}
	return events, nil
}
