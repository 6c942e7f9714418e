// Package metricstest reads a running service's /metrics for tests, with Prometheus's own
// text parser.
package metricstest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Family maps a series' labels ("function=x,outcome=y", "" for none) to its value: a
// counter's or a gauge's value, or a histogram's sample count.
type Family map[string]float64

// Scrape GETs base+"/metrics" and returns its families by name. It fails the test when the
// request fails, the answer is not 200, or the body is not the Prometheus text format.
func Scrape(t testing.TB, base string) map[string]Family {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d; want 200", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics: not the Prometheus text format: %v", err)
	}
	out := map[string]Family{}
	for name, f := range fams {
		mf := Family{}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue()
			if h := m.GetHistogram(); h != nil {
				v = float64(h.GetSampleCount())
			}
			if g := m.GetGauge(); g != nil {
				v = g.GetValue()
			}
			mf[strings.Join(labels, ",")] = v
		}
		out[name] = mf
	}
	return out
}
