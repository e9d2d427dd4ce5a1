// Package scrape owns what tests need to read a /metrics page as Prometheus
// does: fetch it, parse it with Prometheus' own text parser, and look series
// up by name and labels.
package scrape

import (
	"io"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are the metric families of one scrape, by name.
type Families map[string]*dto.MetricFamily

// Get scrapes url with the headers h (nil for none) and fails the test
// unless the answer is 200 in the Prometheus text format.
func Get(t testing.TB, url string, h http.Header) Families {
	t.Helper()
	f, status, body := Try(t, url, h)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, status, body)
	}
	return f
}

// Try scrapes url and returns the families (nil unless the status is 200),
// the status and, for any other status, the body.
func Try(t testing.TB, url string, h http.Header) (Families, int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, resp.StatusCode, strings.TrimSpace(string(b))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET %s: Content-Type %q, want the text format", url, ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: not the Prometheus text format: %v", url, err)
	}
	return Families(fams), resp.StatusCode, ""
}

// Labels returns a series' labels as a map.
func Labels(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// Series returns every series of the named family (none if it is absent).
func (f Families) Series(name string) []*dto.Metric {
	if mf := f[name]; mf != nil {
		return mf.GetMetric()
	}
	return nil
}

// Find returns the series of name whose labels include the pairs given as
// "name", "value", ... and whether there is exactly one.
func (f Families) Find(name string, pairs ...string) (*dto.Metric, bool) {
	var found []*dto.Metric
	for _, m := range f.Series(name) {
		l := Labels(m)
		ok := true
		for i := 0; i+1 < len(pairs); i += 2 {
			if l[pairs[i]] != pairs[i+1] {
				ok = false
			}
		}
		if ok {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		return nil, false
	}
	return found[0], true
}

// Value returns the value of the one series of name with the labels given
// as pairs; the test fails if there is none or more than one.
func (f Families) Value(t testing.TB, name string, pairs ...string) float64 {
	t.Helper()
	m, ok := f.Find(name, pairs...)
	if !ok {
		t.Fatalf("no single series %s%v in the scrape (%d series of that name)", name, pairs, len(f.Series(name)))
	}
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	t.Fatalf("%s%v is neither a counter nor a gauge", name, pairs)
	return 0
}
