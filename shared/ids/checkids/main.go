// Command checkids refuses a malformed DETOUR_EXTENSION_IDS before the build
// bakes it into the binaries (the Makefile runs it), because at run time a
// bad entry can only be left out, silently.
//
//	go run ./shared/ids/checkids "chrome-web-store=ID,edge-add-ons=ID"
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/detour-project/detour/shared/ids"
)

func main() {
	v := strings.Join(os.Args[1:], ",")
	if strings.ContainsAny(v, " \t'\"") {
		fmt.Fprintln(os.Stderr, "DETOUR_EXTENSION_IDS: no spaces or quotes, entries separated by commas only")
		os.Exit(1)
	}
	es, err := ids.Parse(v)
	if err != nil {
		fmt.Fprintln(os.Stderr, "DETOUR_EXTENSION_IDS:", err)
		os.Exit(1)
	}
	for _, e := range es {
		fmt.Printf("extension IDs: admitting %s (%s)\n", e.ID, e.Channel)
	}
}
