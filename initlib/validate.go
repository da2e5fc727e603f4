package initlib

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Verdict grades a library item.
type Verdict int

// Verdicts, from good to bad.
const (
	OK Verdict = iota
	Warn
	Bad
)

func (v Verdict) String() string {
	return [...]string{"ok", "warn", "error"}[v]
}

// Finding is a verdict with the reason, one line.
type Finding struct {
	Verdict Verdict
	Detail  string
}

func ok(format string, a ...any) Finding   { return Finding{OK, fmt.Sprintf(format, a...)} }
func warn(format string, a ...any) Finding { return Finding{Warn, fmt.Sprintf(format, a...)} }
func bad(format string, a ...any) Finding  { return Finding{Bad, fmt.Sprintf(format, a...)} }

// IsScript reports whether b starts with a shebang line.
func IsScript(b []byte) bool { return bytes.HasPrefix(b, []byte("#!")) }

// CheckPayload judges an init payload, against a root filesystem when one
// is given (rootfs may be ""): ELF x86-64 static or with its loader
// present, or a script whose interpreter is present.
func CheckPayload(b []byte, rootfs string) Finding {
	switch {
	case len(b) == 0:
		return bad("empty")
	case len(b) > MaxPayloadSize:
		return bad("larger than %d MiB", MaxPayloadSize>>20)
	case IsScript(b):
		return checkScript(b, rootfs)
	case bytes.HasPrefix(b, []byte(elf.ELFMAG)):
		return checkELF(b, rootfs)
	}
	return bad("neither an ELF executable nor a #! script: the kernel would refuse it (ENOEXEC)")
}

func checkScript(b []byte, rootfs string) Finding {
	line, _, _ := bytes.Cut(b[2:], []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) == 0 {
		return bad("#! line names no interpreter")
	}
	interp := fields[0]
	if !strings.HasPrefix(interp, "/") {
		return bad("interpreter %q is not an absolute path", interp)
	}
	if rootfs == "" {
		return ok("script for %s", interp)
	}
	if err := executableIn(rootfs, interp); err != nil {
		return bad("script interpreter %s: %v in the root filesystem", interp, err)
	}
	return ok("script for %s (served persistently: its interpreter re-opens it)", interp)
}

func checkELF(b []byte, rootfs string) Finding {
	if len(b) > elf.EI_CLASS && elf.Class(b[elf.EI_CLASS]) != elf.ELFCLASS64 {
		return bad("%s ELF; the guest runs x86-64", elf.Class(b[elf.EI_CLASS]))
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return bad("corrupt ELF: %v", err)
	}
	defer f.Close()
	switch {
	case f.Class != elf.ELFCLASS64:
		return bad("%s ELF; the guest runs x86-64", f.Class)
	case f.Machine != elf.EM_X86_64:
		return bad("ELF for %s; the guest runs x86-64", f.Machine)
	case f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN:
		return bad("ELF of type %s is not an executable", f.Type)
	}
	interp := ""
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		raw := make([]byte, p.Filesz)
		if _, err := p.ReadAt(raw, 0); err != nil {
			return bad("unreadable PT_INTERP: %v", err)
		}
		interp = string(bytes.TrimRight(raw, "\x00"))
	}
	if interp == "" {
		return ok("static x86-64 ELF, %d KiB", (len(b)+1023)/1024)
	}
	if rootfs == "" {
		return warn("dynamic x86-64 ELF: needs %s in the root filesystem", interp)
	}
	if err := executableIn(rootfs, interp); err != nil {
		return bad("dynamic ELF: its loader %s: %v in the root filesystem", interp, err)
	}
	return ok("dynamic x86-64 ELF, loader %s present", interp)
}

// errEscapes reports a symlink chain leaving the root filesystem.
var errEscapes = errors.New("symlinks lead outside")

// resolveIn resolves p inside root as the guest would see it: absolute
// symlinks are relative to root, and ".." never climbs above it.
func resolveIn(root, p string) (string, error) {
	parts := strings.Split(strings.TrimPrefix(path.Clean("/"+p), "/"), "/")
	cur := "/"
	for hops := 0; len(parts) > 0; {
		name := parts[0]
		parts = parts[1:]
		if name == "" || name == "." {
			continue
		}
		next := path.Join(cur, name)
		fi, err := os.Lstat(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", errEscapes
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		parts = append(strings.Split(target, "/"), parts...)
	}
	return filepath.Join(root, cur), nil
}

func executableIn(root, p string) error {
	real, err := resolveIn(root, p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errors.New("missing")
		}
		return err
	}
	fi, err := os.Stat(real)
	switch {
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return errors.New("not a regular file")
	case fi.Mode()&0o111 == 0:
		return errors.New("not executable")
	}
	return nil
}

// CheckRootFS judges a root filesystem directory for the default init.
func CheckRootFS(dir string) Finding {
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		return bad("%v", err)
	case !fi.IsDir():
		return bad("not a directory")
	}
	if fi, err := os.Stat(filepath.Join(dir, "dev")); err != nil || !fi.IsDir() {
		return bad("no /dev: the kernel cannot mount devtmpfs nor open a console, so init has no output")
	}
	if err := executableIn(dir, "/bin/sh"); err != nil {
		return warn("no usable /bin/sh (%v): give the workload's command explicitly", err)
	}
	return ok("directory with /dev and /bin/sh")
}

// CheckKernel judges a guest kernel image: a bzImage or an x86-64 vmlinux.
func CheckKernel(p string) Finding {
	f, err := os.Open(p)
	if err != nil {
		return bad("%v", err)
	}
	defer f.Close()
	head := make([]byte, 0x210)
	n, _ := f.ReadAt(head, 0)
	head = head[:n]
	switch {
	case len(head) >= 0x206 && string(head[0x202:0x206]) == "HdrS":
		return ok("bzImage")
	case bytes.HasPrefix(head, []byte(elf.ELFMAG)):
		ef, err := elf.NewFile(f)
		if err != nil {
			return bad("corrupt ELF: %v", err)
		}
		if ef.Machine != elf.EM_X86_64 {
			return bad("ELF for %s, not x86-64", ef.Machine)
		}
		return ok("vmlinux (uncompressed ELF), entry %#x", ef.Entry)
	}
	return bad("neither a bzImage nor a vmlinux ELF")
}
