package kruninit

import (
	"strings"
)

// Defaults of the workload's environment and the guest's identity.
const (
	// DefaultPath is the workload's PATH when neither the kernel's
	// environment nor the config sets one.
	DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// DefaultHostname is the hostname when HOSTNAME is unset or empty.
	DefaultHostname = "localhost"
	// DefaultShell is the workload when neither KRUN_INIT nor the config
	// names one.
	DefaultShell = "/bin/sh"
)

// Getenv returns the value of key in env (the last entry wins, as in a
// process environment built by appending) and whether it is present.
func Getenv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// Setenv returns env with key set to value: the first entry for key is
// replaced and any later ones dropped, or the entry is appended. env's
// backing array is not modified.
func Setenv(env []string, key, value string) []string {
	out := make([]string, 0, len(env)+1)
	set := false
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); ok && k == key {
			if !set {
				out = append(out, key+"="+value)
				set = true
			}
			continue
		}
		out = append(out, kv)
	}
	if !set {
		out = append(out, key+"="+value)
	}
	return out
}

// MergeEnv adds the config's entries to env, the environment init got from
// the kernel: a variable env already has keeps its value, except HOME and
// TERM, which the kernel always sets (HOME=/, TERM=linux) and the config
// overrides. Entries without '=' are skipped.
func MergeEnv(env, config []string) []string {
	out := append([]string(nil), env...)
	for _, kv := range config {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		if _, have := Getenv(out, k); have && k != "HOME" && k != "TERM" {
			continue
		}
		out = Setenv(out, k, v)
	}
	return out
}

// WorkloadEnv is the environment the workload runs with: env (init's own,
// from the kernel) merged with the config's Env (see MergeEnv), then
// KRUN_HOME copied to HOME and KRUN_TERM to TERM when set, and PATH set to
// DefaultPath when absent. cfg may be nil.
func WorkloadEnv(env []string, cfg *Config) []string {
	if cfg != nil {
		env = MergeEnv(env, cfg.Env)
	} else {
		env = append([]string(nil), env...)
	}
	if v, ok := Getenv(env, "KRUN_HOME"); ok {
		env = Setenv(env, "HOME", v)
	}
	if v, ok := Getenv(env, "KRUN_TERM"); ok {
		env = Setenv(env, "TERM", v)
	}
	if _, ok := Getenv(env, "PATH"); !ok {
		env = Setenv(env, "PATH", DefaultPath)
	}
	return env
}

// Hostname is $HOSTNAME, or DefaultHostname when unset or empty.
func Hostname(env []string) string {
	if h, _ := Getenv(env, "HOSTNAME"); h != "" {
		return h
	}
	return DefaultHostname
}

// ConfigPath is $KRUN_CONFIG when set and not empty, else
// DefaultConfigPath; explicit reports whether KRUN_CONFIG chose it (a
// missing file is then an error, while the default may be absent).
func ConfigPath(env []string) (path string, explicit bool) {
	if p, _ := Getenv(env, "KRUN_CONFIG"); p != "" {
		return p, true
	}
	return DefaultConfigPath, false
}

// Workdir is the workload's directory: $KRUN_WORKDIR (krunbench's
// --workdir) when set and not empty, else the config's WorkingDir, else ""
// (stay in /). cfg may be nil.
func Workdir(env []string, cfg *Config) string {
	if d, _ := Getenv(env, "KRUN_WORKDIR"); d != "" {
		return d
	}
	if cfg != nil {
		return cfg.WorkingDir
	}
	return ""
}

// SelectArgv chooses the workload's argv. args are init's own arguments
// after argv[0]: the kernel command line's words after "--". With
// KRUN_INIT set, it replaces argv[0] and args follow; else the config's
// Entrypoint++Cmd, when not empty (args are then ignored); else
// DefaultShell with args. cfg may be nil.
func SelectArgv(env, args []string, cfg *Config) []string {
	if prog, _ := Getenv(env, "KRUN_INIT"); prog != "" {
		return append([]string{prog}, args...)
	}
	if argv := cfg.Argv(); len(argv) > 0 {
		return argv
	}
	return append([]string{DefaultShell}, args...)
}

// PID1 reports whether KRUN_INIT_PID1=1 asks for the workload to replace
// init as PID 1 (no exit code is reported then).
func PID1(env []string) bool {
	v, _ := Getenv(env, "KRUN_INIT_PID1")
	return v == "1"
}

// BlockRoot is the optional block-device root: KRUN_BLOCK_ROOT_DEVICE,
// KRUN_BLOCK_ROOT_FSTYPE and KRUN_BLOCK_ROOT_OPTIONS. ok is false when no
// device is set.
func BlockRoot(env []string) (device, fstype, options string, ok bool) {
	device, _ = Getenv(env, "KRUN_BLOCK_ROOT_DEVICE")
	if device == "" {
		return "", "", "", false
	}
	fstype, _ = Getenv(env, "KRUN_BLOCK_ROOT_FSTYPE")
	options, _ = Getenv(env, "KRUN_BLOCK_ROOT_OPTIONS")
	return device, fstype, options, true
}

// BlockFSTypes lists the block-device file systems of /proc/filesystems
// (the lines not marked "nodev"), in order: the types to try when
// KRUN_BLOCK_ROOT_FSTYPE is not set.
func BlockFSTypes(procFilesystems []byte) []string {
	var types []string
	for _, line := range strings.Split(string(procFilesystems), "\n") {
		f := strings.Fields(line)
		if len(f) == 1 {
			types = append(types, f[0])
		}
	}
	return types
}
