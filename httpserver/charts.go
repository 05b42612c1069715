package httpserver

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// Chart is a line chart drawn on the server as inline SVG: no script, no library from a
// CDN, so the status page works offline and in any browser. Values are aligned with Times;
// a NaN value is a gap (no data). The x axis always spans Span up to End, so charts drawn
// side by side line up and a young tablet's data sits at the right.
type Chart struct {
	Title  string
	Unit   string // appended to values on the axis and in the legend: "qps", "ms", "conns"
	End    time.Time
	Span   time.Duration
	Times  []time.Time
	Series []Series
}

// Series is one line of a chart.
type Series struct {
	Name   string
	Color  string // CSS colour
	Values []float64
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH         = 640, 170
	plotLeft, plotRight    = 56, 632
	plotTop, plotBottom    = 8, 142
	chartLabelY, chartTick = 160, 4
)

// SVG renders the chart. Every text is escaped; the output is safe to embed.
func (c Chart) SVG() template.HTML {
	var b strings.Builder
	top := c.yMax()
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" xmlns="http://www.w3.org/2000/svg">`,
		chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<title>%s</title>`, html.EscapeString(c.Title))
	// Horizontal grid and the y axis labels: 0, half, top.
	for _, f := range []float64{0, 0.5, 1} {
		y := c.y(f*top, top)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, plotLeft, y, plotRight, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="10" text-anchor="end" fill="#555">%s</text>`,
			plotLeft-4, y+3, html.EscapeString(formatValue(f*top, c.Unit)))
	}
	// Time axis: a tick every fifth of the span, labelled as minutes before End.
	for i := 0; i <= 5; i++ {
		ago := c.Span * time.Duration(5-i) / 5
		x := c.x(c.End.Add(-ago))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999"/>`, x, plotBottom, x, plotBottom+chartTick)
		label := "now"
		if ago > 0 {
			label = "-" + shortDuration(ago)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" text-anchor="middle" fill="#555">%s</text>`, x, chartLabelY, label)
	}
	for _, s := range c.Series {
		c.polylines(&b, s, top)
	}
	if !c.hasData() {
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" text-anchor="middle" fill="#999">no data yet</text>`,
			(plotLeft+plotRight)/2, (plotTop+plotBottom)/2)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built from numbers and escaped text only
}

// Legend is the series names with their latest values, for under the chart.
func (c Chart) Legend() []LegendItem {
	out := make([]LegendItem, len(c.Series))
	for i, s := range c.Series {
		last := "–"
		for j := len(s.Values) - 1; j >= 0; j-- {
			if !math.IsNaN(s.Values[j]) {
				last = formatValue(s.Values[j], c.Unit)
				break
			}
		}
		out[i] = LegendItem{Name: s.Name, Color: template.CSS(s.Color), Last: last}
	}
	return out
}

// LegendItem is one series in a chart's legend.
type LegendItem struct {
	Name  string
	Color template.CSS
	Last  string
}

func (c Chart) hasData() bool {
	for _, s := range c.Series {
		for _, v := range s.Values {
			if !math.IsNaN(v) {
				return true
			}
		}
	}
	return false
}

// yMax is the top of the y axis: the largest value rounded up to 1, 2 or 5 times a power
// of ten (1 with no data, so an idle tablet's chart shows a flat line at 0).
func (c Chart) yMax() float64 {
	m := 0.0
	for _, s := range c.Series {
		for _, v := range s.Values {
			if !math.IsNaN(v) && v > m {
				m = v
			}
		}
	}
	if m <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(m)))
	for _, f := range []float64{1, 2, 5, 10} {
		if m <= f*p {
			return f * p
		}
	}
	return 10 * p
}

func (c Chart) x(t time.Time) float64 {
	if c.Span <= 0 {
		return plotRight
	}
	f := 1 - float64(c.End.Sub(t))/float64(c.Span)
	return plotLeft + math.Max(0, math.Min(1, f))*(plotRight-plotLeft)
}

func (c Chart) y(v, top float64) float64 {
	return plotBottom - math.Max(0, math.Min(1, v/top))*(plotBottom-plotTop)
}

// polylines draws s as one polyline per run of values without a gap; a lone point is a dot.
func (c Chart) polylines(b *strings.Builder, s Series, top float64) {
	var run []string
	flushRun := func() {
		switch len(run) {
		case 0:
		case 1:
			xy := strings.Split(run[0], ",")
			fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="2" fill="%s"/>`, xy[0], xy[1], html.EscapeString(s.Color))
		default:
			fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`,
				html.EscapeString(s.Color), strings.Join(run, " "))
		}
		run = run[:0]
	}
	for i, v := range s.Values {
		if i >= len(c.Times) || math.IsNaN(v) || c.Times[i].Before(c.End.Add(-c.Span)) {
			flushRun()
			continue
		}
		run = append(run, fmt.Sprintf("%.1f,%.1f", c.x(c.Times[i]), c.y(v, top)))
	}
	flushRun()
}

// formatValue writes v for an axis or legend: at most three significant digits, the unit
// after it.
func formatValue(v float64, unit string) string {
	var s string
	switch a := math.Abs(v); {
	case a == 0:
		s = "0"
	case a >= 100:
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	default:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	}
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if unit == "" {
		return s
	}
	return s + " " + unit
}

// shortDuration writes d as "15m", "90s", "2h".
func shortDuration(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	case d >= time.Minute && d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
	return strconv.Itoa(int(d.Round(time.Second)/time.Second)) + "s"
}
