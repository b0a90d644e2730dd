package main

import (
	"image/png"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const tinyCSV = `elapsed_s,phase,offered_per_s,enqueued_per_s,completed_per_s,claim_p50_ms,claim_p95_ms,claim_p99_ms,depth,hot_dead_tuples,hot_table_bytes,hot_index_bytes,all_dead_tuples,all_bytes
1.0,clean,200.0,200.0,199.0,1.000,2.000,3.000,0,10,8192,8192,10,65536
2.0,clean,200.0,200.0,200.0,1.000,2.500,3.000,0,20,8192,8192,20,65536
3.0,idle-in-tx,200.0,200.0,200.0,1.000,0.000,3.000,0,300,16384,8192,300,73728
4.0,idle-in-tx,200.0,200.0,200.0,1.000,40.000,80.000,2,700,16384,8192,700,73728
`

// TestPlot draws two tiny CSVs and checks that the PNG decodes, is the asked
// size, carries both files' colours, and that the legend names them and the
// phase boundary.
func TestPlot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "omniq.csv"), filepath.Join(dir, "river.csv")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, []byte(tinyCSV), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// river's values differ, so both lines show.
	if err := os.WriteFile(b, []byte(strings.ReplaceAll(tinyCSV, ",700,", ",900,")), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.png")
	var stdout strings.Builder
	if err := run([]string{"-o", out, "-width", "400", "-height", "300", a, b}, &stdout); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if got := img.Bounds().Size(); got.X != 400 || got.Y != 300 {
		t.Errorf("size %v, want 400x300", got)
	}
	for i := range 2 {
		found := false
		for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y && !found; y++ {
			for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
				r, g, bb, _ := img.At(x, y).RGBA()
				if uint8(r>>8) == palette[i].R && uint8(g>>8) == palette[i].G && uint8(bb>>8) == palette[i].B {
					found = true
					break
				}
			}
		}
		if !found {
			t.Errorf("no pixel of file %d's colour", i+1)
		}
	}
	// The phase boundary is drawn at the same column in both panels (the top
	// panel's once went to its left edge).
	cols := [2]map[int]bool{{}, {}}
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			if r, g, bb, _ := img.At(x, y).RGBA(); uint8(r>>8) == phase.R && uint8(g>>8) == phase.G && uint8(bb>>8) == phase.B {
				cols[2*y/img.Bounds().Dy()][x] = true
			}
		}
	}
	if len(cols[0]) == 0 || !maps.Equal(cols[0], cols[1]) {
		t.Errorf("phase boundary columns: top %v, bottom %v, want the same", cols[0], cols[1])
	}
	for _, want := range []string{"omniq: blue", "river: orange", "2s clean→idle-in-tx", "log scale"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("legend lacks %q:\n%s", want, stdout.String())
		}
	}
}

func TestPlotErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("elapsed_s,phase\n1,clean\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{},
		{"-o", filepath.Join(dir, "x.png"), bad},
		{"-o", filepath.Join(dir, "x.png"), filepath.Join(dir, "missing.csv")},
	} {
		if err := run(args, &strings.Builder{}); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
