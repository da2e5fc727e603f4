package results

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// DecodeStrict reads a results file into v, refusing any field v does
// not declare: how the benchmarks' tests check that what a writer writes
// is what a reader declares.
func DecodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// FirstDiff says where got first differs from want, with 80 bytes of
// each around it; "" when they are equal.
func FirstDiff(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	i := 0
	for i < min(len(got), len(want)) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("differs from byte %d: got %q, want %q", i,
		got[max(0, i-80):min(len(got), i+80)], want[max(0, i-80):min(len(want), i+80)])
}
