package auth

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// CheckSecret refuses a secret too short for HS256.
func CheckSecret(secret []byte) error {
	if len(secret) < MinSecretLen {
		return fmt.Errorf("auth: relay secret is %d bytes; need at least %d (try: head -c 32 /dev/urandom | base64)", len(secret), MinSecretLen)
	}
	return nil
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
