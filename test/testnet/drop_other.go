//go:build !linux

package testnet

import (
	"fmt"
)

func dropListener() (string, func(), error) {
	return "", nil, fmt.Errorf("testnet: the dropping listener needs Linux")
}

func refusingPort() (string, func(), error) {
	p, err := closedPort()
	return p, func() {}, err
}
