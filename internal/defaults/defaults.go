// Package defaults fills the zero fields of a package's Config, so that
// every constructor reads its configuration the same way: a zero field
// takes the default, a negative one is an error that names it.
//
//	func (c Config) withDefaults() (Config, error) {
//		err := errors.Join(
//			defaults.Positive("Queue", &c.Queue, 256),
//			defaults.Positive("Grace", &c.Grace, 2*time.Second),
//		)
//		defaults.Zero(&c.Dir, "./recordings")
//		return c, err
//	}
package defaults

import "fmt"

// Number is what Positive takes: counts, sizes and durations.
type Number interface {
	~int | ~int64
}

// Positive sets *v to def when it is zero, and returns an error naming the
// field when it is negative.
func Positive[T Number](name string, v *T, def T) error {
	switch {
	case *v < 0:
		return fmt.Errorf("%s is %v: zero means the default (%v), and it cannot be negative", name, *v, def)
	case *v == 0:
		*v = def
	}
	return nil
}

// Zero sets *v to def when it is the zero value of its type.
func Zero[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
