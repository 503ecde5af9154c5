package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
)

// icon is the tray icon: a filled disc with a white path that leaves the
// straight line and comes back to it, a detour. Drawn at start rather than
// shipped as a file, so the binary carries no asset.
var icon = drawIcon(32)

func drawIcon(size int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	bg := color.NRGBA{R: 0x1d, G: 0x70, B: 0xb8, A: 0xff} // GOV.UK blue
	fg := color.NRGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xff}
	c := float64(size-1) / 2
	r := float64(size) / 2
	s := float64(size)
	for y := range size {
		for x := range size {
			fx, fy := float64(x), float64(y)
			if math.Hypot(fx-c, fy-c) > r-0.5 {
				continue
			}
			img.Set(x, y, bg)
			// Horizontal road on the left and right thirds, a raised arc in the middle.
			base := s * 0.62
			w := s * 0.07
			onRoad := (fx < s*0.3 || fx > s*0.7) && math.Abs(fy-base) < w
			arc := math.Abs(math.Hypot(fx-c, fy-base)-s*0.22) < w && fy <= base
			if onRoad || arc {
				img.Set(x, y, fg)
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err) // encoding an in-memory image cannot fail
	}
	return buf.Bytes()
}
