package main

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
)

// Heat map geometry, in pixels.
const (
	hmCellW  = 54
	hmCellH  = 34
	hmLeft   = 190 // room for the axis title and the length labels
	hmTop    = 92  // title, subtitle and depth labels
	hmGap    = 14  // between the depth columns and the "all" column
	hmLegend = 90  // colour scale on the right
	hmBottom = 62  // axis title under the grid
)

// accuracyColour maps an accuracy in [0, 1] onto a red (0) → yellow (0.5) →
// green (1) scale.
func accuracyColour(a float64) (r, g, b uint8) {
	a = math.Max(0, math.Min(1, a))
	red, yellow, green := [3]float64{215, 48, 39}, [3]float64{254, 224, 139}, [3]float64{26, 152, 80}
	from, to, f := red, yellow, 2*a
	if a > 0.5 {
		from, to, f = yellow, green, 2*a-1
	}
	mix := func(i int) uint8 { return uint8(math.Round(from[i] + f*(to[i]-from[i]))) }
	return mix(0), mix(1), mix(2)
}

// textOn picks black or white text for legibility on a fill colour.
func textOn(r, g, b uint8) string {
	if 0.299*float64(r)+0.587*float64(g)+0.114*float64(b) < 140 {
		return "#fff"
	}
	return "#000"
}

// writeNeedleSVG draws the report as a heat map: one row per context length,
// one column per needle depth and a last column with the length's accuracy
// over all depths, each cell coloured by accuracy and labelled with it in
// percent, and a colour scale.
func writeNeedleSVG(w io.Writer, r *needleReport) error {
	cols := len(r.Depths)
	gridW := cols*hmCellW + hmGap + hmCellW
	width := max(hmLeft+gridW+hmLegend, 660) // the subtitle's width
	height := hmTop + max(len(r.Lengths), 3)*hmCellH + hmBottom
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	p(`<rect width="%d" height="%d" fill="#fff"/>`+"\n", width, height)
	p(`<text x="%d" y="26" font-size="16" font-weight="bold">Passkey retrieval: %s</text>`+"\n", 16, html.EscapeString(r.Model))
	p(`<text x="%d" y="46" fill="#444">accuracy %% (%d of %d prompts right, %.1f%%); %d prompts per cell, seed %d, greedy, %d new tokens</text>`+"\n",
		16, r.Hits, r.N, 100*r.Accuracy, r.PerCell, r.Seed, r.MaxNewTokens)
	// Column labels.
	colX := func(i int) int {
		x := hmLeft + i*hmCellW
		if i == cols {
			x += hmGap
		}
		return x
	}
	for i, d := range r.Depths {
		p(`<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", colX(i)+hmCellW/2, hmTop-8, depthLabel(d))
	}
	p(`<text x="%d" y="%d" text-anchor="middle" font-weight="bold">all</text>`+"\n", colX(cols)+hmCellW/2, hmTop-8)
	// Rows.
	cell := func(x, y int, acc float64, label, tip string) {
		cr, cg, cb := accuracyColour(acc)
		p(`<rect x="%d" y="%d" width="%d" height="%d" fill="#%02x%02x%02x" stroke="#fff"><title>%s</title></rect>`+"\n",
			x, y, hmCellW, hmCellH, cr, cg, cb, html.EscapeString(tip))
		p(`<text x="%d" y="%d" text-anchor="middle" fill="%s">%s</text>`+"\n", x+hmCellW/2, y+hmCellH/2+4, textOn(cr, cg, cb), label)
	}
	for j, row := range r.Lengths {
		y := hmTop + j*hmCellH
		p(`<text x="%d" y="%d" text-anchor="end">%d <tspan fill="#666">(%s tok)</tspan></text>`+"\n",
			hmLeft-8, y+hmCellH/2+4, row.Length, span(row.TokensMin, row.TokensMax))
		for i, c := range row.Cells {
			cell(colX(i), y, c.Accuracy, fmt.Sprintf("%.0f", 100*c.Accuracy),
				fmt.Sprintf("length %d, depth %s: %d of %d right", row.Length, depthLabel(c.Depth), c.Hits, c.N))
		}
		cell(colX(cols), y, row.Accuracy, fmt.Sprintf("%.0f", 100*row.Accuracy),
			fmt.Sprintf("length %d, all depths: %d of %d right", row.Length, row.Hits, row.N))
	}
	// Axis titles.
	gridBottom := hmTop + len(r.Lengths)*hmCellH
	p(`<text x="%d" y="%d" text-anchor="middle">needle depth (0 = right after the instruction, 1 = right before the question)</text>`+"\n",
		hmLeft+cols*hmCellW/2, gridBottom+28)
	p(`<text transform="translate(24 %d) rotate(-90)" text-anchor="middle">context length (prompt tokens)</text>`+"\n", hmTop+len(r.Lengths)*hmCellH/2)
	// Colour scale: a vertical gradient, 100% at the top.
	lx, ly, lh := hmLeft+gridW+24, hmTop, max(len(r.Lengths)*hmCellH, 3*hmCellH)
	p(`<defs><linearGradient id="acc" x1="0" y1="1" x2="0" y2="0">`)
	for _, a := range []float64{0, 0.5, 1} {
		cr, cg, cb := accuracyColour(a)
		p(`<stop offset="%g" stop-color="#%02x%02x%02x"/>`, a, cr, cg, cb)
	}
	p("</linearGradient></defs>\n")
	p(`<rect x="%d" y="%d" width="14" height="%d" fill="url(#acc)" stroke="#888"/>`+"\n", lx, ly, lh)
	for _, a := range []float64{0, 0.5, 1} {
		y := ly + int(math.Round((1-a)*float64(lh)))
		p(`<text x="%d" y="%d">%.0f%%</text>`+"\n", lx+20, y+4, 100*a)
	}
	p("</svg>\n")
	return bw.Flush()
}
