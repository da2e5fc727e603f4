package tui

import "charm.land/bubbles/v2/key"

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
