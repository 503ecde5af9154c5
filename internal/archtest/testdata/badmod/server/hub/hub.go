package hub

import _ "example.com/bad/helper/relay" // breaks: the hub never imports the helper
