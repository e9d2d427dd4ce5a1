package auth

import (
	"strings"
	"testing"
)

// TestNewRefusesNegative: a zero setting takes its default, a negative one
// is an error that names it.
func TestNewRefusesNegative(t *testing.T) {
	a, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.codeTTL != DefaultCodeTTL || a.maxTTL != DefaultMaxTTL || a.audience != DefaultAudience {
		t.Errorf("zero settings: %v %v %q, want the defaults", a.codeTTL, a.maxTTL, a.audience)
	}
	if _, err := New(Config{CodeTTL: -1}, nil); err == nil || !strings.Contains(err.Error(), "CodeTTL") {
		t.Errorf("a negative CodeTTL: %v, want an error naming it", err)
	}
}
