package cli

import _ "example.com/bad/installer" // allowed: the command line installs
