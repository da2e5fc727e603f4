package tui

import (
	"time"

	"github.com/krunbench/krunbench/session/recording"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// Source feeds the UI with one guest's console and traffic. See the
// package documentation for the contract its implementations keep.
type Source interface {
	// Events is the channel of batches, closed when the source is done.
	Events() <-chan SourceMsg
	// Input sends bytes to the guest's console; it never blocks.
	Input(b []byte)
	// Resize sets the guest console's size in cells; it never blocks.
	Resize(cols, rows int)
	// Stop ends the session; it is idempotent.
	Stop()
}

// SourceMsg is one batch from a Source. Fields left zero carry nothing.
type SourceMsg struct {
	// Info describes the session (engine, accelerator, size...); it may
	// come again when it changes (a KVM boot that falls back to TCG).
	Info *recording.Config
	// Console is output of the guest, in order.
	Console []byte
	// Events are FUSE requests, in order.
	Events []trace.Event
	// Milestones are the init's boot milestones; At should be set.
	Milestones []recording.Milestone
	// Status are state changes, in order.
	Status []recording.Status
	// Stats is the latest statistics snapshot.
	Stats *trace.Snapshot
	// Inodes, when not nil, replaces the inode table (an empty, non-nil
	// slice empties it); the UI keeps the slice and may reorder it.
	Inodes []trace.InodeRow
	// Dropped is how many events the source lost in all, so far;
	// UpstreamDropped how many of them were lost before the source's
	// buffer (a lagging tap subscription); ConsoleDropped how many
	// console bytes.
	Dropped         uint64
	UpstreamDropped uint64
	ConsoleDropped  uint64
	// Queued is when the oldest part of the batch was handed to the
	// source's buffer (zero if unknown): the UI shows the batch's age.
	Queued time.Time
}

// ItemKind is the kind of a library item.
type ItemKind string

// Library item kinds.
const (
	KindRootFS ItemKind = "rootfs"
	KindInit   ItemKind = "init"
	KindKernel ItemKind = "kernel"
)

// Verdict is a library's judgement of an item.
type Verdict string

// Verdicts: an item in error cannot be picked.
const (
	VerdictOK    Verdict = "ok"
	VerdictWarn  Verdict = "warn"
	VerdictError Verdict = "error"
)

// Item is a root filesystem, init payload or kernel the library knows.
type Item struct {
	Kind    ItemKind
	Name    string
	Path    string
	Verdict Verdict
	// Detail explains the verdict in a line.
	Detail string
}

// Library lists what can be launched.
type Library interface {
	Items() []Item
}

// StaticLibrary is a fixed Library.
type StaticLibrary []Item

// Items returns the items.
func (s StaticLibrary) Items() []Item { return s }

// LaunchRequest is what the user picked. Kernel is zero when the library
// lists no kernels (the session finds one itself).
type LaunchRequest struct {
	RootFS Item
	Init   Item
	Kernel Item
}

// Launcher starts a session for a request. It is called outside the UI
// goroutine and may take its time.
type Launcher func(LaunchRequest) (Source, error)
