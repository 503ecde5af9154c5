//go:build unix

package paths

import (
	"fmt"
	"os"
	"syscall"
)

func checkOwner(p string, fi os.FileInfo) error {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("paths: %s belongs to uid %d, not to this user", p, st.Uid)
	}
	return nil
}
