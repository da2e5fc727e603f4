package initlib

import (
	"os"
	"path/filepath"
	"sort"
)

// Kind is the kind of a library item.
type Kind string

// Item kinds.
const (
	KindInit   Kind = "init"
	KindRootFS Kind = "rootfs"
	KindKernel Kind = "kernel"
)

// Item is one entry of the library with its verdict.
type Item struct {
	Kind Kind
	Name string
	// Path is the file or directory; "builtin" payloads have none.
	Path string
	// Builtin holds a built-in payload's bytes (never copied).
	Builtin *Payload
	Finding
}

// Library finds init payloads, root filesystems and kernels in a data
// directory (init/, rootfs/, kernel/), in paths given explicitly, and
// among built-in payloads.
type Library struct {
	dir      string
	builtins []Payload
	extra    map[Kind][]string
}

// DefaultDir is $XDG_DATA_HOME/krunbench, or ~/.local/share/krunbench.
func DefaultDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "krunbench")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "krunbench")
}

// NewLibrary returns a library over dir holding the built-in templates
// (the CLI adds the default init, which this package does not embed).
func NewLibrary(dir string) *Library {
	return &Library{dir: dir, builtins: []Payload{ShellTemplate, ExitAtOnce}, extra: map[Kind][]string{}}
}

// AddBuiltin adds a built-in payload, listed first.
func (l *Library) AddBuiltin(p Payload) { l.builtins = append([]Payload{p}, l.builtins...) }

// AddPaths adds explicitly given files or directories of a kind.
func (l *Library) AddPaths(k Kind, paths ...string) { l.extra[k] = append(l.extra[k], paths...) }

func (l *Library) scan(k Kind) []string {
	var out []string
	entries, _ := os.ReadDir(filepath.Join(l.dir, string(k)))
	for _, e := range entries {
		out = append(out, filepath.Join(l.dir, string(k), e.Name()))
	}
	sort.Strings(out)
	return append(l.extra[k], out...)
}

// Items lists the library. Payload verdicts are judged against rootfs
// (the root filesystem the user chose; "" judges them alone).
func (l *Library) Items(rootfs string) []Item {
	var items []Item
	for _, p := range l.scan(KindRootFS) {
		items = append(items, Item{Kind: KindRootFS, Name: filepath.Base(p), Path: p, Finding: CheckRootFS(p)})
	}
	for i := range l.builtins {
		b := &l.builtins[i]
		items = append(items, Item{Kind: KindInit, Name: b.Name, Builtin: b, Finding: CheckPayload(b.Bytes, rootfs)})
	}
	for _, p := range l.scan(KindInit) {
		items = append(items, Item{Kind: KindInit, Name: filepath.Base(p), Path: p, Finding: checkPayloadFile(p, rootfs)})
	}
	for _, p := range l.scan(KindKernel) {
		items = append(items, Item{Kind: KindKernel, Name: filepath.Base(p), Path: p, Finding: CheckKernel(p)})
	}
	return items
}

func checkPayloadFile(path, rootfs string) Finding {
	p, err := FromFile(path)
	if err != nil {
		return bad("%v", err)
	}
	return CheckPayload(p.Bytes, rootfs)
}

// Payload returns an init item's payload: built-ins as they are, files
// read anew.
func (it Item) Payload() (Payload, error) {
	if it.Builtin != nil {
		return *it.Builtin, nil
	}
	return FromFile(it.Path)
}

// Find returns the built-in payload with this name.
func (l *Library) Find(name string) (Payload, bool) {
	for _, b := range l.builtins {
		if b.Name == name {
			return b, true
		}
	}
	return Payload{}, false
}
