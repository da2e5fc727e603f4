package runnerconfig

import (
	"reflect"
	"strings"
	"testing"
)

// TestEveryFieldRoundTrips: a Config with every field set comes back
// equal through Encode and Decode, so no field is left out of the file
// (a `json:"-"` tag) or read into another (two fields under one name).
func TestEveryFieldRoundTrips(t *testing.T) {
	var c Config
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name)
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{v.Type().Field(i).Name}))
		default:
			t.Fatalf("field %s: kind %s not filled by this test", v.Type().Field(i).Name, f.Kind())
		}
	}
	b, err := Encode(&c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, c) {
		t.Fatalf("read back %+v, wrote %+v", *got, c)
	}
	for name := range Optional {
		if _, ok := v.Type().FieldByName(name); !ok {
			t.Errorf("Optional names %s, which Config lacks", name)
		}
	}
}

// TestDecodeRefusesAnUnknownField: a host that writes a field this
// runner does not declare gets an error, not a silent zero; bad JSON too.
func TestDecodeRefusesAnUnknownField(t *testing.T) {
	if _, err := Decode([]byte(`{"fs":"virtiofs","chunk_size":4096}`)); err == nil || !strings.Contains(err.Error(), "chunk_size") {
		t.Fatalf("Decode(an unknown field) = %v, want an error naming it", err)
	}
	if _, err := Decode([]byte(`{"fs":`)); err == nil {
		t.Fatal("Decode(truncated JSON) = nil error")
	}
	c, err := Decode([]byte(`{"fs":"virtiofs"}`))
	if err != nil || c.ChunkBytes != DefaultChunkBytes {
		t.Fatalf("Decode without chunk_bytes = %+v, %v; want ChunkBytes %d", c, err, DefaultChunkBytes)
	}
}
