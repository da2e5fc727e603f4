// Package themes holds krunbench's colour themes. A Theme is data: a
// palette of colours (what a JSON theme file sets) and the lipgloss styles
// built from it, which every pane of the TUI draws with.
//
// Built-in themes are "dark", "light" and "high-contrast", plus "mono",
// which has no colours at all and marks what matters with bold, underline
// and reverse video. Resolve picks one by name or from a file and honours
// NO_COLOR (https://no-color.org): when it is set to anything but the empty
// string, the result is always mono.
package themes

import (
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"os"
	"reflect"
	"slices"
	"strings"

	"charm.land/lipgloss/v2"
)

// Palette is a theme's colours, each a hex string ("#rrggbb") or an ANSI
// colour number ("1".."255"); empty means the terminal's default.
type Palette struct {
	Fg          string `json:"fg,omitempty"`
	Bg          string `json:"bg,omitempty"`
	Muted       string `json:"muted,omitempty"`
	Title       string `json:"title,omitempty"`
	Accent      string `json:"accent,omitempty"`
	Error       string `json:"error,omitempty"`
	Warn        string `json:"warn,omitempty"`
	OK          string `json:"ok,omitempty"`
	Border      string `json:"border,omitempty"`
	FocusBorder string `json:"focus_border,omitempty"`
	SelectionFg string `json:"selection_fg,omitempty"`
	SelectionBg string `json:"selection_bg,omitempty"`
	// InitRead colours the reads of /init.krun; EOF the read at its end.
	InitRead string `json:"init_read,omitempty"`
	EOFFg    string `json:"eof_fg,omitempty"`
	EOFBg    string `json:"eof_bg,omitempty"`
	StatusFg string `json:"status_fg,omitempty"`
	StatusBg string `json:"status_bg,omitempty"`
}

// Styles are the lipgloss styles a theme draws with.
type Styles struct {
	Base lipgloss.Style
	// Pane and FocusedPane draw the border of a pane; Attached the border
	// of the console while it has the keyboard.
	Pane         lipgloss.Style
	FocusedPane  lipgloss.Style
	Attached     lipgloss.Style
	Title        lipgloss.Style
	FocusedTitle lipgloss.Style
	Muted        lipgloss.Style
	Accent       lipgloss.Style
	Error        lipgloss.Style
	Warn         lipgloss.Style
	OK           lipgloss.Style
	Selection    lipgloss.Style
	InitRead     lipgloss.Style
	EOF          lipgloss.Style
	StatusBar    lipgloss.Style
	StatusKey    lipgloss.Style
	Tab          lipgloss.Style
	ActiveTab    lipgloss.Style
	HelpKey      lipgloss.Style
	HelpDesc     lipgloss.Style
	Overlay      lipgloss.Style
}

// Theme is a named palette and the styles built from it.
type Theme struct {
	Name    string
	Palette Palette
	// NoColor is set for themes without colours (mono, NO_COLOR).
	NoColor bool
	Styles  Styles
}

var builtin = map[string]Palette{
	"dark": {
		Fg: "#d8dee9", Muted: "#6b7385", Title: "#88c0d0", Accent: "#ebcb8b",
		Error: "#bf616a", Warn: "#d08770", OK: "#a3be8c",
		Border: "#434c5e", FocusBorder: "#88c0d0",
		SelectionFg: "#2e3440", SelectionBg: "#88c0d0",
		InitRead: "#b48ead", EOFFg: "#2e3440", EOFBg: "#ebcb8b",
		StatusFg: "#d8dee9", StatusBg: "#3b4252",
	},
	"light": {
		Fg: "#24292f", Muted: "#6e7781", Title: "#0550ae", Accent: "#9a6700",
		Error: "#cf222e", Warn: "#bc4c00", OK: "#1a7f37",
		Border: "#afb8c1", FocusBorder: "#0969da",
		SelectionFg: "#ffffff", SelectionBg: "#0969da",
		InitRead: "#8250df", EOFFg: "#ffffff", EOFBg: "#9a6700",
		StatusFg: "#24292f", StatusBg: "#d0d7de",
	},
	"high-contrast": {
		Fg: "#ffffff", Bg: "#000000", Muted: "#c0c0c0", Title: "#00ffff", Accent: "#ffff00",
		Error: "#ff3030", Warn: "#ff9900", OK: "#00ff00",
		Border: "#ffffff", FocusBorder: "#ffff00",
		SelectionFg: "#000000", SelectionBg: "#ffff00",
		InitRead: "#ff00ff", EOFFg: "#000000", EOFBg: "#00ffff",
		StatusFg: "#000000", StatusBg: "#ffffff",
	},
	"mono": {},
}

