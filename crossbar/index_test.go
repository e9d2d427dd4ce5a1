package crossbar

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/ts"
)

// TestIndexCached: the index's list of live streams is built at most once
// a second, and a request for it does not need the relay's lock while the
// list is fresh: with the lock held, the index still answers.
func TestIndexCached(t *testing.T) {
	clk := newClock()
	r := startRelay(t, Config{Now: clk.Now})
	r.dial(t, "/in/lab1/cam")
	r.waitClients(t, "/out/lab1/cam", 1, 0, 0)
	if index := getBody(t, r.http.URL+"/"); !strings.Contains(index, `href="/play/lab1/cam"`) {
		t.Fatalf("the index lacks the live stream:\n%s", index)
	}

	lab2 := r.dial(t, "/in/lab2/cam")
	r.waitClients(t, "/out/lab2/cam", 1, 0, 0)
	synth := tscheck.NewSynth(true, 0)
	synth.H264 = true
	send(t, lab2, bin, synth.Append(nil, 2))
	testutil.Eventually(t, 5*time.Second, func() bool { return r.family("lab2/cam") == ts.FamilyH264 }, "the relay never saw lab2's PMT")
	if index := getBody(t, r.http.URL+"/"); strings.Contains(index, "lab2/cam") {
		t.Fatalf("the index was built again within a second:\n%s", index)
	}

	r.mu.Lock()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(r.http.URL + "/")
	r.mu.Unlock()
	if err != nil {
		t.Fatalf("the index needs the relay's lock while its list is fresh: %v", err)
	}
	_ = resp.Body.Close()

	clk.Advance(time.Second)
	if index := getBody(t, r.http.URL+"/"); !strings.Contains(index, `href="/play/lab2/cam"`) || !strings.Contains(index, ts.FamilyH264.Title()) {
		t.Fatalf("a second later the index still lacks the new stream and its codec:\n%s", index)
	}
}

// TestIndexCost: building the index costs the same with 400 viewers as with
// none: it reads the per-topic counts and never walks the clients. Measured
// in bytes allocated per build, which walking the clients (as /stats does)
// multiplies by the number of clients.
func TestIndexCost(t *testing.T) {
	r := startRelay(t, Config{MaxConnsPerAddr: 1000})
	r.dial(t, "/in/lab1/cam")
	r.dial(t, "/in/lab2/cam")
	r.waitClients(t, "/out/lab2/cam", 1, 0, 0)
	perBuild := func() float64 {
		const n = 200
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range n {
			if len(r.buildIndex()) != 2 {
				t.Fatal("the index lacks a live stream")
			}
		}
		runtime.ReadMemStats(&after)
		return float64(after.TotalAlloc-before.TotalAlloc) / n
	}
	alone := perBuild()
	for range 400 {
		r.dial(t, "/out/lab1/cam")
	}
	r.waitClients(t, "/out/lab1/cam", 1, 400, 0)
	crowded := perBuild()
	t.Logf("bytes per build: %.0f with no viewers, %.0f with 400", alone, crowded)
	// 400 clients walked would be 400 records of about 150 bytes: 60 KB.
	if crowded > alone+4096 {
		t.Fatalf("building the index allocates %.0f bytes with 400 viewers against %.0f with none: it walks the clients", crowded, alone)
	}
}
