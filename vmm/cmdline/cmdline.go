// Package cmdline assembles the guest kernel command line the way libkrun
// does: the fixed boot parameters, init=/init.krun, the KRUN_* variables and
// the workload's environment, then "--" and the workload's arguments, each
// quoted for the kernel's parser. Every engine builds its line here.
package cmdline

import (
	"errors"
	"fmt"
	"strings"
)

// MaxLen is the x86 kernel's COMMAND_LINE_SIZE; longer lines are cut by
// the kernel, so they are refused here.
const MaxLen = 2048

// Errors for command lines the kernel would misread.
var (
	ErrTooLong  = errors.New("cmdline: longer than the kernel keeps (2048 bytes); move the environment to /.krun_config.json")
	ErrBadValue = errors.New("cmdline: value the kernel cannot parse")
)

// Base are libkrun's fixed parameters on x86_64 (no root=: the kernel mounts
// the virtio-fs device tagged /dev/root).
var Base = []string{
	"reboot=k", "panic=-1", "panic_print=0", "nomodule", "console=hvc0",
	"rootfstype=virtiofs", "rw", "quiet", "no-kvmapf",
}

// Ours are the parameters krunbench adds to libkrun's line, after Base.
//
// noirqdebug: the guest's virtio-console driver reclaims a console
// write's buffer by polling the used ring (hvc's put_chars), so the
// interrupt that follows finds nothing new and is "unhandled". After
// 100,000 such interrupts (about 2.7 MB of console output, `seq 1
// 400000`) the kernel's spurious-IRQ detector prints "irq N: nobody
// cared" and disables the console device's interrupt; from then on the
// console's input (the user's keys) is picked up only by a 100 ms poll
// timer. Without the detector the interrupt stays enabled.
var Ours = []string{"noirqdebug"}

// Spec is what goes on the line besides Base.
type Spec struct {
	// Init is the init the kernel runs; default /init.krun.
	Init string
	// NoInit leaves init= out: the kernel searches for an init itself.
	NoInit bool
	// Program is KRUN_INIT: the workload's executable ("" leaves the
	// choice to the init: its config file, else /bin/sh).
	Program string
	// Workdir is KRUN_WORKDIR.
	Workdir string
	// Env are K=V pairs handed to init as its environment.
	Env []string
	// Args follow "--": argv[1:] of the workload.
	Args []string
	// Verbose drops "quiet" so boot messages reach the console.
	Verbose bool
	// Extra are further kernel parameters (virtio_mmio.device=...,
	// tsc_early_khz=...), placed before init's variables.
	Extra []string
}

// quote returns s as one kernel parameter word: double-quoted when it has
// spaces or is empty. The kernel has no escapes, so quotes and newlines
// cannot be carried.
func quote(s string) (string, error) {
	if strings.ContainsAny(s, "\"\n\x00") {
		return "", fmt.Errorf("%w: %q", ErrBadValue, s)
	}
	if s == "" || strings.ContainsAny(s, " \t") {
		return `"` + s + `"`, nil
	}
	return s, nil
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i, c := range k {
		if c != '_' && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Build returns the command line for s.
func Build(s Spec) (string, error) {
	words := append(append([]string(nil), Base...), Ours...)
	if s.Verbose {
		words = removeWord(words, "quiet")
	}
	for _, e := range s.Extra {
		if strings.ContainsAny(e, " \t\"\n") {
			return "", fmt.Errorf("%w: kernel parameter %q", ErrBadValue, e)
		}
		words = append(words, e)
	}
	init := s.Init
	if init == "" {
		init = "/init.krun"
	}
	if !s.NoInit {
		words = append(words, "init="+init)
	}
	vars := []string{}
	if s.Program != "" {
		vars = append(vars, "KRUN_INIT="+s.Program)
	}
	if s.Workdir != "" {
		vars = append(vars, "KRUN_WORKDIR="+s.Workdir)
	}
	for _, kv := range s.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || !validKey(k) {
			return "", fmt.Errorf("%w: environment entry %q is not KEY=VALUE", ErrBadValue, kv)
		}
		vars = append(vars, kv)
	}
	for _, v := range vars {
		q, err := quote(v)
		if err != nil {
			return "", err
		}
		words = append(words, q)
	}
	if len(s.Args) > 0 {
		words = append(words, "--")
		for _, a := range s.Args {
			q, err := quote(a)
			if err != nil {
				return "", err
			}
			if !strings.HasPrefix(q, `"`) {
				q = `"` + q + `"`
			}
			words = append(words, q)
		}
	}
	line := strings.Join(words, " ")
	if len(line) >= MaxLen {
		return "", fmt.Errorf("%w: %d bytes", ErrTooLong, len(line))
	}
	return line, nil
}

func removeWord(words []string, w string) []string {
	out := words[:0]
	for _, x := range words {
		if x != w {
			out = append(out, x)
		}
	}
	return out
}
