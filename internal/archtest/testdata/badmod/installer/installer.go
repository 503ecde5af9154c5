package installer

import (
	_ "example.com/bad/helper/config" // allowed
	_ "example.com/bad/helper/relay"  // breaks: only config and paths
)
