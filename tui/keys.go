package tui

import (
	"strconv"
	"unicode/utf8"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// globalKeys are the app's own keys. They are not seen while a pane
// captures the keyboard (an attached console, a filter being typed).
type globalKeys struct {
	Next, Prev, Jump, Theme, Help, Debug, Quit key.Binding
}

func newGlobalKeys() globalKeys {
	return globalKeys{
		Next:  key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next pane")),
		Prev:  key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous pane")),
		Jump:  key.NewBinding(key.WithKeys("1", "2", "3", "4", "5", "6"), key.WithHelp("1-6", "go to pane")),
		Theme: key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "next theme")),
		Help:  key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Debug: key.NewBinding(key.WithKeys("`", "f12"), key.WithHelp("`", "debug overlay")),
		Quit:  key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
	}
}

func (g globalKeys) bindings() []key.Binding {
	return []key.Binding{g.Next, g.Prev, g.Jump, g.Theme, g.Help, g.Debug, g.Quit}
}

// DetachKey is the one key the console keeps for itself while attached:
// it gives the keyboard back to the app.
const DetachKey = "ctrl+]"

// EncodeKey turns a key press into the bytes a terminal sends for it:
// text as UTF-8, enter as \r, backspace as DEL (0x7f), tab, esc, ctrl+
// letters as C0 controls, alt as an ESC prefix, arrows and the editing
// keys as ANSI (xterm) sequences with modifier parameters. It returns nil
// for keys a terminal sends nothing for.
func EncodeKey(k tea.KeyPressMsg) []byte {
	mod := k.Mod &^ (tea.ModCapsLock | tea.ModNumLock | tea.ModScrollLock)
	alt := mod&tea.ModAlt != 0
	ctrl := mod&tea.ModCtrl != 0
	shift := mod&tea.ModShift != 0
	prefix := func(b []byte) []byte {
		if alt && b != nil {
			return append([]byte{0x1b}, b...)
		}
		return b
	}
	if seq, ok := csiKey(k.Code, mod); ok {
		return []byte(seq)
	}
	switch k.Code {
	case tea.KeyEnter, tea.KeyKpEnter:
		return prefix([]byte{'\r'})
	case tea.KeyBackspace:
		if ctrl {
			return prefix([]byte{0x08})
		}
		return prefix([]byte{0x7f})
	case tea.KeyTab:
		if shift {
			return []byte("\x1b[Z")
		}
		return prefix([]byte{'\t'})
	case tea.KeyEscape:
		return prefix([]byte{0x1b})
	case tea.KeySpace:
		if ctrl {
			return prefix([]byte{0})
		}
		return prefix([]byte{' '})
	}
	if ctrl {
		c := k.Code
		switch {
		case c >= 'a' && c <= 'z':
			return prefix([]byte{byte(c - 'a' + 1)})
		case c >= 'A' && c <= 'Z':
			return prefix([]byte{byte(c - 'A' + 1)})
		case c == '@' || c == '2':
			return prefix([]byte{0})
		case c == '[' || c == '3':
			return prefix([]byte{0x1b})
		case c == '\\' || c == '4':
			return prefix([]byte{0x1c})
		case c == ']' || c == '5':
			return prefix([]byte{0x1d})
		case c == '^' || c == '6':
			return prefix([]byte{0x1e})
		case c == '_' || c == '-' || c == '7' || c == '/':
			return prefix([]byte{0x1f})
		case c == '?' || c == '8':
			return prefix([]byte{0x7f})
		}
		return nil
	}
	if k.Text != "" {
		return prefix([]byte(k.Text))
	}
	if k.Code > 0 && k.Code < utf8.RuneSelf && k.Code >= ' ' {
		return prefix([]byte{byte(k.Code)})
	}
	if k.Code >= utf8.RuneSelf && k.Code <= utf8.MaxRune && k.Code < tea.KeyExtended {
		return prefix([]byte(string(k.Code)))
	}
	return nil
}

// csiKey encodes cursor, editing and function keys the xterm way.
func csiKey(code rune, mod tea.KeyMod) (string, bool) {
	var m int
	if mod&tea.ModShift != 0 {
		m |= 1
	}
	if mod&tea.ModAlt != 0 {
		m |= 2
	}
	if mod&tea.ModCtrl != 0 {
		m |= 4
	}
	letter := map[rune]byte{
		tea.KeyUp: 'A', tea.KeyDown: 'B', tea.KeyRight: 'C', tea.KeyLeft: 'D',
		tea.KeyHome: 'H', tea.KeyEnd: 'F',
		tea.KeyF1: 'P', tea.KeyF2: 'Q', tea.KeyF3: 'R', tea.KeyF4: 'S',
	}
	if l, ok := letter[code]; ok {
		if m == 0 {
			if code >= tea.KeyF1 && code <= tea.KeyF4 {
				return "\x1bO" + string(l), true
			}
			return "\x1b[" + string(l), true
		}
		return "\x1b[1;" + strconv.Itoa(m+1) + string(l), true
	}
	tilde := map[rune]int{
		tea.KeyInsert: 2, tea.KeyDelete: 3, tea.KeyPgUp: 5, tea.KeyPgDown: 6,
		tea.KeyF5: 15, tea.KeyF6: 17, tea.KeyF7: 18, tea.KeyF8: 19,
		tea.KeyF9: 20, tea.KeyF10: 21, tea.KeyF11: 23, tea.KeyF12: 24,
	}
	if n, ok := tilde[code]; ok {
		if m == 0 {
			return "\x1b[" + strconv.Itoa(n) + "~", true
		}
		return "\x1b[" + strconv.Itoa(n) + ";" + strconv.Itoa(m+1) + "~", true
	}
	return "", false
}
