// Package kruninit is the protocol logic of krunbench's default init, the
// program the guest kernel runs as /init.krun: parsing the workload config
// (/.krun_config.json), the KRUN_* environment (KRUN_INIT, KRUN_WORKDIR,
// KRUN_HOME, KRUN_TERM, KRUN_RLIMITS, KRUN_CONFIG), choosing the workload's
// argv and resolving it along PATH, mapping a workload's end to the exit code
// reported to the host, finding the virtio-console ports krun-stdin,
// krun-stdout and krun-stderr, and the trace milestones the init prints with
// krunbench.trace=1 on the kernel command line.
//
// Everything here is a function over plain inputs (environment slices, byte
// slices, file systems), so it runs and is tested on the host; the program in
// initlib/cmd/krun-init performs the system calls.
package kruninit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// DefaultConfigPath is where the config file is read unless KRUN_CONFIG names
// another path; krunbench serves it as a synthetic file of the root virtio-fs.
const DefaultConfigPath = "/.krun_config.json"

// ErrConfig is wrapped by every config parsing error.
var ErrConfig = errors.New("krun config")

// Config is the workload description of a config file: the subset of an
// OCI image config libkrun reads.
type Config struct {
	// Env are KEY=VALUE entries (key "Env").
	Env []string
	// Cmd is the command (key "Cmd" or "args").
	Cmd []string
	// Entrypoint precedes Cmd in the workload's argv (key "Entrypoint").
	Entrypoint []string
	// WorkingDir is the workload's directory (key "WorkingDir" or "Cwd").
	WorkingDir string
}

// Argv returns Entrypoint followed by Cmd, or nil when both are empty.
func (c *Config) Argv() []string {
	if c == nil || len(c.Entrypoint)+len(c.Cmd) == 0 {
		return nil
	}
	argv := make([]string, 0, len(c.Entrypoint)+len(c.Cmd))
	argv = append(argv, c.Entrypoint...)
	return append(argv, c.Cmd...)
}

// ParseConfig parses a config file. Keys are matched case-insensitively:
// "Env", "Cmd" or "args", "Entrypoint", "WorkingDir" or "Cwd"; other keys
// are ignored, and of repeated keys the last wins. The keys may also sit in
// an object under "config" (the layout of `docker inspect`'s image config),
// where the top level's own keys take precedence. A null value counts as
// absent. Anything that is not a JSON object, a value of the wrong type, or
// an Env entry without '=' is an error wrapping ErrConfig.
func ParseConfig(data []byte) (*Config, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: empty file", ErrConfig)
	}
	fields, err := decodeObject(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	cfg := &Config{}
	for _, f := range fields {
		if strings.EqualFold(f.key, "config") && isObject(f.value) {
			inner, err := decodeObject(f.value)
			if err != nil {
				return nil, fmt.Errorf("%w: key %q: %v", ErrConfig, f.key, err)
			}
			if err := cfg.apply(inner); err != nil {
				return nil, err
			}
		}
	}
	if err := cfg.apply(fields); err != nil {
		return nil, err
	}
	return cfg, nil
}

// field is one key of a JSON object, in document order.
type field struct {
	key   string
	value json.RawMessage
}

// decodeObject returns the members of the JSON object in data, in order.
func decodeObject(data []byte) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("not a JSON object")
	}
	var fields []field
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("object key is not a string")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("key %q: %v", key, err)
		}
		fields = append(fields, field{key, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(data[dec.InputOffset():])) != 0 {
		return nil, fmt.Errorf("data after the JSON object")
	}
	return fields, nil
}

func isObject(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) > 0 && v[0] == '{'
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

// apply sets the recognised keys of fields on c.
func (c *Config) apply(fields []field) error {
	for _, f := range fields {
		var dst any
		switch {
		case strings.EqualFold(f.key, "Env"):
			dst = &c.Env
		case strings.EqualFold(f.key, "Cmd"), strings.EqualFold(f.key, "args"):
			dst = &c.Cmd
		case strings.EqualFold(f.key, "Entrypoint"):
			dst = &c.Entrypoint
		case strings.EqualFold(f.key, "WorkingDir"), strings.EqualFold(f.key, "Cwd"):
			dst = &c.WorkingDir
		default:
			continue
		}
		if isNull(f.value) {
			continue
		}
		if err := json.Unmarshal(f.value, dst); err != nil {
			want := "an array of strings"
			if _, ok := dst.(*string); ok {
				want = "a string"
			}
			return fmt.Errorf("%w: key %q must be %s", ErrConfig, f.key, want)
		}
	}
	for _, kv := range c.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("%w: Env entry %q is not KEY=VALUE", ErrConfig, kv)
		}
	}
	return nil
}
