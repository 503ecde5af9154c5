// Command detour is the helper: the native-messaging relay browsers start,
// the per-user agent, and the command line (probe, suggest, report, enrol,
// install, doctor). See helper/cli for the subcommands.
package main

import (
	"os"

	"github.com/detour-project/detour/helper/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
