package kruninit

import (
	"reflect"
	"testing"
	"testing/fstest"
)

func TestConsolePorts(t *testing.T) {
	sysfs := fstest.MapFS{
		"sys/class/virtio-ports/vport0p1/name": {Data: []byte("krun-stdout\n")},
		"sys/class/virtio-ports/vport0p2/name": {Data: []byte("krun-stderr\n")},
		"sys/class/virtio-ports/vport0p3/name": {Data: []byte("\n")},
		"sys/class/virtio-ports/vport1p1/name": {Data: []byte("krun-stdin\n")},
		"sys/class/virtio-ports/vport1p2/name": {Data: []byte("krun-stdout\n")},
		"sys/class/virtio-ports/vport2p0/dev":  {Data: []byte("250:0\n")},
	}
	got := ConsolePorts(sysfs)
	want := map[string]string{
		PortStdout: "/dev/vport0p1",
		PortStderr: "/dev/vport0p2",
		PortStdin:  "/dev/vport1p1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ConsolePorts = %v, want %v", got, want)
	}
	if got := ConsolePorts(fstest.MapFS{}); len(got) != 0 {
		t.Fatalf("without sysfs: %v, want none", got)
	}
}

func TestExpectedPorts(t *testing.T) {
	for _, c := range []struct {
		cmdline string
		want    []string
	}{
		{"console=hvc0 krunbench.ports=krun-stdin,krun-stdout init=/init.krun", []string{PortStdin, PortStdout}},
		{"krunbench.ports=a krunbench.ports=b,,c", []string{"b", "c"}},
		{"quiet -- krunbench.ports=krun-stdin", nil},
		{"quiet", nil},
	} {
		if got := ExpectedPorts(c.cmdline); !reflect.DeepEqual(got, c.want) {
			t.Errorf("ExpectedPorts(%q) = %q, want %q", c.cmdline, got, c.want)
		}
	}
	ports := map[string]string{PortStdin: "/dev/vport1p1"}
	if got := MissingPorts(ports, []string{PortStdin, PortWinsize, PortStderr}); !reflect.DeepEqual(got, []string{PortWinsize, PortStderr}) {
		t.Errorf("MissingPorts = %q", got)
	}
}

func TestParseWinsize(t *testing.T) {
	for _, c := range []struct {
		line       string
		cols, rows uint16
		ok         bool
	}{
		{"200 50\n", 200, 50, true},
		{" 40 10 ", 40, 10, true},
		{"0 0", 0, 0, true},
		{"200", 0, 0, false},
		{"200 50 1", 0, 0, false},
		{"70000 5", 0, 0, false},
		{"a b", 0, 0, false},
	} {
		cols, rows, ok := ParseWinsize(c.line)
		if cols != c.cols || rows != c.rows || ok != c.ok {
			t.Errorf("ParseWinsize(%q) = %d %d %v, want %d %d %v", c.line, cols, rows, ok, c.cols, c.rows, c.ok)
		}
	}
}

func TestActiveConsole(t *testing.T) {
	for _, c := range []struct{ active, want string }{
		{"hvc0\n", "hvc0"},
		{"ttyS0 hvc0\n", "hvc0"},
		{"\n", ""},
		{"../x\n", ""},
	} {
		fsys := fstest.MapFS{"sys/class/tty/console/active": {Data: []byte(c.active)}}
		if got := ActiveConsole(fsys); got != c.want {
			t.Errorf("ActiveConsole(%q) = %q, want %q", c.active, got, c.want)
		}
	}
	if got := ActiveConsole(fstest.MapFS{}); got != "" {
		t.Errorf("without sysfs: %q", got)
	}
}
