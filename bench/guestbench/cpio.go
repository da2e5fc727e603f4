package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/krunbench/krunbench/bench/guestbench/runnerconfig"
)

// cpioWriter writes a newc ("070701") cpio archive, the format the kernel
// unpacks as an initramfs.
type cpioWriter struct {
	w   io.Writer
	ino uint32
	err error
}

// cpio mode bits.
const (
	cpioDir  = 0o040000
	cpioReg  = 0o100000
	cpioChar = 0o020000
)

func (c *cpioWriter) entry(name string, mode uint32, data []byte, rdevMajor, rdevMinor uint32) {
	if c.err != nil {
		return
	}
	c.ino++
	nlink := uint32(1)
	if mode&cpioDir != 0 {
		nlink = 2
	}
	var hdr bytes.Buffer
	fmt.Fprintf(&hdr, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	hdr.WriteString(name)
	hdr.WriteByte(0)
	pad(&hdr, hdr.Len())
	hdr.Write(data)
	pad(&hdr, len(data))
	_, c.err = c.w.Write(hdr.Bytes())
}

// pad aligns to 4 bytes; the header plus name is 110+len(name)+1, data
// starts aligned, so padding after n bytes of either is (4 - n%4) % 4.
func pad(b *bytes.Buffer, n int) {
	b.Write(make([]byte, (4-n%4)%4))
}

func (c *cpioWriter) dir(name string) { c.entry(name, cpioDir|0o755, nil, 0, 0) }
func (c *cpioWriter) file(name string, perm uint32, data []byte) {
	c.entry(name, cpioReg|perm, data, 0, 0)
}
func (c *cpioWriter) char(name string, major, minor uint32) {
	c.entry(name, cpioChar|0o600, nil, major, minor)
}

// close writes the trailer.
func (c *cpioWriter) close() error {
	c.entry("TRAILER!!!", 0, nil, 0, 0)
	return c.err
}

// writeInitramfs makes the benchmark's root: /init (the runner), its
// config, /dev/console (the kernel opens it for init's stdio before
// devtmpfs is mounted) and the mount points.
func writeInitramfs(path string, runner, config []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	c := &cpioWriter{w: f}
	for _, d := range []string{"dev", "proc", "sys", "mnt"} {
		c.dir(d)
	}
	c.char("dev/console", 5, 1)
	c.file("init", 0o755, runner)
	c.file(runnerconfig.Name, 0o644, config)
	if err := c.close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
