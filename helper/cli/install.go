package cli

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/installer"
)

func init() {
	Add(Command{
		Name:    "install",
		Usage:   "[--system] [--browser LIST] [--dir DIR] [--autostart] [--root DIR [--bin-path PATH] [--target-os OS]] [--json]",
		Summary: "register detour with your browsers (native messaging)",
		Run:     runInstall,
	})
}

// installFlags are shared by install and uninstall.
type installFlags struct {
	system bool
	root   string
	json   bool
}

func (f *installFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.system, "system", false, "for every user of this machine (needs root)")
	fs.StringVar(&f.root, "root", "", "stage machine-wide files under this folder (packaging)")
	fs.BoolVar(&f.json, "json", false, "print the result as JSON")
}

// options turns flags into installer options; the per-user record lives in
// the helper's config folder, so DETOUR_HOME isolates it like everything else.
func (f *installFlags) options() (installer.Options, error) {
	o := installer.Options{System: f.system, Root: f.root}
	if !f.system {
		dirs, err := paths.Default()
		if err != nil {
			return o, err
		}
		o.RecordPath = filepath.Join(dirs.Config, "installed.json")
	}
	return o, nil
}

func runInstall(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("install", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f installFlags
	f.register(fs)
	browsers := fs.String("browser", "", "comma-separated: "+strings.Join(installer.Browsers, ","))
	dir := fs.String("dir", "", "write the manifest into this folder instead (e.g. a test profile's NativeMessagingHosts)")
	binPath := fs.String("bin-path", "", "the path the manifests name: where detour will be installed (packaging, e.g. /usr/bin/detour)")
	autostart := fs.Bool("autostart", false, "also start the agent and tray at sign-in (an XDG autostart entry; a LaunchAgent on macOS)")
	targetOS := fs.String("target-os", "", "with --root: stage another OS's machine-wide folders (packaging: linux, darwin)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o, err := f.options()
	if err != nil {
		return Fail(stderr, err)
	}
	o.Dir = *dir
	o.BinPath = *binPath
	o.Autostart = *autostart
	if *targetOS != "" {
		if f.root == "" || !f.system {
			return Fail(stderr, fmt.Errorf("install: --target-os stages files for another machine: it needs --system --root DIR"))
		}
		o.GOOS = *targetOS
	}
	if *browsers != "" {
		for _, b := range strings.Split(*browsers, ",") {
			o.Browsers = append(o.Browsers, strings.TrimSpace(b))
		}
	}
	res, err := installer.Install(o)
	if err != nil {
		return Fail(stderr, err)
	}
	if f.json {
		if err := PrintJSON(stdout, res); err != nil {
			return Fail(stderr, err)
		}
		return 0
	}
	for _, e := range res.Written {
		fmt.Fprintf(stdout, "registered with %-8s %s\n", e.Browser, where(e))
	}
	if res.Autostart != "" {
		fmt.Fprintf(stdout, "starts at sign-in      %s\n", res.Autostart)
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(stdout, "skipped    %-8s %s\n", s.Browser, s.Reason)
	}
	if len(res.Written) == 0 {
		fmt.Fprintln(stdout, "no browser found to register with; install one, or use --system or --dir")
	}
	return 0
}

// where is an entry as people look for it: the manifest, and on Windows the
// registry key that names it.
func where(e installer.Entry) string {
	if e.Key != "" {
		return e.Key + " → " + e.Path
	}
	return e.Path
}
