package results

import (
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
