package kernelconfig

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fixture(t *testing.T, name string) string {
	p := filepath.Join("..", "..", "..", "shared", "guest", name)
	if _, err := os.Stat(p); err != nil {
		t.Skip("SKIPPED: no kernel fixture at " + p)
	}
	return p
}

func TestReadsFixtureKernels(t *testing.T) {
	want, err := os.Open(fixture(t, "kernel.config"))
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	ref, err := Parse(want)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range []string{"bzImage", "vmlinux"} {
		c, err := Read(fixture(t, img))
		if err != nil {
			t.Fatalf("%s: %v", img, err)
		}
		if len(c) != len(ref) || c["NR_CPUS"] != ref["NR_CPUS"] || !c.Enabled("VIRTIO_FS") {
			t.Fatalf("%s: %d options (want %d), NR_CPUS=%q", img, len(c), len(ref), c["NR_CPUS"])
		}
		if m := c.Missing(); len(m) != 0 {
			t.Fatalf("%s: fixture lacks %v", img, m)
		}
	}
}

func TestImagesWithoutConfigOrVirtioFS(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, bytes.Repeat([]byte("not a kernel "), 1000), 0o644)
	if _, err := Read(plain); !errors.Is(err, ErrNoConfig) {
		t.Fatalf("plain file: %v", err)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte("CONFIG_VIRTIO_MMIO=y\nCONFIG_FUSE_FS=y\n# CONFIG_VIRTIO_FS is not set\n"))
	zw.Close()
	img := append(append(append([]byte("junk"), startMark...), z.Bytes()...), endMark...)
	noFS := filepath.Join(dir, "nofs")
	os.WriteFile(noFS, img, 0o644)
	c, err := Read(noFS)
	if err != nil {
		t.Fatal(err)
	}
	if m := strings.Join(c.Missing(), " "); !strings.Contains(m, "CONFIG_VIRTIO_FS") || strings.Contains(m, "CONFIG_FUSE_FS") {
		t.Fatalf("missing: %s", m)
	}
}
