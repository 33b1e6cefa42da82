package sim

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Point is one (x, y) value of a chart series.
type Point struct {
	X, Y float64
}

// Series is one named line (or set of bars) of a chart.
type Series struct {
	Name   string
	Points []Point
	// Bars draws the points as vertical bars centred on X instead of a line.
	Bars bool
}

// Chart is one plot: axes with ticks and labels, its series, and a legend.
type Chart struct {
	Title  string
	XLabel string
	YLabel string
	Series []Series
	// YMax fixes the top of the y axis (for shares, 1); zero fits the data.
	YMax float64
}

// Chart geometry, in SVG user units (pixels).
const (
	chartWidth   = 720
	chartHeight  = 360
	marginLeft   = 70
	marginRight  = 20
	marginTop    = 40
	marginBottom = 50
)

// seriesColors are used in turn for the series of a chart.
var seriesColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"}

// WriteSVG writes the charts, stacked vertically, as one self-contained SVG
// document: plain SVG 1.1 elements, no script and no external resources, so
// any browser or image viewer shows it.
func WriteSVG(w io.Writer, charts ...Chart) error {
	out := bufio.NewWriter(w)
	height := chartHeight * max(len(charts), 1)
	fmt.Fprintf(out, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartWidth, height, chartWidth, height)
	fmt.Fprintf(out, `<rect width="%d" height="%d" fill="white"/>`+"\n", chartWidth, height)
	for i, c := range charts {
		writeChart(out, c, float64(i*chartHeight))
	}
	fmt.Fprintln(out, "</svg>")
	return out.Flush()
}

// writeChart draws one chart with its top edge at y offset top.
func writeChart(out *bufio.Writer, c Chart, top float64) {
	xMin, xMax, yMax := 0.0, 0.0, c.YMax
	for _, s := range c.Series {
		for _, p := range s.Points {
			xMin = math.Min(xMin, p.X)
			xMax = math.Max(xMax, p.X)
			if c.YMax == 0 {
				yMax = math.Max(yMax, p.Y)
			}
		}
		if s.Bars {
			xMin = math.Min(xMin, -0.5)
			xMax += 0.5
		}
	}
	if xMax <= xMin {
		xMax = xMin + 1
	}
	if yMax <= 0 {
		yMax = 1
	}
	xStep := niceStep(xMax - xMin)
	yStep := niceStep(yMax)
	xMax = math.Ceil(xMax/xStep) * xStep
	if c.YMax == 0 {
		yMax = math.Ceil(yMax/yStep) * yStep
	}
	left, right := float64(marginLeft), float64(chartWidth-marginRight)
	upper, lower := top+marginTop, top+chartHeight-marginBottom
	px := func(x float64) float64 { return left + (x-xMin)/(xMax-xMin)*(right-left) }
	py := func(y float64) float64 { return lower - y/yMax*(lower-upper) }

	fmt.Fprintf(out, `<text x="%g" y="%g" text-anchor="middle" font-size="15" font-weight="bold">%s</text>`+"\n",
		(left+right)/2, top+24, html.EscapeString(c.Title))
	// Grid lines and ticks.
	for y := 0.0; y <= yMax+yStep/1e6; y += yStep {
		fmt.Fprintf(out, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`+"\n", left, py(y), right, py(y))
		fmt.Fprintf(out, `<text x="%g" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, py(y)+4, formatTick(y, yStep))
	}
	firstX := math.Ceil(xMin/xStep) * xStep
	for x := firstX; x <= xMax+xStep/1e6; x += xStep {
		fmt.Fprintf(out, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#000"/>`+"\n", px(x), lower, px(x), lower+5)
		fmt.Fprintf(out, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", px(x), lower+18, formatTick(x, xStep))
	}
	// Axes and labels.
	fmt.Fprintf(out, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#000"/>`+"\n", left, lower, right, lower)
	fmt.Fprintf(out, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#000"/>`+"\n", left, upper, left, lower)
	fmt.Fprintf(out, `<text x="%g" y="%g" text-anchor="middle">%s</text>`+"\n", (left+right)/2, lower+40, html.EscapeString(c.XLabel))
	fmt.Fprintf(out, `<text x="%g" y="%g" text-anchor="middle" transform="rotate(-90 %g %g)">%s</text>`+"\n",
		left-50, (upper+lower)/2, left-50, (upper+lower)/2, html.EscapeString(c.YLabel))
	// Series.
	barSeries := 0
	for _, s := range c.Series {
		if s.Bars {
			barSeries++
		}
	}
	barIndex := 0
	for i, s := range c.Series {
		color := seriesColors[i%len(seriesColors)]
		if s.Bars {
			slot := (px(xMin+1) - px(xMin)) * 0.8
			width := slot / float64(barSeries)
			for _, p := range s.Points {
				x := px(p.X) - slot/2 + float64(barIndex)*width
				fmt.Fprintf(out, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="0.75"/>`+"\n",
					x, py(p.Y), width, lower-py(p.Y), color)
			}
			barIndex++
			continue
		}
		if len(s.Points) == 0 {
			continue
		}
		var path strings.Builder
		for k, p := range s.Points {
			if k == 0 {
				fmt.Fprintf(&path, "M%.1f %.1f", px(p.X), py(p.Y))
			} else {
				fmt.Fprintf(&path, " L%.1f %.1f", px(p.X), py(p.Y))
			}
		}
		fmt.Fprintf(out, `<path d="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", path.String(), color)
	}
	// Legend, top right inside the plot area.
	for i, s := range c.Series {
		y := upper + 8 + float64(i)*18
		color := seriesColors[i%len(seriesColors)]
		fmt.Fprintf(out, `<rect x="%g" y="%g" width="14" height="10" fill="%s"/>`+"\n", right-190, y, color)
		fmt.Fprintf(out, `<text x="%g" y="%g">%s</text>`+"\n", right-170, y+9, html.EscapeString(s.Name))
	}
}

// niceStep returns a tick step of 1, 2 or 5 times a power of ten that cuts
// span into about five to ten intervals.
func niceStep(span float64) float64 {
	if span <= 0 || math.IsInf(span, 0) || math.IsNaN(span) {
		return 1
	}
	raw := span / 6
	power := math.Pow(10, math.Floor(math.Log10(raw)))
	switch fraction := raw / power; {
	case fraction < 1.5:
		return power
	case fraction < 3.5:
		return 2 * power
	case fraction < 7.5:
		return 5 * power
	default:
		return 10 * power
	}
}

// formatTick prints a tick value with as many decimals as the step needs.
func formatTick(v, step float64) string {
	if v == 0 {
		v = 0 // print -0 as 0
	}
	decimals := 0
	if step < 1 {
		decimals = int(math.Ceil(-math.Log10(step)))
	}
	return fmt.Sprintf("%.*f", decimals, v)
}
