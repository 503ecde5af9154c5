package proto

import _ "example.com/bad/helper/paths" // breaks: shared imports neither side
