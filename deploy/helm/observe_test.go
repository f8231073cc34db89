package helm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

const (
	rulesFile     = chartDir + "/files/prometheus-rules.yml"
	rulesTestFile = "prometheus-rules_test.yml"
	boardFile     = chartDir + "/files/grafana-dashboard.json"
)

// promtool finds promtool (Debian's prometheus package; .ci/run installs it), which CI must
// have.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("promtool not installed (apt-get install prometheus)")
	}
	t.Skip("promtool not installed (apt-get install prometheus): the alert rules' unit tests are skipped")
	return ""
}

// TestAlertRules checks the rule file and runs its unit tests with promtool.
func TestAlertRules(t *testing.T) {
	tool := promtool(t)
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTestFile}} {
		out, err := exec.Command(tool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// Every alert has a unit test.
	rules, tests := alertNames(t), readFile(t, rulesTestFile)
	for _, name := range rules {
		if !strings.Contains(tests, "alertname: "+name+"\n") {
			t.Errorf("alert %s has no promtool test in %s", name, rulesTestFile)
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	var rf ruleFile
	if err := yaml.UnmarshalStrict([]byte(readFile(t, rulesFile)), &rf); err != nil {
		t.Fatal(err)
	}
	return rf
}

func alertNames(t *testing.T) []string {
	var names []string
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			names = append(names, r.Alert)
		}
	}
	return names
}

type board struct {
	Panels []struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
		} `json:"list"`
	} `json:"templating"`
}

// grafanaVariables are replaced in panel queries before they are parsed as PromQL.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$tenant", ".*")

func readBoard(t *testing.T) board {
	t.Helper()
	var b board
	if err := json.Unmarshal([]byte(readFile(t, boardFile)), &b); err != nil {
		t.Fatalf("%s: %v", boardFile, err)
	}
	return b
}

// TestGrafanaBoard: the board is provisionable JSON whose every panel queries valid PromQL
// through the datasource variable.
func TestGrafanaBoard(t *testing.T) {
	b := readBoard(t)
	ids := map[int]bool{}
	queries := 0
	for _, p := range b.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			queries++
			if _, err := promql.ParseExpr(grafanaVariables.Replace(q.Expr)); err != nil {
				t.Errorf("panel %q: %v", p.Title, err)
			}
		}
	}
	if queries < 10 {
		t.Errorf("%d queries on the board", queries)
	}
	if !strings.Contains(readFile(t, boardFile), `"uid": "${datasource}"`) {
		t.Error("panels do not use the datasource variable: the board would not provision into another Grafana")
	}
}

// used is what an expression names: metrics, and the labels it matches, groups or joins on.
type used struct {
	metrics map[string]bool
	labels  map[string]bool
}

func namesIn(t *testing.T, what, expr string, u used) {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch x := n.(type) {
		case *parser.VectorSelector:
			for _, m := range x.LabelMatchers {
				if m.Name == model.MetricNameLabel {
					u.metrics[m.Value] = true
				} else {
					u.labels[m.Name] = true
				}
			}
		case *parser.AggregateExpr:
			for _, l := range x.Grouping {
				u.labels[l] = true
			}
		case *parser.BinaryExpr:
			if x.VectorMatching != nil {
				for _, l := range append(slices.Clone(x.VectorMatching.MatchingLabels), x.VectorMatching.Include...) {
					u.labels[l] = true
				}
			}
		}
		return nil
	})
}

// labelsInTemplates are the {{ $labels.x }} of alert annotations and {{x}} of legends.
var labelsInTemplates = regexp.MustCompile(`\{\{ *(?:\$labels\.)?([a-z_]+) *\}\}`)

// targetLabels are attached by Prometheus to every series it scrapes, not exported.
var targetLabels = []string{"job", "instance", "namespace", "pod", "container", "service", "endpoint", "le"}

