// Package runnerconfig is what guestbench's host harness tells its guest
// runner: the file /guestbench.json in the benchmark initramfs. The runner
// (bench/guestbench/runner, a package main) and the host (bench/guestbench)
// both use this one declaration, so a field cannot be written under one
// name and read under another (the host's copy once lacked chunk_bytes).
package runnerconfig

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Name is the config file's name in the initramfs root.
const Name = "guestbench.json"

// DefaultChunkBytes is the read workload's read(2) size when ChunkBytes
// is 0.
const DefaultChunkBytes = 1 << 20

// Config is /guestbench.json.
type Config struct {
	// FS and Tag are mount(2)'s type and source; MountOpts its data (""
	// for none).
	FS        string `json:"fs"`
	Tag       string `json:"tag"`
	MountOpts string `json:"mount_opts"`
	// Workloads are run in this order, one sample each.
	Workloads []string `json:"workloads"`
	// ReadFile (ReadSize bytes), Tree (TreeFiles files), CreateDir
	// (Creates files made and removed), MemTree (MemFiles files) and
	// LargeTree (LargeFiles files) are relative to the mount.
	ReadFile   string `json:"read_file"`
	ReadSize   int64  `json:"read_size"`
	Tree       string `json:"tree"`
	TreeFiles  int    `json:"tree_files"`
	CreateDir  string `json:"create_dir"`
	Creates    int    `json:"creates"`
	MemTree    string `json:"memory_tree"`
	MemFiles   int    `json:"memory_files"`
	LargeTree  string `json:"memory_large_tree"`
	LargeFiles int    `json:"memory_large_files"`
	// ChunkBytes is the read workload's read(2) size; 0:
	// DefaultChunkBytes.
	ChunkBytes int `json:"chunk_bytes"`
	// IdleAfterMemoryMs is how long the runner waits after each memory
	// walk's end line, sending nothing to the mount, before it prints
	// an idle line at which the host samples the backend's RSS again.
	IdleAfterMemoryMs int `json:"idle_after_memory_ms"`
}

// Optional names the fields the host may leave at their zero value, and
// what zero means there; every other field the host must set
// (TestHostSetsEveryField in bench/guestbench holds it to that).
var Optional = map[string]string{
	"MountOpts":         "no mount options",
	"ChunkBytes":        "DefaultChunkBytes",
	"IdleAfterMemoryMs": "no wait and no idle line",
}

// Encode is the file's bytes.
func Encode(c *Config) ([]byte, error) { return json.Marshal(c) }

// Decode reads the file, refusing a field Config does not declare: a host
// and runner built from different trees fail loudly instead of running
// with a zero value.
func Decode(b []byte) (*Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("/%s: %w", Name, err)
	}
	if c.ChunkBytes <= 0 {
		c.ChunkBytes = DefaultChunkBytes
	}
	return &c, nil
}
