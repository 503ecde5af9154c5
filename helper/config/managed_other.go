//go:build !darwin && !windows

package config

// ManagedPath is where an organisation's IT puts settings the person cannot
// change (placed under a root prefix in tests). Example:
// installer/policy/detour-managed.json.
const ManagedPath = "/etc/detour/managed.json"

func parseManagedFile(b []byte) (*Managed, error) { return ParseManaged(b) }