// Default is the theme used when none is chosen.
const Default = "dark"

// ErrUnknown reports a theme name that is not built in.
var ErrUnknown = errors.New("unknown theme")

// Names lists the built-in themes.
func Names() []string {
	names := make([]string, 0, len(builtin))
	for n := range builtin {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Get returns a built-in theme by name.
func Get(name string) (*Theme, error) {
	p, ok := builtin[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (have %s)", ErrUnknown, name, strings.Join(Names(), ", "))
	}
	return New(name, p), nil
}

// MustGet is Get for names known to be built in; it panics otherwise.
func MustGet(name string) *Theme {
	t, err := Get(name)
	if err != nil {
		panic(err)
	}
	return t
}

// Mono returns the theme without colours.
func Mono() *Theme { return New("mono", Palette{}) }

// File is the JSON form of a theme file: a built-in theme to start from
// (default "dark") and the colours that replace its own.
//
//	{"name": "mine", "base": "dark", "colors": {"accent": "#ff8800", "eof_bg": "#ff8800"}}
type File struct {
	Name   string  `json:"name"`
	Base   string  `json:"base"`
	Colors Palette `json:"colors"`
}

// Load reads a theme file (see File).
func Load(path string) (*Theme, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f File
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil, fmt.Errorf("theme %s: the file is empty (%s)", path, fileFormat)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("theme %s: %s (%s)", path, strings.TrimPrefix(err.Error(), "json: "), fileFormat)
	}
	if f.Base == "" {
		f.Base = Default
	}
	base, ok := builtin[f.Base]
	if !ok {
		return nil, fmt.Errorf("theme %s: base: %w %q", path, ErrUnknown, f.Base)
	}
	if err := f.Colors.check(); err != nil {
		return nil, fmt.Errorf("theme %s: %w", path, err)
	}
	p := base
	over, dst := reflect.ValueOf(f.Colors), reflect.ValueOf(&p).Elem()
	for i := range over.NumField() {
		if s := over.Field(i).String(); s != "" {
			dst.Field(i).SetString(s)
		}
	}
	if f.Name == "" {
		f.Name = path
	}
	return New(f.Name, p), nil
}

// check rejects colours lipgloss would not understand.
func (p Palette) check() error {
	v, t := reflect.ValueOf(p), reflect.TypeOf(p)
	for i := range v.NumField() {
		s := v.Field(i).String()
		if s == "" {
			continue
		}
		if _, isNone := lipgloss.Color(s).(lipgloss.NoColor); isNone {
			return fmt.Errorf("colour %s: %q is neither #rrggbb nor an ANSI number (0-255)", colourKey(t.Field(i)), s)
		}
	}
	return nil
}

// colourKey is a palette field's key in a theme file.
func colourKey(f reflect.StructField) string {
	key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return key
}

// ColourKeys are the keys a theme file's "colors" may set.
func ColourKeys() []string {
	t := reflect.TypeOf(Palette{})
	keys := make([]string, t.NumField())
	for i := range keys {
		keys[i] = colourKey(t.Field(i))
	}
	return keys
}

// fileFormat says in a line what a theme file holds.
var fileFormat = `a theme file is JSON: {"name": "mine", "base": "dark", "colors": {"accent": "#ff8800"}}, colours #rrggbb or 0-255, keys ` + strings.Join(ColourKeys(), ", ")

// NoColorSet reports whether environ (KEY=VALUE entries, as os.Environ
// returns) sets NO_COLOR to a non-empty value.
func NoColorSet(environ []string) bool {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "NO_COLOR="); ok && v != "" {
			return true
		}
	}
	return false
}

// Resolve picks the theme a user asked for: spec is a built-in name or
// the path of a theme file (anything ending in ".json" or containing a
// path separator); empty means Default. When environ sets NO_COLOR, the
// result is Mono whatever spec says (spec is still checked).
func Resolve(spec string, environ []string) (*Theme, error) {
	var t *Theme
	var err error
	switch {
	case spec == "":
		t = MustGet(Default)
	case strings.HasSuffix(spec, ".json") || strings.ContainsRune(spec, os.PathSeparator):
		t, err = Load(spec)
	default:
		t, err = Get(spec)
	}
	if err != nil {
		return nil, err
	}
	if NoColorSet(environ) {
		return Mono(), nil
	}
	return t, nil
}

