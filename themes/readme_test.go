package themes

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEDocumentsTheFormat: the README's "Theme files" section names
// every colour key a theme file may set, and its example loads (issue 12
// item 13: the format was documented nowhere). A key added to Palette
// without a line in the README fails here.
func TestREADMEDocumentsTheFormat(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "## Theme files")
	if !ok {
		t.Fatal(`README.md has no "## Theme files" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	pt := reflect.TypeOf(Palette{})
	for i := range pt.NumField() {
		key, _, _ := strings.Cut(pt.Field(i).Tag.Get("json"), ",")
		if !strings.Contains(section, "`"+key+"`") {
			t.Errorf("the README's theme section does not name the colour key %q", key)
		}
	}
	example := regexp.MustCompile("(?s)```json\n(.*?)```").FindStringSubmatch(section)
	if example == nil {
		t.Fatal("the README's theme section has no JSON example")
	}
	p := t.TempDir() + "/example.json"
	if err := os.WriteFile(p, []byte(example[1]), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err != nil {
		t.Fatalf("the README's example theme does not load: %v", err)
	}
}
