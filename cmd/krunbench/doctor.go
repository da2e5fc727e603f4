package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/initlib/defaultinit"
	"github.com/krunbench/krunbench/session"
	"github.com/krunbench/krunbench/vmm/kernelconfig"
	"github.com/krunbench/krunbench/vmm/kvm"
)

func newDoctorCmd() *cobra.Command {
	var kernel string
	var printKernel bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check what this machine offers krunbench: KVM, kernel, QEMU, FUSE, the default init",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if printKernel {
				path, err := session.FindKernel(kernel)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), path)
				return nil
			}
			d := doctor{w: cmd.OutOrStdout()}
			d.kvm()
			d.kernel(kernel)
			d.qemu()
			d.fuse()
			d.init()
			if d.failed > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&kernel, "kernel", "", "kernel image to check (default: as krunbench run finds it)")
	cmd.Flags().BoolVar(&printKernel, "print-kernel", false, "only print the kernel krunbench run would use (make run asks this), or fail saying why none")
	return cmd
}

type doctor struct {
	w      io.Writer
	failed int
}

func (d *doctor) line(ok bool, what, detail string) {
	mark := "ok  "
	if !ok {
		mark = "FAIL"
		d.failed++
	}
	fmt.Fprintf(d.w, "%s  %-14s %s\n", mark, what, unnamed(what, detail))
}

func (d *doctor) note(what, detail string) {
	fmt.Fprintf(d.w, "--    %-14s %s\n", what, unnamed(what, detail))
}

// unnamed drops the "what: " an error starts with, which the line's
// second column already says ("kvm  kvm: unavailable" reads "kvm
// unavailable").
func unnamed(what, detail string) string {
	first, _, _ := strings.Cut(what, " ")
	return strings.TrimPrefix(detail, first+": ")
}

func (d *doctor) kvm() {
	sys, err := kvm.Open()
	if err != nil {
		d.note("kvm", fmt.Sprintf("%v (the qemu engine runs with TCG instead)", err))
		return
	}
	defer sys.Close()
	var missing []string
	for _, c := range kvm.RequiredCaps {
		if n, err := sys.CheckExtension(c); err != nil || n <= 0 {
			missing = append(missing, c.String())
		}
	}
	if len(missing) > 0 {
		d.line(false, "kvm caps", "missing "+strings.Join(missing, ", "))
		return
	}
	d.line(true, "kvm caps", fmt.Sprintf("/dev/kvm API 12, all %d required capabilities", len(kvm.RequiredCaps)))
	if err := kvm.KVMUsable(); err != nil {
		d.line(false, "kvm run", err.Error())
		return
	}
	d.line(true, "kvm run", "a test guest ran")
}

func (d *doctor) kernel(given string) {
	path, err := session.FindKernel(given)
	if err != nil {
		d.line(false, "kernel", err.Error())
		return
	}
	d.line(true, "kernel", path)
	c, err := kernelconfig.Read(path)
	if err != nil {
		d.note("kernel config", err.Error())
		return
	}
	if m := c.Missing(); len(m) > 0 {
		d.line(false, "kernel config", "lacks "+strings.Join(m, ", "))
		return
	}
	d.line(true, "kernel config", fmt.Sprintf("IKCONFIG: %d options, virtio-fs, virtio-mmio, hvc present; NR_CPUS=%s", len(c), c["NR_CPUS"]))
}

func (d *doctor) qemu() {
	out, err := exec.Command("qemu-system-x86_64", "--version").Output()
	if err != nil {
		d.line(false, "qemu", "qemu-system-x86_64 not found (apt-get install qemu-system-x86): the qemu engine is unavailable")
		return
	}
	first, _, _ := strings.Cut(string(out), "\n")
	d.line(true, "qemu", first)
}

func (d *doctor) fuse() {
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		d.note("/dev/fuse", fmt.Sprintf("%v (only `serve --mount` needs it)", err))
		return
	}
	f.Close()
	d.line(true, "/dev/fuse", "usable (serve --mount)")
}

func (d *doctor) init() {
	p := defaultinit.Payload()
	f := initlib.CheckPayload(p.Bytes, "")
	d.line(f.Verdict == initlib.OK, "default init", fmt.Sprintf("built in, %d KiB: %s", p.Size()/1024, f.Detail))
}
