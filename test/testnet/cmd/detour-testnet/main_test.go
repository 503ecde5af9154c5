package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the command: with DETOUR_TESTNET_RUN_MAIN set
// it runs main, so the test checks the real command line without a build.
func TestMain(m *testing.M) {
	if os.Getenv("DETOUR_TESTNET_RUN_MAIN") == "1" {
		os.Args = append([]string{"detour-testnet"}, flagArgs()...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func flagArgs() []string {
	var out []string
	_ = json.Unmarshal([]byte(os.Getenv("DETOUR_TESTNET_ARGS")), &out)
	return out
}

// TestCommand: one JSON line with the documented fields, nothing else on
// stdout, a clean exit on SIGTERM, and the CA files removed.
func TestCommand(t *testing.T) {
	args, _ := json.Marshal([]string{"--alias", "docs.google.com=blockpage-zscaler"})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DETOUR_TESTNET_RUN_MAIN=1", "DETOUR_TESTNET_ARGS="+string(args))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err != nil {
		t.Fatalf("no JSON line: %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, line)
	}
	for _, k := range []string{"domain", "dns", "public_dns", "https", "http", "inspect_https", "proxy", "online_url", "captive_url",
		"public_ca_file", "inspection_ca_file", "inspection_ca_name", "scenarios"} {
		if _, ok := got[k]; !ok {
			t.Errorf("missing field %q", k)
		}
	}
	scs, _ := got["scenarios"].([]any)
	if len(scs) < 40 {
		t.Errorf("%d scenarios", len(scs))
	}
	for _, s := range scs {
		m, _ := s.(map[string]any)
		exp, _ := m["expect"].(map[string]any)
		if m["name"] == nil || m["url"] == nil || m["dns"] == nil || exp == nil || exp["method"] == nil {
			t.Errorf("scenario lacks fields: %v", m)
		}
	}
	caFile, _ := got["public_ca_file"].(string)
	if _, err := os.Stat(caFile); err != nil {
		t.Errorf("CA file: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not exit after SIGTERM")
	}
	if _, err := os.Stat(caFile); !os.IsNotExist(err) {
		t.Errorf("temporary CA file left behind: %v", err)
	}
}

func TestBadAlias(t *testing.T) {
	args, _ := json.Marshal([]string{"--alias", "docs.google.com=no-such-scenario"})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DETOUR_TESTNET_RUN_MAIN=1", "DETOUR_TESTNET_ARGS="+string(args))
	out, err := cmd.Output()
	if err == nil || len(out) != 0 {
		t.Errorf("a bad alias was accepted (stdout %q, err %v)", out, err)
	}
}
