package dashboard

import (
	"fmt"

	"github.com/detour-project/detour/server/aggregates"
)

// chart is an accessible SVG bar chart (role="img" with <title> and
// <desc>); the same figures are always in a table beside it. Suppressed
// days are drawn as a short dashed mark, never as a bar.
type chart struct {
	ID            string
	Title, Desc   string
	Width, Height int
	Bars          []bar
	Ticks         []tick
	BaseY         float64
}

type bar struct {
	X, Y, W, H float64
	Label      string
	Suppressed bool
}

type tick struct {
	X, Y  float64
	Label string
}

func (p *page) trendChart(id, titleKey string, days []aggregates.Day) *chart {
	const w, h, left, bottom, top = 640, 200, 40, 24, 10
	c := &chart{ID: id, Width: w, Height: h, BaseY: h - bottom, Title: p.t(titleKey)}
	var max int64
	var shown, hidden int
	for _, d := range days {
		if d.Count.Int() > max {
			max = d.Count.Int()
		}
		if d.Count.Suppressed {
			hidden++
		} else {
			shown++
		}
	}
	from, to := "", ""
	if len(days) > 0 {
		from, to = days[0].Day, days[len(days)-1].Day
	}
	c.Desc = p.t("chart.trend_desc", len(days), from, to, max, hidden, p.t("count.fewer", p.K))
	if len(days) == 0 {
		return c
	}
	slot := float64(w-left) / float64(len(days))
	plot := float64(h - bottom - top)
	for i, d := range days {
		b := bar{X: float64(left) + float64(i)*slot + 1, W: slot - 2, Label: d.Day + ": " + countText(p.Lang, d.Count)}
		if d.Count.Suppressed {
			b.Suppressed, b.Y, b.H = true, c.BaseY-3, 3
		} else if max > 0 {
			b.H = plot * float64(d.Count.Int()) / float64(max)
			b.Y = c.BaseY - b.H
		} else {
			b.Y = c.BaseY
		}
		c.Bars = append(c.Bars, b)
	}
	c.Ticks = []tick{
		{X: left, Y: h - 6, Label: from},
		{X: w - 84, Y: h - 6, Label: to},
		{X: 2, Y: top + 4, Label: fmt.Sprint(max)},
		{X: 2, Y: c.BaseY, Label: "0"},
	}
	return c
}
