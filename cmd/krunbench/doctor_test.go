package main

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func TestDoctorReportsKernelAndTools(t *testing.T) {
	kernel := guestKernel(t)
	out, _ := exec.Command(krunbenchBin(t), "doctor", "--kernel", kernel).CombinedOutput()
	for _, want := range []string{"kernel         " + kernel, "kernel config  IKCONFIG", "default init   built in"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 2 && strings.HasPrefix(f[2], f[1]+":") {
			t.Errorf("doctor repeats the line's name: %q", l)
		}
	}
	out, err := exec.Command(krunbenchBin(t), "doctor", "--kernel", "/etc/hostname").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(string(out), "FAIL") {
		t.Fatalf("doctor with a bad kernel: %v\n%s", err, out)
	}
}
