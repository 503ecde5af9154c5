//go:build !windows

package atomicfile

import (
	"errors"
	"os"
	"syscall"
)

// syncDir fsyncs a folder, so that a rename or link in it is durable.
// File systems that cannot sync a folder (EINVAL) are not an error.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