// TestRulesAndBoardNameExportedMetrics runs the whole stack (bin/fieldstream, as `make run`
// does: embedded JetStream, gateway, consumers, poller, simulators, dashboard) with
// webhooks flowing, scrapes its /metrics, and fails if an alert rule or a panel names a
// metric or a label that no service exports.
func TestRulesAndBoardNameExportedMetrics(t *testing.T) {
	u := used{metrics: map[string]bool{}, labels: map[string]bool{}}
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			namesIn(t, "alert "+r.Alert, r.Expr, u)
			for _, a := range r.Annotations {
				for _, m := range labelsInTemplates.FindAllStringSubmatch(a, -1) {
					u.labels[m[1]] = true
				}
			}
		}
	}
	raw := readFile(t, boardFile)
	for _, p := range readBoard(t).Panels {
		for _, q := range p.Targets {
			namesIn(t, "panel "+p.Title, grafanaVariables.Replace(q.Expr), u)
		}
	}
	var legends struct {
		Panels []struct {
			Targets []struct {
				LegendFormat string `json:"legendFormat"`
			} `json:"targets"`
		} `json:"panels"`
	}
	_ = json.Unmarshal([]byte(raw), &legends)
	for _, p := range legends.Panels {
		for _, q := range p.Targets {
			for _, m := range labelsInTemplates.FindAllStringSubmatch(q.LegendFormat, -1) {
				u.labels[m[1]] = true
			}
		}
	}
	if len(u.metrics) < 10 {
		t.Fatalf("found only %d metrics in the rules and the board: %v", len(u.metrics), u.metrics)
	}

	metrics, labels := scrapeStack(t, u.metrics)
	for m := range u.metrics {
		if !metrics[m] {
			t.Errorf("metric %s is named by a rule or panel, but no service exports it", m)
		}
	}
	for l := range u.labels {
		if !labels[l] && !slices.Contains(targetLabels, l) {
			t.Errorf("label %s is named by a rule or panel, but no exported metric has it", l)
		}
	}
}

// scrapeStack runs bin/fieldstream with the simulated ServiceTrade account sending
// webhooks and scrapes its /metrics until every metric of want appears (or a minute has
// passed). It returns the metric names (histograms' _bucket, _sum, _count included) and
// label names exported.
func scrapeStack(t *testing.T, want map[string]bool) (metrics, labels map[string]bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "fieldstream")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./services/fieldstream/cmd/fieldstream")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build fieldstream: %v\n%s", err, out)
	}
	natsPort, httpPort := freePort(t), freePort(t)
	var out bytes.Buffer
	cmd := exec.Command(bin, "-data-dir", filepath.Join(t.TempDir(), "data"), "-nats-listen", fmt.Sprintf("127.0.0.1:%d", natsPort),
		"-http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort), "-sim-servicetrade-addr", "127.0.0.1:0", "-sim-assets-addr", "127.0.0.1:0",
		"-sim-workorders-addr", "127.0.0.1:0", "-sim-paycom-addr", "127.0.0.1:0", "-sim-rate", "30", "-poll-interval", "0")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		if err := <-exited; err != nil {
			t.Errorf("fieldstream did not stop cleanly: %v\n%s", err, out.String())
		}
	}()
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", httpPort)
	deadline := time.Now().Add(90 * time.Second)
	for {
		metrics, labels = map[string]bool{}, map[string]bool{}
		missing := []string{}
		if fams, err := scrape(ctx, url); err == nil {
			for name, f := range fams {
				metrics[name] = true
				if f.GetType().String() == "HISTOGRAM" {
					metrics[name+"_bucket"], metrics[name+"_sum"], metrics[name+"_count"] = true, true, true
				}
				for _, m := range f.GetMetric() {
					for _, l := range m.GetLabel() {
						labels[l.GetName()] = true
					}
				}
			}
		}
		for m := range want {
			if !metrics[m] {
				missing = append(missing, m)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			return metrics, labels
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case err := <-exited:
			exited <- err
			t.Fatalf("fieldstream exited: %v\n%s", err, out.String())
		case <-time.After(time.Second): // polling the stack until the series appear
		}
	}
}

func scrape(ctx context.Context, url string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// promql parses PromQL as Prometheus does by default.
var promql = parser.NewParser(parser.Options{})
