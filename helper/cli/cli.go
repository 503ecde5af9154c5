// Package cli is the `detour` command line: a table of subcommands, each in
// its own file (probe.go, suggest.go, report.go, ...), registered with Add.
// The relay forms (`detour chrome-extension://ID/`, `detour manifest.json ID`)
// are recognised before the table, because browsers choose those arguments.
package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
)

// Command is one subcommand.
type Command struct {
	Name    string
	Usage   string // one line: arguments and flags
	Summary string // one line: what it does
	// Run parses its flags with a flag.FlagSet (ContinueOnError, output to
	// stderr) before doing anything: `detour NAME --help` runs it with
	// just "-h" to print the flags' descriptions.
	Run func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]Command{}

// Add registers a subcommand; call it from an init function in the
// subcommand's file.
func Add(c Command) { commands[c.Name] = c }

// Lookup finds a registered subcommand.
func Lookup(name string) (Command, bool) {
	c, ok := commands[name]
	return c, ok
}

// Usage prints the list of subcommands.
func Usage(w io.Writer) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: detour COMMAND [flags]   (browsers start it as: detour chrome-extension://ID/ | detour MANIFEST ID)")
	for _, n := range names {
		c := commands[n]
		fmt.Fprintf(w, "  %-44s %s\n", "detour "+c.Name+" "+c.Usage, c.Summary)
	}
}

// PrintJSON writes v as indented JSON followed by a newline.
func PrintJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// Fail prints an error the way every subcommand does and returns exit code 1.
func Fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "detour: %v\n", err)
	return 1
}

// Main runs the command line and returns the exit code.
func Main(args []string) int {
	if len(args) > 0 && IsRelayInvocation(args) {
		return runRelay(args)
	}
	return runArgs(args, os.Stdout, os.Stderr)
}

// runArgs is Main for every form but the relay's.
func runArgs(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		Usage(stderr)
		return 2
	}
	switch args[0] {
	case "--version", "-version", "-v":
		args = append([]string{"version"}, args[1:]...)
	}
	c, ok := Lookup(args[0])
	if ok && wantsHelp(args[1:]) {
		return Help(c, stdout)
	}
	if !ok {
		if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
			Usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "detour: unknown command %q\n", args[0])
		Usage(stderr)
		return 2
	}
	return c.Run(args[1:], stdout, stderr)
}

// wantsHelp reports whether a subcommand's arguments ask for help (before
// any "--" that ends the flags).
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// Help prints one subcommand's usage, what it does and its flags to w, and
// returns exit code 0: asking for help is not an error.
func Help(c Command, w io.Writer) int {
	fmt.Fprintf(w, "usage: detour %s %s\n  %s\n\n", c.Name, c.Usage, c.Summary)
	c.Run([]string{"-h"}, w, w)
	return 0
}
