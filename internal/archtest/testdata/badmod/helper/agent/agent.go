package agent

import (
	_ "example.com/bad/installer"    // breaks: the agent does not import the installer
	_ "example.com/bad/server/store" // breaks: the helper never imports the hub
)
