package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vwlab/vw/auth"
)

// tokenConfig is what `vw token` needs: the relay's secret and audience.
type tokenConfig struct {
	Secret     string `envconfig:"RELAY_SECRET" flag:"secret" desc:"the relay's signing secret (prefer --secret-file: arguments show in ps)"`
	SecretFile string `envconfig:"RELAY_SECRET_FILE" flag:"secret-file" desc:"file holding the relay's signing secret"`
	Audience   string `envconfig:"RELAY_AUDIENCE" flag:"audience" default:"vw-relay" desc:"audience the relay expects in tokens"`
}

func newTokenCmd(stdout io.Writer) *cobra.Command {
	var (
		cfg    tokenConfig
		path   string
		scopes []string
		ttl    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print a relay token for a path prefix and scopes, signed with the relay's secret",
		Long: `Print a relay token (JWT, HS256) signed with VW_RELAY_SECRET or VW_RELAY_SECRET_FILE.

Scopes: read (watch /out/ routes), write (publish to /in/ routes); a
bidirectional route such as the control API needs both; admin may see
/stats and deny tokens (POST /api/deny) under its path. The path prefix
limits the routes: lab1/ covers /in/lab1/..., /out/lab1/... and
/bi/lab1/...; only --path / reaches every lab.

  vw token --path lab1/ --scope write --ttl 8760h    # for a lab host's vw stream
  vw token --path lab1/ --scope read --ttl 24h       # for a viewer
  vw token --path lab1/ --scope admin --ttl 1h       # lab1's stats and revocations`,
		Args: cobra.NoArgs,
	}
	envErr := bindConfig(cmd.Flags(), "VW", &cfg)
	cmd.Flags().StringVar(&path, "path", "", "route prefix the token covers, e.g. lab1/ (\"/\" for all)")
	cmd.Flags().StringSliceVar(&scopes, "scope", []string{auth.ScopeRead}, "scopes: read, write, admin (comma-separated)")
	cmd.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token is good for")
	_ = cmd.MarkFlagRequired("path")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if envErr != nil {
			return envErr
		}
		secret, err := auth.Secret(cfg.Secret, cfg.SecretFile)
		if err != nil {
			return err
		}
		if secret == nil {
			return fmt.Errorf("no secret: set VW_RELAY_SECRET_FILE (or VW_RELAY_SECRET) to the relay's secret")
		}
		a, err := auth.New(auth.Config{Secret: secret, Audience: cfg.Audience}, nil)
		if err != nil {
			return err
		}
		for i := range scopes {
			scopes[i] = strings.TrimSpace(scopes[i])
		}
		tok, err := a.Mint(path, scopes, ttl)
		if err != nil {
			return err
		}
		if strings.TrimSpace(path) == "/" && slices.Contains(scopes, auth.ScopeAdmin) {
			fmt.Fprintln(cmd.ErrOrStderr(), "vw token: warning: this admin token is relay-wide (--path /): it sees every lab's topics in /stats and can deny any token; for one lab's admin use --path lab1/ --scope admin")
		}
		_, err = fmt.Fprintln(stdout, tok)
		return err
	}
	return cmd
}
