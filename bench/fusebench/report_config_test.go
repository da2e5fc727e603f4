package main

import (
	"strings"
	"testing"
)

// TestCacheDropSaysWhatTheBalloonDid: the JSON's config.cache_drop and
// cold_memory describe the run that happened. A tuned run with
// -keep-balloon once said free page reporting was off while its samples
// showed the -cold-memory prefault at work.
func TestCacheDropSaysWhatTheBalloonDid(t *testing.T) {
	for _, tc := range []struct {
		settings    string
		keepBalloon bool
		wantOff     bool
	}{
		{settingsTuned, false, true},
		{settingsTuned, true, false},
		{settingsDefault, true, false},
	} {
		cfg := &config{settings: tc.settings, keepBalloon: tc.keepBalloon, coldMemory: coldBacked}
		r := newResults(cfg, machine{}, nil, nil)
		off := strings.Contains(r.Config.CacheDrop, "off for the run")
		if off != tc.wantOff {
			t.Errorf("%s, keep-balloon %v: cache_drop %q: says reporting off = %v, want %v", tc.settings, tc.keepBalloon, r.Config.CacheDrop, off, tc.wantOff)
		}
		if got, want := r.Config.ColdMemory != "", tc.keepBalloon; got != want {
			t.Errorf("%s, keep-balloon %v: cold_memory %q recorded = %v, want %v", tc.settings, tc.keepBalloon, r.Config.ColdMemory, got, want)
		}
	}
}
