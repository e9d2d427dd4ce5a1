package main

import (
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
)

// benchFlags is the flag set of a benchmark command. Every benchmark takes
// -short: the same figures from a smaller run (fewer viewers, cycles or
// repeats, shorter windows), for a first look or a busy machine. Flags
// given on the command line win over -short's values.
type benchFlags struct {
	*flag.FlagSet
	short  bool
	shorts map[string]string
	vw     *string // -vw, when the benchmark runs vw
}

func newBenchFlags(name string, stderr io.Writer) *benchFlags {
	fs := &benchFlags{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), shorts: map[string]string{}}
	fs.SetOutput(stderr)
	fs.BoolVar(&fs.short, "short", false, "a quicker run: smaller knobs (flags given win)")
	return fs
}

// VW registers -vw, the vw binary the benchmark runs; Parse checks that
// it is there, so a missing build is said before anything starts.
func (fs *benchFlags) VW(p *string) {
	fs.StringVar(p, "vw", "bin/vw", "the vw binary to measure (make build)")
	fs.vw = p
}

// Short says what the named flag is under -short.
func (fs *benchFlags) Short(name, value string) { fs.shorts[name] = value }

func (fs *benchFlags) Parse(args []string) error {
	if err := fs.FlagSet.Parse(args); err != nil {
		return err
	}
	if fs.vw != nil {
		if _, err := os.Stat(*fs.vw); err != nil {
			return fmt.Errorf("%s: %w (run make build, or give -vw)", *fs.vw, err)
		}
	}
	if !fs.short {
		return nil
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, name := range slices.Sorted(maps.Keys(fs.shorts)) {
		if given[name] {
			continue
		}
		if err := fs.Set(name, fs.shorts[name]); err != nil {
			return err
		}
	}
	return nil
}

// parseShares reads -shares, the link rates a capped-link benchmark tries
// as shares of the stream's rate: "0.75,0.5".
func parseShares(list string) ([]float64, error) {
	var shares []float64
	for _, s := range strings.Split(list, ",") {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || f <= 0 {
			return nil, fmt.Errorf("-shares: %q is not a positive share", s)
		}
		shares = append(shares, f)
	}
	return shares, nil
}
