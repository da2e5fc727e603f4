// Package recording reads, writes and replays recordings of krunbench
// sessions: what the guest printed on its console, what the user typed,
// every FUSE request the virtio-fs server served, the init's boot
// milestones, the session's state changes and terminal resizes, each
// stamped with the time it happened.
//
// A recording is a file of JSON lines. The first line is a Header (format
// version, creation time, a summary of the session's configuration); every
// other line is one Record. A writer that dies mid-line leaves a truncated
// last line, which readers skip quietly (see Reader.Truncated).
//
//	{"version":1,"created":"2026-11-02T10:00:00Z","config":{"engine":"qemu","accel":"kvm","cpus":2,"mem":512,"rootfs":"/srv/alpine","init":"kruninit"}}
//	{"t":1200000,"kind":"status","status":{"state":"booting"}}
//	{"t":1500000,"kind":"event","event":{"seq":1,"t":0,"op":26,"opname":"INIT"}}
//	{"t":9000000,"kind":"console","text":"hello\r\n"}
//	{"t":9100000,"kind":"console","b64":"G1s2bg=="}
package recording

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/krunbench/krunbench/virtiofs/trace"
)

// Version is the format version this package writes and reads.
const Version = 1

// Config summarises the configuration of the recorded session.
type Config struct {
	Engine string `json:"engine,omitempty"`
	// Accel is "kvm" or "tcg".
	Accel  string `json:"accel,omitempty"`
	CPUs   int    `json:"cpus,omitempty"`
	MemMiB int    `json:"mem,omitempty"`
	RootFS string `json:"rootfs,omitempty"`
	// Init names the init payload served as /init.krun.
	Init string `json:"init,omitempty"`
}

// Header is the first line of a recording.
type Header struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	Config  Config    `json:"config"`
}

// Kind says what a Record holds.
type Kind string

// Record kinds.
const (
	// KindConsole is output of the guest to the terminal (Record.Data).
	KindConsole Kind = "console"
	// KindInput is input of the user to the guest (Record.Data).
	KindInput Kind = "input"
	// KindEvent is one FUSE request (Record.Event).
	KindEvent Kind = "event"
	// KindMilestone is a boot milestone of the init (Record.Milestone).
	KindMilestone Kind = "milestone"
	// KindStatus is a change of the session's state (Record.Status).
	KindStatus Kind = "status"
	// KindResize is a resize of the guest console (Record.Resize).
	KindResize Kind = "resize"
)

// Milestone is a point of the init's progress, as the default init prints
// it on the console (see initlib/milestone).
type Milestone struct {
	// Name is "mounted", "config", "exec" or "exit" for the default init.
	Name string `json:"name"`
	// Boot is the guest's time since boot (CLOCK_BOOTTIME).
	Boot time.Duration `json:"boot"`
	// At is when the host saw the milestone, since the session started;
	// zero when unknown. In a recording it is the record's time when zero.
	At      time.Duration `json:"at,omitempty"`
	Code    int           `json:"code,omitempty"`
	HasCode bool          `json:"hascode,omitempty"`
}

// State is a session's state.
type State string

// Session states, in the order a session goes through them.
const (
	StateBooting State = "booting"
	StateRunning State = "running"
	// StateExited: the workload exited; Status.Code is its exit code.
	StateExited State = "exited"
	// StateFailed: the session failed; Status.Reason says why.
	StateFailed State = "failed"
)

// Status is a change of a session's state.
type Status struct {
	State  State  `json:"state"`
	Code   int    `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// String describes the status in a few words: "exited 0", "failed: why".
func (s Status) String() string {
	switch s.State {
	case StateExited:
		return fmt.Sprintf("exited %d", s.Code)
	case StateFailed:
		if s.Reason != "" {
			return "failed: " + s.Reason
		}
	}
	return string(s.State)
}

// Resize is a new size of the guest console, in cells.
type Resize struct {
	Cols int `json:"cols"`
	Rows int `json:"rows"`
}

// Record is one line of a recording after the header. Exactly the field
// that matches Kind is set.
type Record struct {
	// T is when it happened, since Header.Created.
	T    time.Duration
	Kind Kind
	// Data is the bytes of a console or input record. It is written as
	// "text" when it is valid UTF-8 and as "b64" (base64) otherwise.
	Data      []byte
	Event     *trace.Event
	Milestone *Milestone
	Status    *Status
	Resize    *Resize
}

// wire is the JSON form of a Record.
type wire struct {
	T         time.Duration `json:"t"`
	Kind      Kind          `json:"kind"`
	Text      *string       `json:"text,omitempty"`
	B64       []byte        `json:"b64,omitempty"`
	Event     *trace.Event  `json:"event,omitempty"`
	Milestone *Milestone    `json:"milestone,omitempty"`
	Status    *Status       `json:"status,omitempty"`
	Resize    *Resize       `json:"resize,omitempty"`
}

// MarshalJSON writes the record as one JSON object.
func (r Record) MarshalJSON() ([]byte, error) {
	w := wire{T: r.T, Kind: r.Kind, Event: r.Event, Milestone: r.Milestone, Status: r.Status, Resize: r.Resize}
	if r.Kind == KindConsole || r.Kind == KindInput {
		if utf8.Valid(r.Data) {
			s := string(r.Data)
			w.Text = &s
		} else {
			w.B64 = r.Data
		}
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads a record written by MarshalJSON.
func (r *Record) UnmarshalJSON(b []byte) error {
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = Record{T: w.T, Kind: w.Kind, Event: w.Event, Milestone: w.Milestone, Status: w.Status, Resize: w.Resize}
	switch {
	case w.Text != nil:
		r.Data = []byte(*w.Text)
	case w.B64 != nil:
		r.Data = w.B64
	}
	return r.Validate()
}

// ErrRecord reports a record whose kind and payload do not match.
var ErrRecord = errors.New("recording: bad record")

// Validate checks that the field Kind names is set.
func (r *Record) Validate() error {
	ok := false
	switch r.Kind {
	case KindConsole, KindInput:
		ok = true
	case KindEvent:
		ok = r.Event != nil
	case KindMilestone:
		ok = r.Milestone != nil
	case KindStatus:
		ok = r.Status != nil
	case KindResize:
		ok = r.Resize != nil
	default:
		return fmt.Errorf("%w: unknown kind %q", ErrRecord, r.Kind)
	}
	if !ok {
		return fmt.Errorf("%w: %s record without its %s", ErrRecord, r.Kind, r.Kind)
	}
	return nil
}