// Next returns the built-in theme after t in Names order, wrapping around;
// the TUI's theme key cycles with it.
func Next(t *Theme) *Theme {
	names := Names()
	i := slices.Index(names, t.Name)
	return MustGet(names[(i+1)%len(names)])
}

func col(s string) color.Color {
	if s == "" {
		return lipgloss.NoColor{}
	}
	return lipgloss.Color(s)
}

// New builds a theme's styles from its palette. A palette without any
// colour makes a mono theme.
func New(name string, p Palette) *Theme {
	t := &Theme{Name: name, Palette: p, NoColor: p == Palette{}}
	if t.NoColor {
		t.Styles = monoStyles()
		return t
	}
	s := &t.Styles
	fg := col(p.Fg)
	s.Base = lipgloss.NewStyle().Foreground(fg)
	if p.Bg != "" {
		s.Base = s.Base.Background(col(p.Bg))
	}
	border := lipgloss.NewStyle().Border(lipgloss.RoundedBorder())
	s.Pane = border.BorderForeground(col(p.Border))
	s.FocusedPane = border.BorderForeground(col(p.FocusBorder))
	s.Attached = lipgloss.NewStyle().Border(lipgloss.ThickBorder()).BorderForeground(col(p.Accent))
	s.Title = lipgloss.NewStyle().Foreground(col(p.Muted)).Bold(true)
	s.FocusedTitle = lipgloss.NewStyle().Foreground(col(p.Title)).Bold(true)
	s.Muted = lipgloss.NewStyle().Foreground(col(p.Muted))
	s.Accent = lipgloss.NewStyle().Foreground(col(p.Accent)).Bold(true)
	s.Error = lipgloss.NewStyle().Foreground(col(p.Error))
	s.Warn = lipgloss.NewStyle().Foreground(col(p.Warn))
	s.OK = lipgloss.NewStyle().Foreground(col(p.OK))
	s.Selection = lipgloss.NewStyle().Foreground(col(p.SelectionFg)).Background(col(p.SelectionBg))
	s.InitRead = lipgloss.NewStyle().Foreground(col(p.InitRead))
	s.EOF = lipgloss.NewStyle().Foreground(col(p.EOFFg)).Background(col(p.EOFBg)).Bold(true)
	s.StatusBar = lipgloss.NewStyle().Foreground(col(p.StatusFg)).Background(col(p.StatusBg))
	s.StatusKey = s.StatusBar.Foreground(col(p.Accent)).Bold(true)
	s.Tab = lipgloss.NewStyle().Foreground(col(p.Muted)).Padding(0, 1)
	s.ActiveTab = lipgloss.NewStyle().Foreground(col(p.SelectionFg)).Background(col(p.SelectionBg)).Bold(true).Padding(0, 1)
	s.HelpKey = lipgloss.NewStyle().Foreground(col(p.Accent))
	s.HelpDesc = lipgloss.NewStyle().Foreground(col(p.Muted))
	s.Overlay = lipgloss.NewStyle().Border(lipgloss.DoubleBorder()).BorderForeground(col(p.FocusBorder)).Padding(0, 1)
	return t
}

// monoStyles mark emphasis with attributes only, so the TUI reads well
// without colours.
func monoStyles() Styles {
	plain := lipgloss.NewStyle()
	border := plain.Border(lipgloss.NormalBorder())
	return Styles{
		Base:         plain,
		Pane:         border,
		FocusedPane:  plain.Border(lipgloss.ThickBorder()),
		Attached:     plain.Border(lipgloss.DoubleBorder()),
		Title:        plain,
		FocusedTitle: plain.Bold(true).Underline(true),
		Muted:        plain.Faint(true),
		Accent:       plain.Bold(true),
		Error:        plain.Bold(true).Underline(true),
		Warn:         plain.Underline(true),
		OK:           plain,
		Selection:    plain.Reverse(true),
		InitRead:     plain.Bold(true),
		EOF:          plain.Reverse(true).Bold(true),
		StatusBar:    plain.Reverse(true),
		StatusKey:    plain.Reverse(true).Bold(true),
		Tab:          plain.Padding(0, 1),
		ActiveTab:    plain.Reverse(true).Bold(true).Padding(0, 1),
		HelpKey:      plain.Bold(true),
		HelpDesc:     plain,
		Overlay:      plain.Border(lipgloss.DoubleBorder()).Padding(0, 1),
	}
}
