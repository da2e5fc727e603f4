package kruninit

import (
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Names of the virtio-console ports that carry the workload's standard
// streams when the VMM provides them.
const (
	PortStdin  = "krun-stdin"
	PortStdout = "krun-stdout"
	PortStderr = "krun-stderr"
)

// virtioPortsDir is where sysfs lists the virtio-console ports, relative
// to the root of the file system handed to ConsolePorts.
const virtioPortsDir = "sys/class/virtio-ports"

// ConsolePorts finds the named virtio-console ports: it reads
// sys/class/virtio-ports/<dev>/name in fsys (whose root stands for "/",
// e.g. os.DirFS("/")) and maps each name to its device node /dev/<dev>
// (e.g. "krun-stdout" -> "/dev/vport0p1"). Unnamed ports are skipped; of
// two ports with one name the first device in lexical order wins. A
// missing sysfs directory gives an empty map.
func ConsolePorts(fsys fs.FS) map[string]string {
	ports := map[string]string{}
	entries, err := fs.ReadDir(fsys, virtioPortsDir)
	if err != nil {
		return ports
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		b, err := fs.ReadFile(fsys, path.Join(virtioPortsDir, e.Name(), "name"))
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(b))
		if name == "" {
			continue
		}
		if _, dup := ports[name]; !dup {
			ports[name] = "/dev/" + e.Name()
		}
	}
	return ports
}

// PortWinsize is the port on which the host sends the console's window
// size, one line "COLS ROWS" per change, the first at once: the init
// applies each to the console (TIOCSWINSZ, which signals SIGWINCH to the
// foreground job). krunbench uses it because QEMU's virtconsole cannot
// carry a size; the in-process VMM provides it too, so one mechanism sizes
// the console on every engine.
const PortWinsize = "krun-winsize"

// PortsParam on the kernel command line lists, comma-separated, the
// virtio-console ports the host provides (krunbench.ports=krun-stdin,...).
// The ports come from a MULTIPORT console, which Linux adds after the
// control queue handshake, possibly after init has started: the init
// waits for the listed ones before it looks them up. A dotted parameter
// never reaches init's environment.
const PortsParam = "krunbench.ports"

// ExpectedPorts returns the port names PortsParam lists among the kernel
// parameters of cmdline (the last such word wins; words after "--" are
// the workload's).
func ExpectedPorts(cmdline string) []string {
	var names []string
	for _, w := range KernelWords(cmdline) {
		if w == "--" {
			break
		}
		if k, v, ok := strings.Cut(w, "="); ok && k == PortsParam {
			names = nil
			for n := range strings.SplitSeq(v, ",") {
				if n = strings.TrimSpace(n); n != "" {
					names = append(names, n)
				}
			}
		}
	}
	return names
}

// MissingPorts returns the names of want that ports lacks, in order.
func MissingPorts(ports map[string]string, want []string) []string {
	var missing []string
	for _, n := range want {
		if _, ok := ports[n]; !ok {
			missing = append(missing, n)
		}
	}
	return missing
}

// ParseWinsize parses one line of PortWinsize: "COLS ROWS". ok is false
// for anything else (the line is then ignored).
func ParseWinsize(line string) (cols, rows uint16, ok bool) {
	f := strings.Fields(line)
	if len(f) != 2 {
		return 0, 0, false
	}
	c, err1 := strconv.ParseUint(f[0], 10, 16)
	r, err2 := strconv.ParseUint(f[1], 10, 16)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return uint16(c), uint16(r), true
}

// ActiveConsole returns the device name behind /dev/console: the last
// entry of sys/class/tty/console/active in fsys (whose root stands for
// "/"), e.g. "hvc0"; "" when sysfs does not say.
func ActiveConsole(fsys fs.FS) string {
	b, err := fs.ReadFile(fsys, "sys/class/tty/console/active")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 || strings.ContainsAny(f[len(f)-1], "/.") {
		return ""
	}
	return f[len(f)-1]
}
