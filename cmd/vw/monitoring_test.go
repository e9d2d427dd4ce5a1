package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/vwlab/vw/internal/scrape"
	"github.com/vwlab/vw/internal/testutil"
)

const monitoring = "../../examples/monitoring/"

// promConfig is the part of a Prometheus configuration the example uses;
// decoding refuses any other field, so a misspelt key fails here.
type promConfig struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		Scheme        string `yaml:"scheme"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string          `yaml:"targets"`
			Labels  map[string]string `yaml:"labels"`
		} `yaml:"static_configs"`
		Authorization *struct {
			CredentialsFile string `yaml:"credentials_file"`
		} `yaml:"authorization"`
	} `yaml:"scrape_configs"`
}

// alertRule is one rule of a Prometheus rule file.
type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type ruleFile struct {
	Groups []struct {
		Name  string      `yaml:"name"`
		Rules []alertRule `yaml:"rules"`
	} `yaml:"groups"`
}

func decodeYAML(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(monitoring + name)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// query is one PromQL expression of the examples, with where it is from
// and the label names it relies on (by, on, $labels, legends).
type query struct {
	from, expr string
	labels     []string
}

var (
	metricName = regexp.MustCompile(`\b(?:vw|go|process)_[a-zA-Z0-9_]+`)
	grouping   = regexp.MustCompile(`\b(?:by|on|without|ignoring)\s*\(([^)]*)\)`)
	labelRef   = regexp.MustCompile(`\{\{\s*\$?(?:labels\.)?([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
)

// TestMonitoringExamples reads examples/monitoring/ as Prometheus and
// Grafana would and checks it against real scrapes of vw stream and vw
// relay carrying a feed: the scrape config and alert rules are well formed
// (promtool is not packaged cheaply for Debian: this checks their
// structure), the three alerts the README promises exist, and every metric
// and label that an alert or a dashboard panel queries is in the scrapes.
func TestMonitoringExamples(t *testing.T) {
	checkScrapeConfig(t)
	queries := append(alertQueries(t), dashboardQueries(t)...)
	fams := liveScrapes(t)
	for _, q := range queries {
		checkQuery(t, q, fams)
	}
}

// checkScrapeConfig checks prometheus.yml: its intervals parse, its rule
// files exist, and it scrapes both commands (the relay with a token).
func checkScrapeConfig(t *testing.T) {
	var cfg promConfig
	decodeYAML(t, "prometheus.yml", &cfg)
	for _, d := range []string{cfg.Global.ScrapeInterval, cfg.Global.EvaluationInterval} {
		if _, err := model.ParseDuration(d); err != nil {
			t.Errorf("prometheus.yml: interval %q: %v", d, err)
		}
	}
	for _, f := range cfg.RuleFiles {
		if _, err := os.Stat(monitoring + f); err != nil {
			t.Errorf("prometheus.yml loads %s: %v", f, err)
		}
	}
	jobs := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		jobs[sc.JobName] = len(sc.StaticConfigs) > 0 && len(sc.StaticConfigs[0].Targets) > 0
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("job %s scrapes %s", sc.JobName, sc.MetricsPath)
		}
		if sc.JobName == "vw-relay" && (sc.Authorization == nil || sc.Authorization.CredentialsFile == "") {
			t.Error("job vw-relay sends no token: a relay with auth refuses /metrics without an admin token")
		}
	}
	if !jobs["vw-stream"] || !jobs["vw-relay"] {
		t.Errorf("prometheus.yml: jobs %v, want vw-stream and vw-relay with targets", jobs)
	}
}

// alertQueries checks alerts.yml (unique VW names, durations, severity,
// summary, the three alerts the README promises) and returns what each
// alert queries.
func alertQueries(t *testing.T) []query {
	var queries []query
	var rules ruleFile
	decodeYAML(t, "alerts.yml", &rules)
	byName := map[string]alertRule{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if _, dup := byName[r.Alert]; dup || !strings.HasPrefix(r.Alert, "VW") {
				t.Errorf("alert %q: names must be unique and start with VW", r.Alert)
			}
			byName[r.Alert] = r
			if _, err := model.ParseDuration(r.For); err != nil {
				t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("alert %s: severity %q", r.Alert, s)
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("alert %s has no summary", r.Alert)
			}
			q := query{from: "alert " + r.Alert, expr: r.Expr}
			for _, a := range r.Annotations {
				q.labels = append(q.labels, refs(a)...)
			}
			queries = append(queries, q)
		}
	}
	for name, want := range map[string]struct{ metric, for_ string }{
		"VWFeedDown":              {"vw_stream_feed_up", "1m"},
		"VWDestinationBackingOff": {"vw_stream_destination_up", "5m"},
		"VWViewersDropped":        {"vw_relay_dropped_viewers_total", ""},
	} {
		r, ok := byName[name]
		if !ok || !strings.Contains(r.Expr, want.metric) || (want.for_ != "" && r.For != want.for_) {
			t.Errorf("alert %s: %+v, want one on %s for %s", name, r, want.metric, want.for_)
		}
	}
	return queries
}

