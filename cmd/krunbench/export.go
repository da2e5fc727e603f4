package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/krunbench/krunbench/session/recording"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// newTraceExportCmd is `krunbench trace export --format perfetto FILE -o
// OUT`, to be added under the trace command.
func newTraceExportCmd() *cobra.Command {
	var opts exportOptions
	var format, out string
	cmd := &cobra.Command{
		Use:   "export --format perfetto FILE [-o OUT]",
		Short: "Convert a recording or a JSON-lines trace to the Chrome/Perfetto trace format",
		Long: "Convert a recording (krunbench replay) or a JSON-lines trace (--trace) to the\n" +
			"Chrome JSON trace format that ui.perfetto.dev and chrome://tracing open:\n" +
			"one complete event per FUSE request (ts and dur in µs, on a track per\n" +
			"opcode or per nodeid), instant events for the init's milestones and the\n" +
			"session's state changes, and optionally the console output.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "perfetto" && format != "chrome" {
				return fmt.Errorf("--format %q: only perfetto (Chrome JSON) is supported", format)
			}
			if opts.track != "op" && opts.track != "nodeid" {
				return fmt.Errorf("--track %q: op or nodeid", opts.track)
			}
			in, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer in.Close()
			var w io.Writer = cmd.OutOrStdout()
			var f *os.File
			if out != "" && out != "-" {
				// Written beside the output and renamed over it once
				// complete: a failed export leaves no partial file.
				if f, err = os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*"); err != nil {
					return err
				}
				defer os.Remove(f.Name())
				if err = f.Chmod(0o644); err != nil {
					return err
				}
				w = f
			}
			err = exportPerfetto(w, in, opts)
			if f != nil {
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err == nil {
					err = os.Rename(f.Name(), out)
				}
			}
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "perfetto", "output format: perfetto (Chrome JSON trace)")
	cmd.Flags().StringVarP(&out, "output", "o", "-", "output file (- for stdout)")
	cmd.Flags().StringVar(&opts.track, "track", "op", "one track per op(code) or per nodeid")
	cmd.Flags().BoolVar(&opts.console, "console", false, "add the console output as instant events")
	return cmd
}

type exportOptions struct {
	track   string
	console bool
}

// chromeEvent is one event of the Chrome JSON trace format.
type chromeEvent struct {
	Name  string         `json:"name"`
	Cat   string         `json:"cat,omitempty"`
	Ph    string         `json:"ph"`
	Ts    float64        `json:"ts"`
	Dur   *float64       `json:"dur,omitempty"`
	Pid   int            `json:"pid"`
	Tid   uint64         `json:"tid"`
	Scope string         `json:"s,omitempty"`
	Args  map[string]any `json:"args,omitempty"`
}

type chromeTrace struct {
	TraceEvents     []chromeEvent  `json:"traceEvents"`
	DisplayTimeUnit string         `json:"displayTimeUnit"`
	OtherData       map[string]any `json:"otherData,omitempty"`
}

// Perfetto processes: FUSE requests, the guest (milestones, states), the
// console.
const (
	pidFUSE    = 1
	pidGuest   = 2
	pidConsole = 3
)

