package hub

import _ "example.com/bad/helper/paths" // allowed: a test may
