package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"
)

// Set at build time by the Makefile and scripts/dist.sh:
// -ldflags "-X main.version=… -X main.commit=… -X main.date=…".
// A plain `go build` leaves these, and says so.
var (
	version = "dev"
	commit  = "unknown"
	date    = "unknown"
)

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit and the build date",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintf(stdout, "vw %s\ncommit: %s\nbuilt: %s\nplatform: %s/%s %s\n",
				version, commit, date, runtime.GOOS, runtime.GOARCH, runtime.Version())
			return err
		},
	}
}
