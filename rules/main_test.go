package rules

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/vwlab/vw/agg"
	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/rwc"
)

// Every goroutine behind the rules (muxers, destinations) must be gone when
// its test ends.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fixture struct {
	rules      *Service
	recordings string
}

// newFixture returns the rules service over real muxers and destination
// clients.
func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	log := testutil.Log(t)
	h := hub.New()
	a, err := agg.New(agg.Config{}, h, log)
	if err != nil {
		t.Fatal(err)
	}
	recordings := t.TempDir()
	r, err := rwc.New(rwc.Config{Recordings: recordings, Resolve: Resolver(a)}, h, log)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := New(cfg, a, r, log)
	if err != nil {
		r.Close()
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(rs.Close)
	return &fixture{rules: rs, recordings: recordings}
}
