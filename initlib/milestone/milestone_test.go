package milestone

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
		{Milestone{Name: Mounted, Boot: 1234567891 * time.Nanosecond}, "krun-init: milestone mounted t=1.234567"},
		{Milestone{Name: Config, Boot: 0}, "krun-init: milestone config t=0.000000"},
		{Milestone{Name: Exec, Boot: 62*time.Second + 5*time.Microsecond}, "krun-init: milestone exec t=62.000005"},
		{Milestone{Name: Exit, Boot: 2500 * time.Millisecond, Code: 3, HasCode: true}, "krun-init: milestone exit t=2.500000 code=3"},
		{Milestone{Name: Exit, Boot: time.Second, HasCode: true}, "krun-init: milestone exit t=1.000000 code=0"},
		{Milestone{Name: "x", Boot: -time.Second}, "krun-init: milestone x t=0.000000"},
	}
	for _, tc := range tests {
		if got := tc.m.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.m, got, tc.want)
		}
	}
}

// TestMilestoneRoundTrip formats milestones and parses them back with
// Pattern, the way the workbench reads the console.
func TestMilestoneRoundTrip(t *testing.T) {
	for _, m := range []Milestone{
		{Name: Mounted, Boot: 812345 * time.Microsecond},
		{Name: Config, Boot: 3*time.Second + 1*time.Microsecond},
		{Name: Exec, Boot: 1000 * time.Second},
		{Name: Exit, Boot: 4 * time.Second, Code: 137, HasCode: true},
	} {
		line := m.String()
		sub := Pattern.FindStringSubmatch(line)
		if sub == nil {
			t.Fatalf("Pattern does not match %q", line)
		}
		if sub[Pattern.SubexpIndex("name")] != m.Name {
			t.Errorf("%q: name group = %q", line, sub[Pattern.SubexpIndex("name")])
		}
		got, ok := Parse(line + "\r\n")
		if !ok || got != m {
			t.Errorf("Parse(%q) = %+v %v, want %+v", line, got, ok, m)
		}
	}
}

func TestPatternTranscript(t *testing.T) {
	console := "booting\r\r\n" +
		"krun-init: milestone mounted t=0.700001\r\r\n" +
		"krun-init: milestone config t=0.731158\r\n" +
		"krun-init: milestone exec t=0.747159\n" +
		"hikrun-init: milestone exit t=0.831164 code=3\r\r\n" +
		"krun-init: milestone exit t=1.5 code=3\n" + // not 6 decimals
		"krun-init: milestone Exit t=1.500000\n" + // not lower case
		"krun-init: milestone exit t=1.500000 code=3 trailing\n"
	var names []string
	for _, sub := range Pattern.FindAllStringSubmatch(console, -1) {
		names = append(names, sub[1]+"@"+sub[2]+"/"+sub[3])
	}
	want := []string{"mounted@0.700001/", "config@0.731158/", "exec@0.747159/", "exit@0.831164/3"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("milestones found = %q, want %q", names, want)
	}
	if _, ok := Parse("krun-init: milestone exec t=abc"); ok {
		t.Errorf("Parse accepted a bad time")
	}
	if got := Pattern.SubexpNames(); !reflect.DeepEqual(got, []string{"", "name", "t", "code"}) {
		t.Errorf("submatch names = %q", got)
	}
	if _, err := regexp.Compile(Pattern.String()); err != nil {
		t.Errorf("the pattern's source does not compile on its own: %v", err)
	}
}
