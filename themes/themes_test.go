package themes

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var colourSGR = regexp.MustCompile(`\x1b\[[0-9;]*(38|48);[25];`)

func TestBuiltins(t *testing.T) {
	for _, name := range []string{"dark", "light", "high-contrast", "mono"} {
		th, err := Get(name)
		if err != nil {
			t.Fatal(err)
		}
		out := th.Styles.EOF.Render("EOF")
		if th.NoColor {
			if colourSGR.MatchString(out) {
				t.Errorf("%s: colour in %q", name, out)
			}
			if !strings.Contains(out, "7") {
				t.Errorf("%s: EOF style is not reverse video: %q", name, out)
			}
			continue
		}
		if !colourSGR.MatchString(out) {
			t.Errorf("%s: no colour in EOF style: %q", name, out)
		}
	}
	if _, err := Get("neon"); !errors.Is(err, ErrUnknown) {
		t.Errorf("Get(neon) = %v", err)
	}
	dark, light := MustGet("dark"), MustGet("light")
	if dark.Styles.Accent.Render("x") == light.Styles.Accent.Render("x") {
		t.Error("dark and light render the accent alike")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "mine.json")
	os.WriteFile(good, []byte(`{"name":"mine","base":"light","colors":{"eof_bg":"#123456"}}`), 0o644)
	th, err := Load(good)
	if err != nil {
		t.Fatal(err)
	}
	if th.Name != "mine" || th.Palette.EOFBg != "#123456" || th.Palette.Accent != builtin["light"].Accent {
		t.Fatalf("loaded %+v", th.Palette)
	}
	if !strings.Contains(th.Styles.EOF.Render("x"), "48;2;18;52;86") {
		t.Errorf("EOF background not applied: %q", th.Styles.EOF.Render("x"))
	}
	// Each bad file is refused in one line that names the problem in the
	// file's own words (no Go field tags, no bare EOF).
	for name, c := range map[string]struct{ body, want string }{
		"badcolour.json": {`{"colors":{"accent":"orange"}}`, `colour accent: "orange" is neither`},
		"unknown.json":   {`{"colours":{}}`, `unknown field "colours"`},
		"base.json":      {`{"base":"neon"}`, `"neon"`},
		"empty.json":     {"", "the file is empty (a theme file is JSON:"},
		"truncated.json": {`{"name":`, "unexpected EOF (a theme file is JSON:"},
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(c.body), 0o644)
		_, err := Load(p)
		if err == nil {
			t.Errorf("%s: loaded", name)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, c.want) || strings.Contains(msg, "omitempty") || strings.Contains(msg, "\n") {
			t.Errorf("%s: %q, want one line with %q", name, msg, c.want)
		}
	}
}

func TestResolveNoColor(t *testing.T) {
	th, err := Resolve("high-contrast", []string{"TERM=xterm", "NO_COLOR=1"})
	if err != nil {
		t.Fatal(err)
	}
	if !th.NoColor || th.Name != "mono" {
		t.Fatalf("NO_COLOR gave %s", th.Name)
	}
	if th, _ := Resolve("light", []string{"NO_COLOR="}); th.Name != "light" {
		t.Errorf("empty NO_COLOR gave %s", th.Name)
	}
	if th, _ := Resolve("", nil); th.Name != Default {
		t.Errorf("default gave %s", th.Name)
	}
	if _, err := Resolve("neon", []string{"NO_COLOR=1"}); err == nil {
		t.Error("a bad name passed because NO_COLOR was set")
	}
}

func TestNext(t *testing.T) {
	seen := map[string]bool{}
	th := MustGet(Default)
	for range Names() {
		seen[th.Name] = true
		th = Next(th)
	}
	if len(seen) != len(Names()) || th.Name != Default {
		t.Fatalf("cycle saw %v, ended at %s", seen, th.Name)
	}
}
