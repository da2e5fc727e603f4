// Package tui is krunbench's terminal UI, on bubbletea v2: pick a root
// filesystem, an init payload and a kernel, launch a guest, type into its
// console, and watch its virtio-fs traffic live.
//
// # Panes
//
// The app Model is composed of one component per pane, each with its own
// key map, drawing into a shared Context (size, theme, styles):
//
//   - library: root filesystems, init payloads and kernels with their
//     verdicts; pick one of each and launch;
//   - console: a terminal emulator (charmbracelet/x/vt) fed with the
//     guest's console output;
//   - traffic: the live FUSE request stream, with filters and pause;
//   - inodes: the live inode table;
//   - stats: per-opcode counts, errors, rates and sparklines, and the boot
//     timeline;
//   - debugger (with Options.Rules): the request a breakpoint holds, the
//     guest's waiting time, the requests queued behind it, the rules with
//     their hit counts and a form that adds rules (virtiofs/rules).
//
// A status bar shows the engine, accelerator, size and state of the guest
// and what was dropped. Below 120x36 cells the panes become tabs; above,
// they share the screen.
//
// # Drawing
//
// A frame only draws again the panes whose data, focus, size or theme
// changed; the others are reused as drawn. The traffic pane keeps its
// events in a ring and formats only the rows it shows. The debug overlay
// (`) shows what drawing costs: frame times (last, p50, p99), frames and
// events per second, the events dropped (by the tap subscription and by
// the source's buffer) and the age of the batch the frame shows.
//
// # Keys
//
// Global keys (never while the console is attached or a filter is being
// typed): tab / shift+tab cycle the panes, 1..5 jump to one, t cycles the
// theme, ? shows every key map, ` (or f12) toggles the debug overlay,
// q / ctrl+c quit.
//
// The console has the keyboard only while attached: enter (or i) on the
// console pane attaches, and from then on every key press (ctrl+c and q
// included) is encoded and sent to the guest, except ctrl+] which detaches
// (as in telnet). A live session attaches on launch; a replay does not.
// Detached, the console scrolls its scrollback with up/down, pgup/pgdown,
// home/end.
//
// # Sources
//
// Everything the panes show comes from a Source: a live session (its
// implementation belongs to the session package) or a recording replayed
// by ReplaySource. The contract:
//
//   - Events returns the same receive-only channel on every call. Each
//     SourceMsg on it is a batch: any mix of console bytes, trace events,
//     milestones, status changes, a stats snapshot, an inode table and
//     session info, plus the cumulative drop counters. The channel is
//     closed when the source has nothing more to say (the guest is gone
//     and everything was delivered, or Stop was called).
//   - One goroutine owned by the source sends on the channel. It must
//     never block the VM, the virtio-fs server or the console: producers
//     hand their data to a buffer that a forwarding goroutine delivers.
//     When the UI lags, the buffer coalesces (console bytes are joined,
//     only the latest stats snapshot and inode table are kept) and, past
//     its bounds, drops: the oldest pending events and console bytes go
//     first and are counted in SourceMsg.Dropped and
//     SourceMsg.ConsoleDropped, which the status bar shows. A live
//     source's console is the exception: it queues with
//     Pump.ConsoleWait, which waits for the UI instead of dropping, so a
//     lagging UI slows the guest's printing (the console's backpressure)
//     and loses none of it. Status changes
//     and milestones are never dropped. Each batch is a frame, so the
//     buffer also paces them: at most one per DefaultPumpInterval, a
//     flood's small batches coalesced into one. Pump implements all of
//     this; a live source feeds a Pump from its tap subscription, console
//     reader and state machine, and returns Pump.C from Events.
//   - Input sends bytes to the guest's console (key presses, and the
//     terminal emulator's replies to queries such as DSR). It is called
//     from the UI goroutine and from the emulator's reply goroutine, must
//     be safe for concurrent use and must not block on the guest: queue or
//     drop. A replay ignores input.
//   - Resize tells the guest's console its new size in cells; called from
//     the UI goroutine whenever the console pane changes size, and once
//     when the source is attached. It must not block.
//   - Stop ends the session (stops the guest, or the replay) and makes the
//     forwarder close the channel soon after, even if nobody reads it any
//     more. It is idempotent. The UI calls it on quit and before attaching
//     another source.
package tui
