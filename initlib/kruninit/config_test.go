package kruninit

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseConfigKeys(t *testing.T) {
	tests := []struct {
		name string
		json string
		want Config
	}{
		{"oci names", `{"Env":["A=1","B=2"],"Cmd":["x","y"],"Entrypoint":["/e"],"WorkingDir":"/w"}`,
			Config{Env: []string{"A=1", "B=2"}, Cmd: []string{"x", "y"}, Entrypoint: []string{"/e"}, WorkingDir: "/w"}},
		{"case-insensitive", `{"env":["A=1"],"CMD":["c"],"entryPOINT":["e"],"workingdir":"/w"}`,
			Config{Env: []string{"A=1"}, Cmd: []string{"c"}, Entrypoint: []string{"e"}, WorkingDir: "/w"}},
		{"args and Cwd aliases", `{"Args":["a"],"cwd":"/c"}`,
			Config{Cmd: []string{"a"}, WorkingDir: "/c"}},
		{"last of repeated keys wins", `{"Cmd":["first"],"args":["second"]}`,
			Config{Cmd: []string{"second"}}},
		{"null is absent", `{"Entrypoint":null,"Cmd":["c"],"Env":null,"WorkingDir":null}`,
			Config{Cmd: []string{"c"}}},
		{"unknown keys ignored", `{"Hostname":"h","Labels":{"a":"b"},"Cmd":["c"]}`,
			Config{Cmd: []string{"c"}}},
		{"nested config object", `{"config":{"Cmd":["inner"],"Env":["A=1"],"WorkingDir":"/in"},"WorkingDir":"/top"}`,
			Config{Cmd: []string{"inner"}, Env: []string{"A=1"}, WorkingDir: "/top"}},
		{"empty object", `{}`, Config{}},
		{"value with = and spaces", `{"Env":["A=b=c d"]}`, Config{Env: []string{"A=b=c d"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tc.json))
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Fatalf("got %+v, want %+v", *got, tc.want)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct{ name, json, mention string }{
		{"empty", "", "empty"},
		{"blank", " \n", "empty"},
		{"truncated", `{"Cmd":["a"`, ""},
		{"not an object", `["a"]`, "object"},
		{"string", `"x"`, "object"},
		{"trailing garbage", `{"Cmd":["a"]} x`, ""},
		{"second object", `{}{}`, "after"},
		{"Cmd not array", `{"Cmd":"ls"}`, `"Cmd" must be an array`},
		{"Cmd not strings", `{"Cmd":[1,2]}`, `"Cmd" must be an array`},
		{"Env not array", `{"Env":{"A":"1"}}`, `"Env"`},
		{"WorkingDir not string", `{"WorkingDir":["/"]}`, `"WorkingDir" must be a string`},
		{"Env without =", `{"Env":["NOVALUE"]}`, `"NOVALUE" is not KEY=VALUE`},
		{"Env empty key", `{"Env":["=v"]}`, "KEY=VALUE"},
		{"bad nested", `{"config":{"Cmd":3}}`, `"Cmd"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(tc.json))
			if err == nil {
				t.Fatalf("ParseConfig(%q) = %+v, want an error", tc.json, cfg)
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error %v does not wrap ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
		})
	}
}

func TestConfigArgv(t *testing.T) {
	tests := []struct {
		cfg  *Config
		want []string
	}{
		{nil, nil},
		{&Config{}, nil},
		{&Config{Cmd: []string{"ls", "-l"}}, []string{"ls", "-l"}},
		{&Config{Entrypoint: []string{"/ep", "--flag"}}, []string{"/ep", "--flag"}},
		{&Config{Entrypoint: []string{"/ep"}, Cmd: []string{"a", "b"}}, []string{"/ep", "a", "b"}},
	}
	for _, tc := range tests {
		if got := tc.cfg.Argv(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%+v.Argv() = %q, want %q", tc.cfg, got, tc.want)
		}
	}
	c := &Config{Entrypoint: make([]string, 1, 8), Cmd: []string{"x"}}
	_ = c.Argv()
	if c.Entrypoint[:2][1] != "" {
		t.Errorf("Argv wrote into Entrypoint's backing array")
	}
}
