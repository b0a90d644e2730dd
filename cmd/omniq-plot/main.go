// Command omniq-plot draws the CSVs of `omniq-bench --phases` (and of the
// River program that writes the same columns) as one PNG: claim p95 on top
// (log scale) and the tasks table's dead tuples below (linear), over elapsed
// time, one colour per file, phase boundaries as grey vertical lines.
//
//	omniq-plot -o long.png omniq.csv river.csv
//
// The image carries no text (the standard library has no font): the scales,
// the colours and the phase boundaries are printed on stdout, to go under the
// picture in a note. Each file's label is its base name without extension.
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "omniq-plot:", err)
		os.Exit(1)
	}
}

// series is one CSV file.
type series struct {
	label    string
	elapsed  []float64
	phase    []string
	p95      []float64
	hotDead  []float64
	colorHex string
}

var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, // blue
	{0xff, 0x7f, 0x0e, 0xff}, // orange
	{0x2c, 0xa0, 0x2c, 0xff}, // green
	{0xd6, 0x27, 0x28, 0xff}, // red
	{0x94, 0x67, 0xbd, 0xff}, // purple
	{0x8c, 0x56, 0x4b, 0xff}, // brown
}

var colorNames = []string{"blue", "orange", "green", "red", "purple", "brown"}

var (
	white = color.RGBA{0xff, 0xff, 0xff, 0xff}
	axis  = color.RGBA{0x40, 0x40, 0x40, 0xff}
	grid  = color.RGBA{0xe4, 0xe4, 0xe4, 0xff}
	phase = color.RGBA{0x99, 0x99, 0x99, 0xff}
)

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("omniq-plot", flag.ContinueOnError)
	out := fs.String("o", "omniq-plot.png", "write the PNG to `file`")
	width := fs.Int("width", 1200, "image width in pixels")
	height := fs.Int("height", 800, "image height in pixels")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("usage: omniq-plot [-o out.png] file.csv...")
	}
	if fs.NArg() > len(palette) {
		return fmt.Errorf("at most %d files", len(palette))
	}
	if *width < 200 || *height < 200 {
		return errors.New("-width and -height must be at least 200")
	}
	var all []*series
	for i, path := range fs.Args() {
		s, err := readCSV(path)
		if err != nil {
			return err
		}
		s.colorHex = fmt.Sprintf("#%02x%02x%02x", palette[i].R, palette[i].G, palette[i].B)
		all = append(all, s)
	}
	img, legend := draw2(all, *width, *height)
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", *out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	fmt.Fprintf(stdout, "omniq-plot: wrote %s\n%s", *out, legend)
	return nil
}

// readCSV reads the columns the plot needs, found by name in the header.
func readCSV(path string) (*series, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(recs) < 2 {
		return nil, fmt.Errorf("%s: no rows", path)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, c := range []string{"elapsed_s", "phase", "claim_p95_ms", "hot_dead_tuples"} {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("%s: no column %q", path, c)
		}
	}
	base := filepath.Base(path)
	s := &series{label: strings.TrimSuffix(base, filepath.Ext(base))}
	for n, r := range recs[1:] {
		num := func(c string) (float64, error) {
			v, err := strconv.ParseFloat(r[col[c]], 64)
			if err != nil {
				return 0, fmt.Errorf("%s: row %d: %s: %w", path, n+2, c, err)
			}
			return v, nil
		}
		e, err := num("elapsed_s")
		if err != nil {
			return nil, err
		}
		p, err := num("claim_p95_ms")
		if err != nil {
			return nil, err
		}
		d, err := num("hot_dead_tuples")
		if err != nil {
			return nil, err
		}
		s.elapsed = append(s.elapsed, e)
		s.phase = append(s.phase, r[col["phase"]])
		s.p95 = append(s.p95, p)
		s.hotDead = append(s.hotDead, d)
	}
	return s, nil
}

// panel maps data to a rectangle of the image.
type panel struct {
	r          image.Rectangle
	x0, x1     float64
	y0, y1     float64 // in plotted units (log10 ms on top)
	transformY func(float64) (float64, bool)
}

func (p panel) point(x, y float64) (image.Point, bool) {
	ty, ok := p.transformY(y)
	if !ok {
		return image.Point{}, false
	}
	py := p.r.Max.Y - 1 - int(math.Round((ty-p.y0)/(p.y1-p.y0)*float64(p.r.Dy()-1)))
	return image.Pt(p.px(x), py), true
}

// px is the column of elapsed time x.
func (p panel) px(x float64) int {
	return p.r.Min.X + int(math.Round((x-p.x0)/(p.x1-p.x0)*float64(p.r.Dx()-1)))
}

