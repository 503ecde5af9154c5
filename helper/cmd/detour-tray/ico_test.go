package main

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestIcoFromPNG(t *testing.T) {
	ico := icoFromPNG(icon)
	var hdr [3]uint16
	binary.Read(bytes.NewReader(ico[:6]), binary.LittleEndian, &hdr)
	if hdr != [3]uint16{0, 1, 1} {
		t.Fatalf("header %v, want reserved 0, type 1, count 1", hdr)
	}
	if ico[6] != 32 || ico[7] != 32 {
		t.Fatalf("size %dx%d, want 32x32", ico[6], ico[7])
	}
	size := binary.LittleEndian.Uint32(ico[14:18])
	off := binary.LittleEndian.Uint32(ico[18:22])
	if int(size) != len(icon) || off != 22 || !bytes.Equal(ico[off:], icon) {
		t.Fatalf("image entry size %d offset %d does not frame the PNG of %d bytes", size, off, len(icon))
	}
}
