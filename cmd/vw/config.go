package main

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// bindConfig fills cfg (a pointer to a struct whose fields carry `envconfig`
// and `desc` tags) from the environment, <prefix>_<NAME>, then registers one
// flag per field, named after the variable in kebab case with the prefix
// dropped (or as its `flag` tag says), whose default is the value from the
// environment. So every setting
// has both forms by construction, and a flag given on the command line wins.
// An error in the environment (VW_PORT=abc) is returned for the command to
// report when it runs, since flags are registered before that.
func bindConfig(fs *pflag.FlagSet, envPrefix string, cfg any) error {
	err := envconfig.Process(envPrefix, cfg)
	bindFlags(fs, envPrefix, reflect.ValueOf(cfg).Elem())
	if err != nil {
		return fmt.Errorf("environment: %w", err)
	}
	return nil
}

// newServeCmd is a command that serves until it is stopped (vw stream, vw
// relay): it takes no arguments, its settings C come from VW_ variables and
// flags (bindConfig), and run gets them with the command's context.
func newServeCmd[C any](use, short string, run func(context.Context, C, io.Writer) error, stderr io.Writer) *cobra.Command {
	var cfg C
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs}
	envErr := bindConfig(cmd.Flags(), "VW", &cfg)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if envErr != nil {
			return envErr
		}
		return run(cmd.Context(), cfg, stderr)
	}
	return cmd
}

// bindFlags registers the flags of v's fields, and of the fields of the
// structs it embeds (a group of settings kept apart, as ClusterSettings).
func bindFlags(fs *pflag.FlagSet, envPrefix string, v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			bindFlags(fs, envPrefix, v.Field(i))
			continue
		}
		name := f.Tag.Get("envconfig")
		if name == "" {
			continue
		}
		flag := f.Tag.Get("flag")
		if flag == "" {
			flag = strings.ReplaceAll(strings.ToLower(name), "_", "-")
		}
		usage := fmt.Sprintf("%s (env %s_%s)", f.Tag.Get("desc"), envPrefix, name)
		switch p := v.Field(i).Addr().Interface().(type) {
		case *string:
			fs.StringVar(p, flag, *p, usage)
		case *int:
			fs.IntVar(p, flag, *p, usage)
		case *bool:
			fs.BoolVar(p, flag, *p, usage)
		case *time.Duration:
			fs.DurationVar(p, flag, *p, usage)
		case *[]string:
			fs.StringSliceVar(p, flag, *p, usage)
		default:
			panic(fmt.Sprintf("bindConfig: field %s has unsupported type %s", f.Name, f.Type))
		}
	}
}
