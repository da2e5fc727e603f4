package kruninit

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseRlimits(t *testing.T) {
	tests := []struct {
		in   string
		want []Rlimit
	}{
		{"", nil},
		{"7=1024:4096", []Rlimit{{7, 1024, 4096}}},
		{"7=1024:4096,4=0:0", []Rlimit{{7, 1024, 4096}, {4, 0, 0}}},
		{"0=10:unlimited", []Rlimit{{0, 10, RlimInfinity}}},
		{"3=-1:-1", []Rlimit{{3, RlimInfinity, RlimInfinity}}},
		{"15=infinity:INFINITY", []Rlimit{{15, RlimInfinity, RlimInfinity}}},
		{"NOFILE=1:2,RLIMIT_core=3:4,nproc=5:5", []Rlimit{{7, 1, 2}, {4, 3, 4}, {6, 5, 5}}},
		{"9=18446744073709551615:18446744073709551615", []Rlimit{{9, RlimInfinity, RlimInfinity}}},
	}
	for _, tc := range tests {
		got, err := ParseRlimits(tc.in)
		if err != nil {
			t.Errorf("ParseRlimits(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseRlimits(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseRlimitsErrors(t *testing.T) {
	tests := []struct{ in, mention string }{
		{"7", "want ID=CUR:MAX"},
		{"7=1024", "missing ':'"},
		{"=1:2", "missing resource id"},
		{"16=1:2", "out of range"},
		{"-1=1:2", "out of range"},
		{"BOGUS=1:2", `unknown resource "BOGUS"`},
		{"7=x:2", `soft limit: "x" is not a number`},
		{"7=1:y", `hard limit: "y" is not a number`},
		{"7=:2", "soft limit: missing value"},
		{"7=1:", "hard limit: missing value"},
		{"7=5:4", "soft limit above hard limit"},
		{"7=1:2,", `entry ""`},
		{"7=1:2,,4=0:0", `entry ""`},
		{"7=1:2,bad", `entry "bad"`},
		{"7=99999999999999999999:1", "not a number"},
	}
	for _, tc := range tests {
		got, err := ParseRlimits(tc.in)
		if err == nil {
			t.Errorf("ParseRlimits(%q) = %+v, want an error", tc.in, got)
			continue
		}
		if !errors.Is(err, ErrRlimits) || !strings.HasPrefix(err.Error(), "KRUN_RLIMITS: ") {
			t.Errorf("ParseRlimits(%q): error %q does not wrap ErrRlimits", tc.in, err)
		}
		if !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("ParseRlimits(%q): error %q does not mention %q", tc.in, err, tc.mention)
		}
	}
}
