package kruninit

import (
	"reflect"
	"testing"
)

// kernelEnv is what the kernel gives init: HOME and TERM always, then the
// KEY=VALUE words of the command line.
var kernelEnv = []string{"HOME=/", "TERM=linux", "KRUN_INIT=/bin/app", "A=kernel"}

func TestGetenvSetenv(t *testing.T) {
	env := []string{"A=1", "B=2", "A=3", "NOEQ"}
	if v, ok := Getenv(env, "A"); !ok || v != "3" {
		t.Errorf("Getenv(A) = %q %v, want the last entry 3", v, ok)
	}
	if _, ok := Getenv(env, "NOEQ"); ok {
		t.Errorf("an entry without '=' is not a variable")
	}
	if v, ok := Getenv([]string{"E="}, "E"); !ok || v != "" {
		t.Errorf("Getenv(E=) = %q %v, want empty and present", v, ok)
	}
	got := Setenv(env, "A", "x")
	if want := []string{"A=x", "B=2", "NOEQ"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Setenv replace = %q, want %q", got, want)
	}
	if env[0] != "A=1" {
		t.Errorf("Setenv modified its input")
	}
	if got := Setenv([]string{"B=2"}, "C", "3"); !reflect.DeepEqual(got, []string{"B=2", "C=3"}) {
		t.Errorf("Setenv append = %q", got)
	}
}

func TestMergeEnv(t *testing.T) {
	cfg := []string{"HOME=/root", "TERM=xterm", "A=config", "NEW=n", "PATH=/cfg/bin", "BROKEN"}
	got := MergeEnv(kernelEnv, cfg)
	want := []string{"HOME=/root", "TERM=xterm", "KRUN_INIT=/bin/app", "A=kernel", "NEW=n", "PATH=/cfg/bin"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("MergeEnv = %q\nwant       %q", got, want)
	}
	if kernelEnv[0] != "HOME=/" {
		t.Fatalf("MergeEnv modified its input")
	}
}

func TestWorkloadEnv(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		got := WorkloadEnv([]string{"HOME=/", "TERM=linux"}, nil)
		want := []string{"HOME=/", "TERM=linux", "PATH=" + DefaultPath}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("KRUN_HOME and KRUN_TERM beat the config", func(t *testing.T) {
		env := []string{"HOME=/", "TERM=linux", "KRUN_HOME=/home/u", "KRUN_TERM=vt100"}
		got := WorkloadEnv(env, &Config{Env: []string{"HOME=/cfg", "TERM=cfg"}})
		if h, _ := Getenv(got, "HOME"); h != "/home/u" {
			t.Errorf("HOME = %q, want /home/u", h)
		}
		if v, _ := Getenv(got, "TERM"); v != "vt100" {
			t.Errorf("TERM = %q, want vt100", v)
		}
	})
	t.Run("config HOME beats the kernel's", func(t *testing.T) {
		got := WorkloadEnv(kernelEnv, &Config{Env: []string{"HOME=/cfg", "A=cfg", "PATH=/p"}})
		if h, _ := Getenv(got, "HOME"); h != "/cfg" {
			t.Errorf("HOME = %q, want /cfg", h)
		}
		if a, _ := Getenv(got, "A"); a != "kernel" {
			t.Errorf("A = %q: the kernel's (existing) value must win", a)
		}
		if p, _ := Getenv(got, "PATH"); p != "/p" {
			t.Errorf("PATH = %q: the config's PATH must not be replaced by the default", p)
		}
	})
}

func TestHostname(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, "localhost"},
		{[]string{"HOSTNAME="}, "localhost"},
		{[]string{"HOSTNAME=guest"}, "guest"},
	} {
		if got := Hostname(tc.env); got != tc.want {
			t.Errorf("Hostname(%q) = %q, want %q", tc.env, got, tc.want)
		}
	}
}

func TestConfigPath(t *testing.T) {
	if p, explicit := ConfigPath(kernelEnv); p != "/.krun_config.json" || explicit {
		t.Errorf("default = %q %v", p, explicit)
	}
	if p, explicit := ConfigPath([]string{"KRUN_CONFIG="}); p != DefaultConfigPath || explicit {
		t.Errorf("empty KRUN_CONFIG = %q %v", p, explicit)
	}
	if p, explicit := ConfigPath([]string{"KRUN_CONFIG=/etc/c.json"}); p != "/etc/c.json" || !explicit {
		t.Errorf("KRUN_CONFIG = %q %v", p, explicit)
	}
}

func TestWorkdir(t *testing.T) {
	cfg := &Config{WorkingDir: "/from-config"}
	for _, tc := range []struct {
		env  []string
		cfg  *Config
		want string
	}{
		{nil, nil, ""},
		{nil, &Config{}, ""},
		{nil, cfg, "/from-config"},
		{[]string{"KRUN_WORKDIR="}, cfg, "/from-config"},
		{[]string{"KRUN_WORKDIR=/from-env"}, cfg, "/from-env"},
		{[]string{"KRUN_WORKDIR=/from-env"}, nil, "/from-env"},
	} {
		if got := Workdir(tc.env, tc.cfg); got != tc.want {
			t.Errorf("Workdir(%q, %+v) = %q, want %q", tc.env, tc.cfg, got, tc.want)
		}
	}
}

func TestSelectArgv(t *testing.T) {
	cfg := &Config{Entrypoint: []string{"/ep"}, Cmd: []string{"c1"}}
	args := []string{"-c", "echo hi"}
	tests := []struct {
		name string
		env  []string
		args []string
		cfg  *Config
		want []string
	}{
		{"KRUN_INIT with kernel args", []string{"KRUN_INIT=/bin/app"}, args, cfg, []string{"/bin/app", "-c", "echo hi"}},
		{"KRUN_INIT without args", []string{"KRUN_INIT=app"}, nil, nil, []string{"app"}},
		{"config command", nil, args, cfg, []string{"/ep", "c1"}},
		{"config Cmd only", []string{"KRUN_INIT="}, nil, &Config{Cmd: []string{"ls"}}, []string{"ls"}},
		{"shell with kernel args", nil, args, &Config{WorkingDir: "/"}, []string{"/bin/sh", "-c", "echo hi"}},
		{"bare shell", nil, nil, nil, []string{"/bin/sh"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := SelectArgv(tc.env, tc.args, tc.cfg)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPID1AndBlockRoot(t *testing.T) {
	if PID1(nil) || PID1([]string{"KRUN_INIT_PID1=0"}) || !PID1([]string{"KRUN_INIT_PID1=1"}) {
		t.Errorf("PID1 mis-reads KRUN_INIT_PID1")
	}
	if _, _, _, ok := BlockRoot([]string{"KRUN_BLOCK_ROOT_FSTYPE=ext4"}); ok {
		t.Errorf("BlockRoot without a device")
	}
	dev, fs, opts, ok := BlockRoot([]string{"KRUN_BLOCK_ROOT_DEVICE=/dev/vda", "KRUN_BLOCK_ROOT_FSTYPE=ext4", "KRUN_BLOCK_ROOT_OPTIONS=ro"})
	if !ok || dev != "/dev/vda" || fs != "ext4" || opts != "ro" {
		t.Errorf("BlockRoot = %q %q %q %v", dev, fs, opts, ok)
	}
	procFS := "nodev\tsysfs\nnodev\tproc\n\text4\nnodev\tvirtiofs\n\tvfat\n\n"
	if got := BlockFSTypes([]byte(procFS)); !reflect.DeepEqual(got, []string{"ext4", "vfat"}) {
		t.Errorf("BlockFSTypes = %q", got)
	}
}
