package auth_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vwlab/vw/auth"
)

func TestMint(t *testing.T) {
	c := newClock()
	a, err := auth.New(auth.Config{Secret: secret, Audience: "relay.example", Now: c.Now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.Mint("/lab1", []string{"read", " write", "read"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Read the claims as any other JWT library would.
	var got auth.Claims
	if _, err := jwt.ParseWithClaims(tok, &got, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithTimeFunc(c.Now), jwt.WithValidMethods([]string{"HS256"})); err != nil {
		t.Fatal(err)
	}
	if got.Path != "lab1/" || strings.Join(got.Scopes, ",") != "read,write" ||
		len(got.Audience) != 1 || got.Audience[0] != "relay.example" ||
		!got.IssuedAt.Equal(epoch) || !got.NotBefore.Equal(epoch) || !got.ExpiresAt.Equal(epoch.Add(24*time.Hour)) ||
		len(got.ID) < 22 {
		t.Fatalf("claims %+v", got)
	}
	g, err := a.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if g.ID != got.ID || g.Path != "lab1/" || !g.Has(auth.ScopeWrite) || g.Has(auth.ScopeAdmin) || !g.Expires.Equal(epoch.Add(24*time.Hour)) {
		t.Fatalf("grant %+v", g)
	}
	again, _ := a.Mint("/lab1", []string{"read"}, time.Hour)
	if g2, _ := a.Verify(again); g2 == nil || g2.ID == g.ID {
		t.Fatal("two tokens share an id")
	}

	bad := []struct {
		name   string
		path   string
		scopes []string
		ttl    time.Duration
		want   string
	}{
		{"empty path", "", []string{"read"}, time.Hour, "path"},
		{"dotted path", "lab1/../lab2", []string{"read"}, time.Hour, `".."`},
		{"no scope", "lab1/", nil, time.Hour, "no scope"},
		{"unknown scope", "lab1/", []string{"read", "root"}, time.Hour, `unknown scope "root"`},
		{"zero ttl", "lab1/", []string{"read"}, 0, "positive"},
		{"ttl over max", "lab1/", []string{"read"}, auth.DefaultMaxTTL + time.Hour, "maximum"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := a.Mint(tc.path, tc.scopes, tc.ttl); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error with %q", err, tc.want)
			}
		})
	}
}

func TestSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	long := "a-long-enough-test-secret-for-vw-relay"
	tests := []struct {
		name, value, file string
		want              string // the secret, or the error substring after "!"
	}{
		{"neither: open", "", "", ""},
		{"value", long, "", long},
		{"file with newline", "", write("nl", long+"\n"), long},
		{"file with CRLF and spaces", "", write("crlf", long+" \r\n\r\n"), long},
		{"both", long, write("both", long), "!not both"},
		{"short value", "short", "", "!at least 32"},
		{"short file", "", write("short", "short\n"), "!at least 32"},
		{"one character repeated", strings.Repeat("k", 40), "", "!looks weak (1 distinct bytes"},
		{"a word repeated", strings.Repeat("changeme", 5), "", "!repeating every 8"},
		{"a pattern repeated", strings.Repeat("0123456789abcdef", 2), "", "!repeating every 16"},
		{"a word repeated, cut short", strings.Repeat("password", 4) + "pass", "", "!repeating every 8"},
		{"few characters", "abcabcabcabcabcabcabcabcabcabcaab", "", "!3 distinct bytes"},
		{"weak file", "", write("weak", strings.Repeat("x", 64)+"\n"), "!looks weak"},
		{"random hex", "3f0a9c1be47d2865d0b3e19a7c54f8062b9e1d4a7f3c0856e2d9b41a6c7f0e38", "", "3f0a9c1be47d2865d0b3e19a7c54f8062b9e1d4a7f3c0856e2d9b41a6c7f0e38"},
		{"hex using 9 characters", "0123456780123456788765432101234567801234568", "", "0123456780123456788765432101234567801234568"},
		{"random base64", "q8Jm3T0vWc1sZ7y2YbN4kPx9HdLf6RgA5eUoKiQ0tBE=", "", "q8Jm3T0vWc1sZ7y2YbN4kPx9HdLf6RgA5eUoKiQ0tBE="},
		{"empty file", "", write("empty", "\n"), "!is empty"},
		{"missing file", "", filepath.Join(dir, "nope"), "!no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := auth.Secret(tc.value, tc.file)
			if msg, isErr := strings.CutPrefix(tc.want, "!"); isErr {
				if err == nil || !strings.Contains(err.Error(), msg) {
					t.Fatalf("got %q, %v; want error with %q", s, err, msg)
				}
				return
			}
			if err != nil || string(s) != tc.want {
				t.Fatalf("got %q, %v; want %q", s, err, tc.want)
			}
		})
	}
}
