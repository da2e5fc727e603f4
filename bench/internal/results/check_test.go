package results

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestDecodeStrictAndFirstDiff: an undeclared field is an error naming
// it; FirstDiff finds the first differing byte and is "" for equal input.
func TestDecodeStrictAndFirstDiff(t *testing.T) {
	var p Paired
	if err := DecodeStrict([]byte(`{"median":1,"mean":2}`), &p); err == nil || !strings.Contains(err.Error(), "mean") {
		t.Fatalf("DecodeStrict(an undeclared field) = %v", err)
	}
	if err := DecodeStrict([]byte(`{"median":1,"p25":0.5}`), &p); err != nil || p.Median != 1 || p.P25 != 0.5 {
		t.Fatalf("DecodeStrict = %v, %+v", err, p)
	}
	if d := FirstDiff([]byte("abc"), []byte("abc")); d != "" {
		t.Fatalf("FirstDiff(equal) = %q", d)
	}
	if d := FirstDiff([]byte("abXd"), []byte("abc")); !strings.HasPrefix(d, "differs from byte 2:") {
		t.Fatalf("FirstDiff = %q", d)
	}
}

// TestSameAfterWrite: the same bytes are nil, others say where they
// differ, a writer's error comes back.
func TestSameAfterWrite(t *testing.T) {
	write := func(b string) func(string) error {
		return func(path string) error { return os.WriteFile(path, []byte(b), 0o644) }
	}
	if err := SameAfterWrite([]byte("{}\n"), write("{}\n")); err != nil {
		t.Fatal(err)
	}
	if err := SameAfterWrite([]byte("{}\n"), write("{ }\n")); err == nil || !strings.Contains(err.Error(), "byte 1") {
		t.Fatalf("SameAfterWrite(other bytes) = %v", err)
	}
	if err := SameAfterWrite(nil, func(string) error { return errors.New("no disk") }); err == nil || err.Error() != "no disk" {
		t.Fatalf("SameAfterWrite(a failing writer) = %v", err)
	}
}

// TestTargetVerdictAndMissed: no judged row is n/a; a miss gives the
// caller's word and the missed rows sorted.
func TestTargetVerdictAndMissed(t *testing.T) {
	pass, fail := true, false
	if v := (&Target{}).Verdict("MISS"); v != "n/a" {
		t.Errorf("unjudged: %q", v)
	}
	if v := (&Target{Pass: &pass}).Verdict("MISS"); v != "PASS" {
		t.Errorf("passed: %q", v)
	}
	tg := &Target{Pass: &fail, Rows: map[string]bool{"z": false, "a": false, "m": true}}
	if v, m := tg.Verdict("FAIL"), tg.Missed(); v != "FAIL" || strings.Join(m, ",") != "a,z" {
		t.Errorf("missed: %q %q", v, m)
	}
}

// TestTargetSettle: no rows leave Pass nil; every row met, true; one
// missed, false.
func TestTargetSettle(t *testing.T) {
	none := &Target{}
	none.Settle()
	met := &Target{Rows: map[string]bool{"a": true, "b": true}}
	met.Settle()
	missed := &Target{Rows: map[string]bool{"a": true, "b": false}}
	missed.Settle()
	if none.Pass != nil || met.Pass == nil || !*met.Pass || missed.Pass == nil || *missed.Pass {
		t.Fatalf("Settle: none %v, met %v, missed %v", none.Pass, met.Pass, missed.Pass)
	}
}
