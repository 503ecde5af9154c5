//go:build !linux

package testnet

import (
	"fmt"
)

func dropListener() (string, func(), error) {
	return "", nil, fmt.Errorf("testnet: the dropping listener needs Linux")
}