// checkQuery checks that every metric and label q uses is in the scrapes.
func checkQuery(t *testing.T, q query, fams scrape.Families) {
	t.Helper()
	if !balanced(q.expr) {
		t.Errorf("%s: unbalanced brackets in %q", q.from, q.expr)
	}
	names := metricName.FindAllString(q.expr, -1)
	if len(names) == 0 && !strings.Contains(q.expr, "up{") {
		t.Errorf("%s queries no vw metric: %q", q.from, q.expr)
	}
	have := map[string]bool{"instance": true, "job": true, "lab": true}
	for _, n := range names {
		series := fams.Series(n)
		if len(series) == 0 {
			t.Errorf("%s queries %s, which no scrape has", q.from, n)
		}
		for _, m := range series {
			for l := range scrape.Labels(m) {
				have[l] = true
			}
		}
	}
	for _, g := range grouping.FindAllStringSubmatch(q.expr, -1) {
		q.labels = append(q.labels, strings.Split(g[1], ",")...)
	}
	for _, l := range q.labels {
		if l = strings.TrimSpace(l); l != "" && l != "value" && !have[l] && len(names) > 0 {
			t.Errorf("%s uses label %q, which %v do not have", q.from, l, names)
		}
	}
}

// refs returns the labels a template names: {{ $labels.x }} or {{x}}.
func refs(s string) []string {
	var out []string
	for _, m := range labelRef.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// balanced reports whether (), [] and {} nest properly outside strings.
func balanced(s string) bool {
	var stack []rune
	pair := map[rune]rune{')': '(', ']': '[', '}': '{'}
	inQuote := false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
		case inQuote:
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case pair[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pair[r] {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return len(stack) == 0 && !inQuote
}

// dashboardQueries reads the Grafana dashboard: every panel (rows' too)
// has a unique id and a place, uses the datasource variable, and its
// targets' expressions and legends are returned.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	type panel struct {
		ID         int                   `json:"id"`
		Type       string                `json:"type"`
		Title      string                `json:"title"`
		GridPos    *struct{ W, H int }   `json:"gridPos"`
		Datasource *struct{ UID string } `json:"datasource"`
		Targets    []struct {
			Expr, LegendFormat string
		} `json:"targets"`
		Panels json.RawMessage `json:"panels"`
	}
	var d struct {
		Title, UID string
		Panels     []panel
		Templating struct{ List []struct{ Name, Type string } }
	}
	b, err := os.ReadFile(monitoring + "grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Templating.List) == 0 || d.Templating.List[0].Type != "datasource" {
		t.Fatalf("grafana-dashboard.json: title %q, uid %q, templating %+v: want a datasource variable", d.Title, d.UID, d.Templating.List)
	}
	var out []query
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] || p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %q: id %d repeated or no place (gridPos)", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${"+d.Templating.List[0].Name+"}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %+v, %d targets: want the datasource variable and a query", p.Title, p.Datasource, len(p.Targets))
		}
		for _, tg := range p.Targets {
			out = append(out, query{from: "panel " + p.Title, expr: tg.Expr, labels: refs(tg.LegendFormat)})
		}
	}
	if len(out) < 10 {
		t.Errorf("the dashboard has %d queries", len(out))
	}
	return out
}

// liveScrapes runs a relay and vw stream carrying a real ffmpeg recording
// through a stream rule and a destination to a viewer, and returns both
// scrapes' families together.
func liveScrapes(t *testing.T) scrape.Families {
	t.Helper()
	body, err := os.ReadFile(recordFeed(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	relay := relayProc(t)
	stream := streamProc(t)
	postRule(t, stream, "/api/streams", `{"stream":"front","feeds":["video0"]}`)
	postRule(t, stream, "/api/destinations", `{"stream":"front","destination":"ws://`+relay.addr+`/in/lab1/front","id":"0","file":"front.ts"}`)
	v := watch(t, relay, "/out/lab1/front")
	resp, err := http.Post("http://"+stream.addr+"/ts/video0", "video/mp2t", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	testutil.Eventually(t, 10*time.Second, func() bool { return v.size() > 0 }, "the stream at the viewer")

	fams := scrape.Get(t, "http://"+stream.addr+"/metrics", nil)
	for name, f := range scrape.Get(t, "http://"+relay.addr+"/metrics", nil) {
		if strings.HasPrefix(name, "vw_") || fams[name] == nil {
			fams[name] = f
		}
	}
	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	slices.Sort(names)
	t.Logf("families scraped: %s", strings.Join(names, " "))
	return fams
}