// draw2 draws both panels and returns the image and the legend text.
func draw2(all []*series, w, h int) (*image.RGBA, string) {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), &image.Uniform{white}, image.Point{}, draw.Src)

	xmax, pmin, pmax, dmax := 0.0, math.Inf(1), 0.0, 0.0
	for _, s := range all {
		for i := range s.elapsed {
			xmax = max(xmax, s.elapsed[i])
			if s.p95[i] > 0 {
				pmin, pmax = min(pmin, s.p95[i]), max(pmax, s.p95[i])
			}
			dmax = max(dmax, s.hotDead[i])
		}
	}
	if xmax <= 0 {
		xmax = 1
	}
	if pmax == 0 {
		pmin, pmax = 1, 10
	}
	lo, hi := math.Floor(math.Log10(pmin)), math.Ceil(math.Log10(pmax))
	if hi <= lo {
		hi = lo + 1
	}
	dtop := niceCeil(dmax)

	const margin, gap = 30, 30
	ph := (h - 2*margin - gap) / 2
	top := panel{r: image.Rect(margin, margin, w-margin, margin+ph), x1: xmax, y0: lo, y1: hi,
		transformY: func(v float64) (float64, bool) { return math.Log10(v), v > 0 }}
	bot := panel{r: image.Rect(margin, margin+ph+gap, w-margin, margin+2*ph+gap), x1: xmax, y1: dtop,
		transformY: func(v float64) (float64, bool) { return v, true }}

	// Grid: decades on top, quarters below.
	for d := lo; d <= hi; d++ {
		p, _ := top.point(0, math.Pow(10, d))
		hline(img, top.r.Min.X, top.r.Max.X, p.Y, grid)
	}
	for q := 0; q <= 4; q++ {
		p, _ := bot.point(0, dtop*float64(q)/4)
		hline(img, bot.r.Min.X, bot.r.Max.X, p.Y, grid)
	}
	// Phase boundaries: where a file's phase changes.
	var bounds []string
	seen := map[string]bool{}
	for _, s := range all {
		for i := 1; i < len(s.phase); i++ {
			if s.phase[i] == s.phase[i-1] {
				continue
			}
			x := s.elapsed[i-1]
			key := fmt.Sprintf("%.0fs %s→%s", x, s.phase[i-1], s.phase[i])
			if seen[key] {
				continue
			}
			seen[key] = true
			bounds = append(bounds, key)
			// The line's column, whatever the panel's y scale (point would
			// take p.y0, already in plotted units, through the log again).
			for _, p := range []panel{top, bot} {
				for y := p.r.Min.Y; y < p.r.Max.Y; y += 6 {
					for k := range 3 {
						img.Set(p.px(x), y+k, phase)
					}
				}
			}
		}
	}
	for _, p := range []panel{top, bot} {
		frame(img, p.r, axis)
	}
	// The series.
	for i, s := range all {
		c := palette[i]
		plotLine(img, top, s.elapsed, s.p95, c)
		plotLine(img, bot, s.elapsed, s.hotDead, c)
		// Legend swatch, top right, in file order.
		sw := image.Rect(top.r.Max.X-20*(len(all)-i), top.r.Min.Y+6, top.r.Max.X-20*(len(all)-i)+14, top.r.Min.Y+20)
		draw.Draw(img, sw, &image.Uniform{c}, image.Point{}, draw.Src)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "top panel: claim p95 (ms), log scale from %g to %g ms, grey grid line at every power of ten\n", math.Pow(10, lo), math.Pow(10, hi))
	fmt.Fprintf(&b, "bottom panel: hot_dead_tuples (tasks), linear from 0 to %g, grid line every %g\n", dtop, dtop/4)
	fmt.Fprintf(&b, "x: elapsed 0 to %gs; dashed grey lines: phase boundaries at %s\n", xmax, strings.Join(bounds, ", "))
	for i, s := range all {
		fmt.Fprintf(&b, "%s: %s (%s), swatch %d from the left at the top right\n", s.label, colorNames[i], s.colorHex, i+1)
	}
	return img, b.String()
}

// plotLine joins consecutive points, breaking where a value cannot be drawn
// (a p95 of 0: no task started in that interval).
func plotLine(img *image.RGBA, p panel, xs, ys []float64, c color.RGBA) {
	var prev image.Point
	have := false
	for i := range xs {
		pt, ok := p.point(xs[i], ys[i])
		if !ok {
			have = false
			continue
		}
		if have {
			line(img, prev, pt, c)
		} else {
			line(img, pt, pt, c)
		}
		prev, have = pt, true
	}
}

// line draws a 2-pixel-wide segment (Bresenham).
func line(img *image.RGBA, a, b image.Point, c color.RGBA) {
	dx, dy := abs(b.X-a.X), -abs(b.Y-a.Y)
	sx, sy := sign(b.X-a.X), sign(b.Y-a.Y)
	e := dx + dy
	for {
		for _, d := range []image.Point{{0, 0}, {1, 0}, {0, 1}, {1, 1}} {
			img.SetRGBA(a.X+d.X, a.Y+d.Y, c)
		}
		if a == b {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			a.X += sx
		}
		if e2 <= dx {
			e += dx
			a.Y += sy
		}
	}
}

func hline(img *image.RGBA, x0, x1, y int, c color.RGBA) {
	for x := x0; x < x1; x++ {
		img.SetRGBA(x, y, c)
	}
}

func frame(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	hline(img, r.Min.X, r.Max.X, r.Min.Y, c)
	hline(img, r.Min.X, r.Max.X, r.Max.Y-1, c)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		img.SetRGBA(r.Min.X, y, c)
		img.SetRGBA(r.Max.X-1, y, c)
	}
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten (at least 1).
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}
