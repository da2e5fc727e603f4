package tui

import (
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// fakeSource is a Source the test drives by hand.
type fakeSource struct {
	ch chan SourceMsg

	mu      sync.Mutex
	input   []byte
	resizes [][2]int
	stopped bool
}

func newFakeSource() *fakeSource { return &fakeSource{ch: make(chan SourceMsg, 16)} }

func (f *fakeSource) Events() <-chan SourceMsg { return f.ch }

func (f *fakeSource) Input(b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.input = append(f.input, b...)
}

func (f *fakeSource) Resize(cols, rows int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resizes = append(f.resizes, [2]int{cols, rows})
}

func (f *fakeSource) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
}

func (f *fakeSource) typed() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(f.input)
}

func (f *fakeSource) lastResize() [2]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.resizes) == 0 {
		return [2]int{}
	}
	return f.resizes[len(f.resizes)-1]
}

// waitTyped waits (bounded) until the guest got exactly want: keys reach
// it through the emulator's input pipe, on the console's own goroutine.
func waitTyped(t *testing.T, f *fakeSource, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.typed() != want {
		if time.Now().After(deadline) || len(f.typed()) > len(want) {
			t.Fatalf("guest got %q, want %q", f.typed(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// screen is the model's view as plain text.
func screen(m *Model) string { return ansi.Strip(m.View().Content) }

func resize(m *Model, w, h int) { m.Update(tea.WindowSizeMsg{Width: w, Height: h}) }

// press sends key presses: single characters as text, or names like
// "enter", "ctrl+]", "tab", "up", "space", "esc".
func press(m *Model, keys ...string) tea.Cmd {
	var last tea.Cmd
	for _, k := range keys {
		_, last = m.Update(keyMsg(k))
	}
	return last
}

func keyMsg(k string) tea.KeyPressMsg {
	named := map[string]tea.Key{
		"enter": {Code: tea.KeyEnter}, "tab": {Code: tea.KeyTab}, "esc": {Code: tea.KeyEscape},
		"space": {Code: tea.KeySpace, Text: " "}, "up": {Code: tea.KeyUp}, "down": {Code: tea.KeyDown},
		"backspace": {Code: tea.KeyBackspace}, "left": {Code: tea.KeyLeft}, "end": {Code: tea.KeyEnd},
		"shift+tab": {Code: tea.KeyTab, Mod: tea.ModShift},
	}
	if key, ok := named[k]; ok {
		return tea.KeyPressMsg(key)
	}
	if rest, ok := strings.CutPrefix(k, "ctrl+"); ok {
		return tea.KeyPressMsg{Code: rune(rest[0]), Mod: tea.ModCtrl}
	}
	r := []rune(k)
	return tea.KeyPressMsg{Code: r[0], Text: k}
}

// typeText presses one key per rune.
func typeText(m *Model, s string) {
	for _, r := range s {
		press(m, string(r))
	}
}

// run drives the model like bubbletea would, executing commands (and
// batches) until none is left or timeout passes; it stops at tea.Quit.
func run(t *testing.T, m *Model, cmd tea.Cmd, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	queue := []tea.Cmd{cmd}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		got := make(chan tea.Msg, 1)
		go func() { got <- c() }()
		var msg tea.Msg
		select {
		case msg = <-got:
		case <-deadline:
			t.Fatal("model still busy after", timeout)
		}
		switch msg := msg.(type) {
		case nil:
		case tea.BatchMsg:
			queue = append(queue, msg...)
		case tea.QuitMsg:
			return
		default:
			_, next := m.Update(msg)
			queue = append(queue, next)
		}
	}
}
