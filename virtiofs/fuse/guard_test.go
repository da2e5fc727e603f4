package fuse_test

import (
	"testing"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

func TestIDRules(t *testing.T) {
	var m fuse.IDMap
	for _, s := range []string{"squash:0:65534:1", "map:1000:201000:1000"} {
		r, err := fuse.ParseIDRule(s)
		if err != nil {
			t.Fatal(err)
		}
		m = append(m, r)
	}
	for guest, host := range map[uint32]uint32{0: 65534, 1: 1, 999: 999, 1000: 201000, 1999: 201999, 2000: 2000} {
		if got := m.ToHost(guest); got != host {
			t.Errorf("ToHost(%d) = %d, want %d", guest, got, host)
		}
	}
	for _, bad := range []string{"", "squash:0:1", "drop:0:1:1", "map:0:x:1", "map:0:1:0", "map:4294967295:0:2", "map:0:4294967295:2", "map:-1:0:1"} {
		if _, err := fuse.ParseIDRule(bad); err == nil {
			t.Errorf("ParseIDRule(%q) accepted", bad)
		}
	}
}
