// Command detour-testnet runs the loopback test network (package testnet)
// until SIGINT or SIGTERM. It prints one JSON object on stdout, then nothing
// else: addresses, CA files and the scenarios with their expected verdicts
// (test/testnet/README.md documents the fields).
//
//	detour-testnet [--dir DIR] [--alias HOST=SCENARIO]...
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/detour-project/detour/test/testnet"
)

type aliases map[string]string

func (a aliases) String() string { return fmt.Sprint(map[string]string(a)) }

func (a aliases) Set(v string) error {
	host, scenario, ok := strings.Cut(v, "=")
	if !ok || host == "" || scenario == "" {
		return fmt.Errorf("want HOST=SCENARIO, got %q", v)
	}
	a[host] = scenario
	return nil
}

func main() {
	al := aliases{}
	dir := flag.String("dir", "", "write the CA certificates here (default: a temporary directory, removed on exit)")
	flag.Var(al, "alias", "HOST=SCENARIO: treat HOST (e.g. a catalog host) like the scenario's host; repeatable")
	flag.Parse()
	n, err := testnet.Start(testnet.Options{Dir: *dir, Aliases: al})
	if err != nil {
		fmt.Fprintf(os.Stderr, "detour-testnet: %v\n", err)
		os.Exit(1)
	}
	for host, sc := range al {
		if _, ok := n.Scenario(sc); !ok {
			n.Close()
			fmt.Fprintf(os.Stderr, "detour-testnet: --alias %s: no scenario %q\n", host, sc)
			os.Exit(2)
		}
	}
	// Listen for the signal before announcing the addresses: whoever reads
	// the line may stop the network at once.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(n); err != nil {
		n.Close()
		fmt.Fprintf(os.Stderr, "detour-testnet: %v\n", err)
		os.Exit(1)
	}
	<-sig
	n.Close()
}
