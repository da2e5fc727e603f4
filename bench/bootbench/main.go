// Command bootbench measures how long `krunbench run -- /bin/true` takes
// to reach the workload's exit on the in-process KVM engine, side by side
// with QEMU (-M microvm -accel kvm) booting the same kernel and default
// init from krunbench's vhost-user server (krunbench run --engine qemu
// --accel kvm), with a breakdown of each run (VM created, kernel entry,
// first FUSE request, init.krun EOF read, workload exec, exit).
//
// Where this machine has no hardware KVM, both run inside an L1 Linux
// under QEMU TCG with nested SVM (vmm/l1/run.sh bench): there absolute
// times are slow and mean little, the ratio between the two engines in
// the same L1 is the result. On the host, bootbench builds itself
// statically, hands itself to vmm/l1/run.sh, collects the samples it
// prints from inside L1, and writes a table and bench/results/boot.json.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/krunbench/krunbench/bench/internal/results"
)

// samplePrefix starts each sample line that the L1 side prints.
const samplePrefix = "BOOTBENCH "

// sample is one run of one engine (bench/internal/results).
type sample = results.BootSample

func main() {
	if len(os.Args) > 1 && os.Args[1] == "l1" {
		os.Exit(inL1(os.Args[2:]))
	}
	os.Exit(onHost(os.Args[1:]))
}

// engines are the two ways of booting that are compared.
var engines = []struct{ name, label string }{
	{"kvm", "krunbench (in-process KVM)"},
	{"qemu", "QEMU microvm -accel kvm + krunbench vhost-user"},
}

// inL1 runs the samples and prints one line per sample.
func inL1(args []string) int {
	fl := flag.NewFlagSet("l1", flag.ExitOnError)
	bin := fl.String("bin", "/bin/krunbench", "krunbench binary")
	kernel := fl.String("kernel", "", "guest kernel (a bzImage both engines boot)")
	runs := fl.Int("runs", 5, "runs per engine")
	first := fl.Int("first", 1, "number of the first measured run (a fresh L1 continues a frozen one's series)")
	fl.Parse(args)
	root, err := busyboxRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bootbench:", err)
		return 1
	}
	failed := 0
	for i := range *runs + 1 { // run 0 warms the page cache and is dropped
		n := 0
		if i > 0 {
			n = *first + i - 1
		}
		for j := range engines {
			e := engines[(n+j)%len(engines)] // alternate which goes first
			s := runOnce(*bin, *kernel, root, e.name)
			s.Run = n
			if s.Err != "" {
				failed++
			}
			line, _ := json.Marshal(s)
			fmt.Printf("%s%s\n", samplePrefix, line)
		}
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// runOnce boots one guest running /bin/true and reads krunbench's
// breakdown line.
func runOnce(bin, kernel, root, engine string) sample {
	args := []string{"run", "--engine", engine, "--kernel", kernel, "--rootfs", root, "--timings", "--boot-trace"}
	if engine == "qemu" {
		args = append(args, "--accel", "kvm")
	}
	cmd := exec.Command(bin, append(args, "--", "/bin/true")...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := runBounded(cmd, 60*time.Second)
	s := sample{Engine: engine, WallMS: ms(time.Since(start)), Code: cmd.ProcessState.ExitCode()}
	for line := range strings.Lines(out.String()) {
		// --timings prints a bare JSON line (older krunbench: prefixed).
		if j := strings.TrimPrefix(strings.TrimSpace(line), "krunbench: boot "); strings.HasPrefix(j, `{"vm_created_ms":`) {
			var b map[string]any
			if json.Unmarshal([]byte(j), &b) == nil {
				s.Boot = map[string]float64{}
				for k, v := range b {
					if f, ok := v.(float64); ok {
						s.Boot[strings.TrimSuffix(k, "_ms")] = f
					}
				}
			}
		}
	}
	switch {
	case err != nil:
		s.Err = err.Error()
	case s.Code != 0 || s.Boot == nil:
		s.Err = "exit " + fmt.Sprint(s.Code) + ": " + lastLine(out.String())
	}
	return s
}

func runBounded(cmd *exec.Cmd, limit time.Duration) error {
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return err
	}
	t := time.AfterFunc(limit, func() { cmd.Process.Kill() })
	defer t.Stop()
	_ = cmd.Wait()
	if cmd.ProcessState.ExitCode() == -1 {
		return fmt.Errorf("killed after %v", limit)
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// busyboxRoot makes the guest's root: static busybox and its applets.
func busyboxRoot() (string, error) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return "", err
	}
	root, err := os.MkdirTemp("", "bootbench-root-")
	if err != nil {
		return "", err
	}
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "etc", "root"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return "", err
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		return "", err
	}
	for _, a := range []string{"sh", "true", "echo", "cat", "ls", "mount"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			return "", err
		}
	}
	return root, nil
}

// readSamples collects the sample lines of an L1 console.
func readSamples(console []byte) []sample {
	var out []sample
	sc := bufio.NewScanner(bytes.NewReader(console))
	for sc.Scan() {
		j, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), samplePrefix)
		if !ok {
			continue
		}
		var s sample
		if json.Unmarshal([]byte(j), &s) == nil {
			out = append(out, s)
		}
	}
	return out
}
