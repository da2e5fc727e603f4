// Package kernelconfig reads the build configuration embedded in a Linux
// kernel image (CONFIG_IKCONFIG) from a vmlinux or a bzImage, and checks
// it for what a krunbench guest needs.
package kernelconfig

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrNoConfig reports an image without an embedded configuration.
var ErrNoConfig = errors.New("kernel image carries no configuration (built without CONFIG_IKCONFIG)")

var (
	startMark = []byte("IKCFG_ST")
	endMark   = []byte("IKCFG_ED")
	gzipMagic = []byte{0x1f, 0x8b, 0x08}
)

// maxImage bounds how much of an image is read.
const maxImage = 512 << 20

// Config maps option names (without CONFIG_) to values ("y", "m", "16"...).
type Config map[string]string

// Read extracts the configuration of the kernel image at path. A bzImage's
// compressed payload is searched for gzip streams, as the kernel's own
// scripts/extract-ikconfig does.
func Read(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := io.ReadAll(io.LimitReader(f, maxImage))
	if err != nil {
		return nil, err
	}
	if c, err := fromBlob(img); err == nil {
		return c, nil
	}
	for off := 0; ; {
		i := bytes.Index(img[off:], gzipMagic)
		if i < 0 {
			return nil, ErrNoConfig
		}
		off += i
		if inner, err := gunzip(img[off:]); err == nil {
			if c, err := fromBlob(inner); err == nil {
				return c, nil
			}
		}
		off++
	}
}

// gunzip inflates the gzip stream at the start of b (trailing bytes are
// ignored), bounded in size.
func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	zr.Multistream(false)
	var out bytes.Buffer
	_, err = io.Copy(&out, io.LimitReader(zr, maxImage))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	return out.Bytes(), nil
}

// fromBlob finds the IKCFG_ST..IKCFG_ED block and parses it.
func fromBlob(b []byte) (Config, error) {
	s := bytes.Index(b, startMark)
	if s < 0 {
		return nil, ErrNoConfig
	}
	e := bytes.Index(b[s:], endMark)
	if e < 0 {
		return nil, ErrNoConfig
	}
	text, err := gunzip(b[s+len(startMark) : s+e])
	if err != nil {
		return nil, fmt.Errorf("embedded configuration: %w", err)
	}
	return Parse(bytes.NewReader(text))
}

// Parse reads a .config file.
func Parse(r io.Reader) (Config, error) {
	c := Config{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "CONFIG_") {
			c[strings.TrimPrefix(k, "CONFIG_")] = strings.Trim(v, `"`)
		}
	}
	return c, sc.Err()
}

// Enabled reports whether an option is built in (=y).
func (c Config) Enabled(name string) bool { return c[name] == "y" }

// Required are the options a krunbench guest cannot boot without, with
// what each is for.
var Required = []struct{ Name, Why string }{
	{"VIRTIO_MMIO", "virtio devices on the MMIO bus"},
	{"VIRTIO_FS", "the virtio-fs root"},
	{"FUSE_FS", "the FUSE client under virtio-fs"},
	{"VIRTIO_CONSOLE", "the hvc0 console"},
	{"HVC_DRIVER", "the hvc0 console"},
	{"DEVTMPFS", "/dev in the guest"},
	{"BINFMT_ELF", "running the init"},
	{"PROC_FS", "/proc for the init"},
}

// Missing lists the required options not built in.
func (c Config) Missing() []string {
	var out []string
	for _, r := range Required {
		if !c.Enabled(r.Name) {
			out = append(out, "CONFIG_"+r.Name+" ("+r.Why+")")
		}
	}
	return out
}
