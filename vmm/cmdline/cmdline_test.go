package cmdline

import (
	"errors"
	"strings"
	"testing"
)

func TestBuildLibkrunLine(t *testing.T) {
	got, err := Build(Spec{
		Program: "/bin/sh", Workdir: "/tmp", Env: []string{"GREETING=hello world", "K=V"},
		Args: []string{"-c", "echo hi; exit 3"}, Extra: []string{"tsc_early_khz=2000000"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `reboot=k panic=-1 panic_print=0 nomodule console=hvc0 rootfstype=virtiofs rw quiet no-kvmapf noirqdebug ` +
		`tsc_early_khz=2000000 init=/init.krun KRUN_INIT=/bin/sh KRUN_WORKDIR=/tmp "GREETING=hello world" K=V ` +
		`-- "-c" "echo hi; exit 3"`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if v, _ := Build(Spec{Verbose: true}); strings.Contains(v, "quiet") {
		t.Fatalf("verbose line keeps quiet: %s", v)
	}
}

func TestBuildRejectsWhatTheKernelWouldMisread(t *testing.T) {
	bad := []Spec{
		{Args: []string{`say "hi"`}},
		{Env: []string{"NOEQUALS"}},
		{Env: []string{"1BAD=x"}},
		{Env: []string{"A B=x"}},
		{Args: []string{"line\nbreak"}},
		{Extra: []string{"a b"}},
	}
	for _, s := range bad {
		if _, err := Build(s); !errors.Is(err, ErrBadValue) {
			t.Errorf("%+v: err %v, want ErrBadValue", s, err)
		}
	}
	if _, err := Build(Spec{Env: []string{"BIG=" + strings.Repeat("x", 3000)}}); !errors.Is(err, ErrTooLong) {
		t.Errorf("3000-byte env: %v, want ErrTooLong", err)
	}
	if got, _ := Build(Spec{Args: []string{""}}); !strings.HasSuffix(got, `-- ""`) {
		t.Errorf("empty argument not kept: %s", got)
	}
}
