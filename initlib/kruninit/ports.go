package kruninit

import (
	"io/fs"
	"path"
	"sort"
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
