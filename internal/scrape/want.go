package scrape

import "testing"

// Want is a series a test expects in a scrape: its name, its labels as
// "name", "value", ... pairs, and its value.
type Want struct {
	Name   string
	Labels []string
	Value  float64
}

// Expect checks the value of each wanted series and reports every one that
// differs; the test fails at once if a series is missing or not single.
func (f Families) Expect(t testing.TB, wants ...Want) {
	t.Helper()
	for _, w := range wants {
		if got := f.Value(t, w.Name, w.Labels...); got != w.Value {
			t.Errorf("%s%v = %v, want %v", w.Name, w.Labels, got, w.Value)
		}
	}
}
