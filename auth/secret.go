package auth

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
)

// MinSecretBits is the least strength CheckSecret accepts, as secretBits
// estimates it.
const MinSecretBits = 96

// CheckSecret refuses a secret too short for HS256, or one that is long
// enough but plainly guessable: one character repeated, a word repeated, a
// handful of distinct characters.
func CheckSecret(secret []byte) error {
	if len(secret) < MinSecretLen {
		return fmt.Errorf("auth: relay secret is %d bytes; need at least %d (try: head -c 32 /dev/urandom | base64)", len(secret), MinSecretLen)
	}
	if bits, distinct, period := secretBits(secret); bits < MinSecretBits {
		how := fmt.Sprintf("%d distinct bytes", distinct)
		if period < len(secret) {
			how += fmt.Sprintf(", repeating every %d", period)
		}
		return fmt.Errorf("auth: relay secret looks weak (%s: about %.0f bits, need %d); make a random one: head -c 32 /dev/urandom | base64", how, bits, MinSecretBits)
	}
	return nil
}

// secretBits estimates a secret's strength from above: no more than its
// shortest repeating unit (the whole secret if none) times log2 of the number
// of distinct bytes in it. It cannot tell a random secret from a clever
// pattern, but it does catch the obvious ones. A count of distinct bytes
// alone would not do: a random hex secret (`openssl rand -hex 32`) uses 16
// characters at most and often fewer, yet carries 4 bits per character.
func secretBits(s []byte) (bits float64, distinct, period int) {
	var seen [256]bool
	for _, b := range s {
		if !seen[b] {
			seen[b] = true
			distinct++
		}
	}
	// The shortest period is the length less the longest border (a proper
	// prefix that is also a suffix): the KMP failure function of s.
	fail := make([]int, len(s))
	for i, k := 1, 0; i < len(s); i++ {
		for k > 0 && s[i] != s[k] {
			k = fail[k-1]
		}
		if s[i] == s[k] {
			k++
		}
		fail[i] = k
	}
	period = len(s)
	if len(s) > 0 {
		period -= fail[len(s)-1]
	}
	return float64(period) * math.Log2(float64(distinct)), distinct, period
}

// LoadSecret reads a secret from a file, dropping trailing newlines and
// spaces (editors and `echo` add them), and checks its length.
func LoadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: relay secret file: %w", err)
	}
	s := []byte(strings.TrimRight(string(b), " \t\r\n"))
	if len(s) == 0 {
		return nil, fmt.Errorf("auth: relay secret file %s is empty", path)
	}
	if err := CheckSecret(s); err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return s, nil
}

// Secret resolves the relay secret from the values of VW_RELAY_SECRET and
// VW_RELAY_SECRET_FILE: at most one may be set. Neither gives nil, nil: the
// relay runs open.
func Secret(value, file string) ([]byte, error) {
	switch {
	case value != "" && file != "":
		return nil, errors.New("auth: set VW_RELAY_SECRET or VW_RELAY_SECRET_FILE, not both")
	case file != "":
		return LoadSecret(file)
	case value != "":
		s := []byte(value)
		if err := CheckSecret(s); err != nil {
			return nil, err
		}
		return s, nil
	default:
		return nil, nil
	}
}
