package main

import (
	"bytes"
	"encoding/binary"
	"image/png"
)

// icoFromPNG wraps a PNG in an .ico container with one image, the form the
// Windows notification area (systray's SetIcon there) loads; Windows Vista
// and later read PNG-compressed icon images.
func icoFromPNG(p []byte) []byte {
	w, h := 0, 0
	if cfg, err := png.DecodeConfig(bytes.NewReader(p)); err == nil {
		w, h = cfg.Width, cfg.Height
	}
	dim := func(n int) byte {
		if n <= 0 || n >= 256 {
			return 0 // 0 means 256
		}
		return byte(n)
	}
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, [3]uint16{0, 1, 1}) // reserved, type icon, one image
	b.Write([]byte{dim(w), dim(h), 0, 0})                     // width, height, no palette, reserved
	binary.Write(&b, binary.LittleEndian, [2]uint16{1, 32})   // planes, bits per pixel
	binary.Write(&b, binary.LittleEndian, [2]uint32{uint32(len(p)), 6 + 16})
	b.Write(p)
	return b.Bytes()
}
