package kruninit

import (
	"reflect"
	"regexp"
	"testing"
	"time"
)

func TestMilestoneString(t *testing.T) {
	tests := []struct {
		m    Milestone
		want string
	}{
		{Milestone{Name: MilestoneMounted, Boot: 1234567891 * time.Nanosecond}, "krun-init: milestone mounted t=1.234567"},
		{Milestone{Name: MilestoneConfig, Boot: 0}, "krun-init: milestone config t=0.000000"},
		{Milestone{Name: MilestoneExec, Boot: 62*time.Second + 5*time.Microsecond}, "krun-init: milestone exec t=62.000005"},
		{Milestone{Name: MilestoneExit, Boot: 2500 * time.Millisecond, Code: 3, HasCode: true}, "krun-init: milestone exit t=2.500000 code=3"},
		{Milestone{Name: MilestoneExit, Boot: time.Second, HasCode: true}, "krun-init: milestone exit t=1.000000 code=0"},
		{Milestone{Name: "x", Boot: -time.Second}, "krun-init: milestone x t=0.000000"},
	}
	for _, tc := range tests {
		if got := tc.m.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.m, got, tc.want)
		}
	}
}

// TestMilestoneRoundTrip formats milestones and parses them back with
// MilestonePattern, the way the workbench reads the console.
func TestMilestoneRoundTrip(t *testing.T) {
	for _, m := range []Milestone{
		{Name: MilestoneMounted, Boot: 812345 * time.Microsecond},
		{Name: MilestoneConfig, Boot: 3*time.Second + 1*time.Microsecond},
		{Name: MilestoneExec, Boot: 1000 * time.Second},
		{Name: MilestoneExit, Boot: 4 * time.Second, Code: 137, HasCode: true},
	} {
		line := m.String()
		sub := MilestonePattern.FindStringSubmatch(line)
		if sub == nil {
			t.Fatalf("MilestonePattern does not match %q", line)
		}
		if sub[MilestonePattern.SubexpIndex("name")] != m.Name {
			t.Errorf("%q: name group = %q", line, sub[MilestonePattern.SubexpIndex("name")])
		}
		got, ok := ParseMilestone(line + "\r\n")
		if !ok || got != m {
			t.Errorf("ParseMilestone(%q) = %+v %v, want %+v", line, got, ok, m)
		}
	}
}

func TestMilestonePatternTranscript(t *testing.T) {
	console := "booting\r\r\n" +
		"krun-init: milestone mounted t=0.700001\r\r\n" +
		"krun-init: milestone config t=0.731158\r\n" +
		"krun-init: milestone exec t=0.747159\n" +
		"hikrun-init: milestone exit t=0.831164 code=3\r\r\n" +
		"krun-init: milestone exit t=1.5 code=3\n" + // not 6 decimals
		"krun-init: milestone Exit t=1.500000\n" + // not lower case
		"krun-init: milestone exit t=1.500000 code=3 trailing\n"
	var names []string
	for _, sub := range MilestonePattern.FindAllStringSubmatch(console, -1) {
		names = append(names, sub[1]+"@"+sub[2]+"/"+sub[3])
	}
	want := []string{"mounted@0.700001/", "config@0.731158/", "exec@0.747159/", "exit@0.831164/3"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("milestones found = %q, want %q", names, want)
	}
	if _, ok := ParseMilestone("krun-init: milestone exec t=abc"); ok {
		t.Errorf("ParseMilestone accepted a bad time")
	}
	if got := MilestonePattern.SubexpNames(); !reflect.DeepEqual(got, []string{"", "name", "t", "code"}) {
		t.Errorf("submatch names = %q", got)
	}
	if _, err := regexp.Compile(MilestonePattern.String()); err != nil {
		t.Errorf("the pattern's source does not compile on its own: %v", err)
	}
}

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
