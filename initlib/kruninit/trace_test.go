package kruninit

import (
	"reflect"
	"testing"
)

func TestKernelWords(t *testing.T) {
	line := `reboot=k console=hvc0 init=/init.krun KRUN_INIT=/bin/sh "K=a b" x"y z"w -- "-c" "echo  hi"` + "\n"
	want := []string{"reboot=k", "console=hvc0", "init=/init.krun", "KRUN_INIT=/bin/sh", "K=a b", "xy zw", "--", "-c", "echo  hi"}
	if got := KernelWords(line); !reflect.DeepEqual(got, want) {
		t.Fatalf("KernelWords = %q\nwant           %q", got, want)
	}
	if got := KernelWords(`a ""`); !reflect.DeepEqual(got, []string{"a", ""}) {
		t.Errorf("empty quoted word: %q", got)
	}
}

func TestTraceEnabled(t *testing.T) {
	base := "reboot=k quiet init=/init.krun "
	tests := []struct {
		cmdline string
		env     []string
		want    bool
	}{
		{base + "KRUN_INIT=/bin/sh", nil, false},
		{base + "krunbench.trace=1 KRUN_INIT=/bin/sh", nil, true},
		{base + "krunbench.trace", nil, true},
		{base + "krunbench.trace=yes", nil, true},
		{base + "krunbench.trace=0", nil, false},
		{base + "krunbench.trace=1 krunbench.trace=0", nil, false},
		{base + "krunbench.trace=0", []string{"krunbench.trace=1"}, false},
		{base + "krunbench.tracer=1", nil, false},
		{base + "xkrunbench.trace=1", nil, false},
		{base + `-- "krunbench.trace=1"`, nil, false},
		{base + `"krunbench.trace=1" --`, nil, true},
		{"", []string{"krunbench.trace=1"}, true},
		{"", []string{"krunbench.trace=0"}, false},
		{"", []string{"KRUNBENCH_TRACE=1"}, false},
	}
	for _, tc := range tests {
		if got := TraceEnabled(tc.cmdline, tc.env); got != tc.want {
			t.Errorf("TraceEnabled(%q, %q) = %v, want %v", tc.cmdline, tc.env, got, tc.want)
		}
	}
}
