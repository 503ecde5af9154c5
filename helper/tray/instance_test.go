//go:build unix

package tray

import (
	"errors"
	"testing"

	"github.com/detour-project/detour/helper/paths/pathstest"
)

func TestSingleInstance(t *testing.T) {
	dirs := pathstest.Short(t)
	release, err := SingleInstance(dirs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SingleInstance(dirs); !errors.Is(err, ErrRunning) {
		t.Fatalf("second tray: err = %v, want ErrRunning", err)
	}
	release()
	again, err := SingleInstance(dirs)
	if err != nil {
		t.Fatalf("after release a tray may start again: %v", err)
	}
	again()
	// Another user's folders are another lock.
	if r, err := SingleInstance(pathstest.Short(t)); err != nil {
		t.Fatalf("a different user's tray: %v", err)
	} else {
		r()
	}
}
