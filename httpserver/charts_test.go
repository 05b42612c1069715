package httpserver

import (
	"encoding/xml"
	"math"
	"strings"
	"testing"
	"time"
)

var chartEnd = time.Date(2026, 5, 6, 7, 8, 0, 0, time.UTC)

func chartWith(values ...float64) Chart {
	times := make([]time.Time, len(values))
	for i := range values {
		times[i] = chartEnd.Add(-time.Duration(len(values)-1-i) * 5 * time.Second)
	}
	return Chart{Title: "Queries <per> second", Unit: "qps", End: chartEnd, Span: 15 * time.Minute, Times: times,
		Series: []Series{{Name: "all", Color: "#1f77b4", Values: values}}}
}

func TestChartSVGIsWellFormedAndEscaped(t *testing.T) {
	svg := string(chartWith(1, 2, math.NaN(), 4, 5).SVG())
	if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
		t.Fatalf("not well-formed XML: %v\n%s", err, svg)
	}
	for _, want := range []string{"<title>Queries &lt;per&gt; second</title>", "<polyline", "now", "-15m", "5 qps"} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q:\n%s", want, svg)
		}
	}
	if strings.Contains(svg, "<per>") || strings.Contains(svg, "<script") {
		t.Errorf("unescaped title or a script in the SVG:\n%s", svg)
	}
	// The NaN splits the line: one polyline before it, one after.
	if n := strings.Count(svg, "<polyline"); n != 2 {
		t.Errorf("%d polylines, want 2 (the gap splits the series)", n)
	}
}

func TestChartScaleAndLegend(t *testing.T) {
	for _, tt := range []struct {
		values []float64
		top    float64
		last   string
	}{
		{nil, 1, "–"},
		{[]float64{0, 0}, 1, "0 qps"},
		{[]float64{3, 7.2}, 10, "7.2 qps"},
		{[]float64{120, 180}, 200, "180 qps"},
		{[]float64{0.03, math.NaN()}, 0.05, "0.03 qps"},
		{[]float64{4500}, 5000, "4500 qps"},
	} {
		c := chartWith(tt.values...)
		if got := c.yMax(); math.Abs(got-tt.top) > 1e-9 {
			t.Errorf("%v: y axis top %v, want %v", tt.values, got, tt.top)
		}
		if got := c.Legend()[0].Last; got != tt.last {
			t.Errorf("%v: legend %q, want %q", tt.values, got, tt.last)
		}
	}
	if !strings.Contains(string(chartWith().SVG()), "no data yet") {
		t.Error("an empty chart does not say so")
	}
}

func TestChartPlacesPointsInTime(t *testing.T) {
	c := chartWith(1)
	if x := c.x(chartEnd); x != plotRight {
		t.Errorf("now at x=%v, want the right edge %v", x, float64(plotRight))
	}
	if x := c.x(chartEnd.Add(-15 * time.Minute)); x != plotLeft {
		t.Errorf("-15m at x=%v, want the left edge %v", x, float64(plotLeft))
	}
	if x := c.x(chartEnd.Add(-time.Hour)); x != plotLeft {
		t.Errorf("older than the span at x=%v, want clamped to the left edge", x)
	}
}

func TestFormatValue(t *testing.T) {
	for _, tt := range []struct {
		v    float64
		unit string
		want string
	}{
		{0, "ms", "0 ms"}, {0.126, "ms", "0.13 ms"}, {1.5, "", "1.5"}, {12.34, "qps", "12.3 qps"}, {1234.6, "qps", "1235 qps"}, {2, "ms", "2 ms"},
	} {
		if got := formatValue(tt.v, tt.unit); got != tt.want {
			t.Errorf("formatValue(%v, %q) = %q, want %q", tt.v, tt.unit, got, tt.want)
		}
	}
	for d, want := range map[time.Duration]string{15 * time.Minute: "15m", 90 * time.Second: "90s", 2 * time.Hour: "2h"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