// micros is d in microseconds, the unit of ts and dur.
func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// exportPerfetto converts a recording, or a JSON-lines trace, read from r.
// Request times are their trace times (since the tap started); milestones,
// states and console output are at their record times (since the
// recording started): both count from the session's start.
func exportPerfetto(w io.Writer, r io.Reader, opts exportOptions) error {
	if opts.track == "" {
		opts.track = "op"
	}
	br := bufio.NewReaderSize(r, 64<<10)
	first, _ := br.Peek(4096)
	if i := bytes.IndexByte(first, '\n'); i >= 0 {
		first = first[:i]
	}
	ct := chromeTrace{DisplayTimeUnit: "ms"}
	var events []trace.Event
	var extra []chromeEvent
	if _, isRec := recording.ParseHeader(first); isRec {
		h, recs, err := recording.ReadAll(br)
		if err != nil {
			return err
		}
		ct.OtherData = map[string]any{"engine": h.Config.Engine, "accel": h.Config.Accel, "cpus": h.Config.CPUs,
			"mem_mib": h.Config.MemMiB, "rootfs": h.Config.RootFS, "init": h.Config.Init, "created": h.Created}
		for _, rec := range recs {
			switch rec.Kind {
			case recording.KindEvent:
				events = append(events, *rec.Event)
			case recording.KindMilestone:
				m := rec.Milestone
				args := map[string]any{"boot_s": m.Boot.Seconds()}
				if m.HasCode {
					args["code"] = m.Code
				}
				extra = append(extra, chromeEvent{Name: "milestone " + m.Name, Cat: "init", Ph: "i", Scope: "g",
					Ts: micros(m.At), Pid: pidGuest, Tid: 1, Args: args})
			case recording.KindStatus:
				extra = append(extra, chromeEvent{Name: rec.Status.String(), Cat: "session", Ph: "i", Scope: "p",
					Ts: micros(rec.T), Pid: pidGuest, Tid: 2})
			case recording.KindConsole:
				if opts.console {
					extra = append(extra, chromeEvent{Name: "console", Cat: "console", Ph: "i", Scope: "t",
						Ts: micros(rec.T), Pid: pidConsole, Tid: 1, Args: map[string]any{"text": string(rec.Data)}})
				}
			}
		}
	} else {
		var err error
		if events, err = trace.ReadFile(br); err != nil {
			return err
		}
	}

	meta := func(pid int, tid uint64, kind, name string) chromeEvent {
		return chromeEvent{Name: kind, Ph: "M", Pid: pid, Tid: tid, Args: map[string]any{"name": name}}
	}
	ct.TraceEvents = append(ct.TraceEvents,
		meta(pidFUSE, 0, "process_name", "virtio-fs (FUSE requests)"),
		meta(pidGuest, 0, "process_name", "guest"),
		meta(pidGuest, 1, "thread_name", "init milestones"),
		meta(pidGuest, 2, "thread_name", "session state"))
	if opts.console {
		ct.TraceEvents = append(ct.TraceEvents, meta(pidConsole, 0, "process_name", "console"))
	}
	tracks := map[uint64]string{}
	var reqs []chromeEvent
	for i := range events {
		ev := &events[i]
		name := ev.OpName
		if name == "" {
			name = "OP_" + strconv.FormatUint(uint64(ev.Op), 10)
		}
		tid, label := uint64(ev.Op), name
		if opts.track == "nodeid" {
			tid, label = ev.Nodeid, "nodeid "+strconv.FormatUint(ev.Nodeid, 10)
			if ev.Path != "" {
				label += " " + ev.Path
			}
		}
		if _, ok := tracks[tid]; !ok || opts.track == "nodeid" && ev.Path != "" {
			tracks[tid] = label
		}
		dur := micros(ev.Latency)
		args := map[string]any{"seq": ev.Seq, "result": trace.ErrnoName(ev.Errno)}
		if ev.Nodeid != 0 {
			args["nodeid"] = ev.Nodeid
		}
		for k, v := range map[string]string{"path": ev.Path, "name": ev.Name, "newname": ev.NewName, "dropped": ev.Dropped, "injected": ev.Injected} {
			if v != "" {
				args[k] = v
			}
		}
		if ev.Offset != 0 || ev.Size != 0 {
			args["off"], args["size"] = ev.Offset, ev.Size
		}
		if ev.Bytes != 0 {
			args["bytes"] = ev.Bytes
		}
		if ev.NewNodeid != 0 {
			args["newnodeid"] = ev.NewNodeid
		}
		if ev.Synthetic {
			args["synthetic"] = true
		}
		if ev.EOF {
			args["eof"] = true
		}
		reqs = append(reqs, chromeEvent{Name: name, Cat: "fuse", Ph: "X", Ts: micros(ev.Time), Dur: &dur,
			Pid: pidFUSE, Tid: tid, Args: args})
	}
	tids := make([]uint64, 0, len(tracks))
	for tid := range tracks {
		tids = append(tids, tid)
	}
	sort.Slice(tids, func(i, j int) bool { return tids[i] < tids[j] })
	for _, tid := range tids {
		ct.TraceEvents = append(ct.TraceEvents, meta(pidFUSE, tid, "thread_name", tracks[tid]))
	}
	ct.TraceEvents = append(ct.TraceEvents, reqs...)
	ct.TraceEvents = append(ct.TraceEvents, extra...)

	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ct); err != nil {
		return err
	}
	return bw.Flush()
}
