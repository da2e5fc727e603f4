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
