// Command detour-server is the hub: it publishes the signed whitelist,
// issues report tokens, collects anonymous reports and serves the IT
// dashboard. See server/cli for the commands.
package main

import (
	"os"

	"github.com/detour-project/detour/server/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
