package config

import (
	"errors"
	"fmt"

	"golang.org/x/sys/windows/registry"
)

// ManagedPath on Windows is the policy key that Group Policy and Intune
// write from the ADMX templates in installer/policy (and the MSI from its
// HUB=, ORG=, … properties). Its value names are Managed's JSON field names.
const ManagedPath = `HKLM\SOFTWARE\Policies\Detour`

const policyKey = `SOFTWARE\Policies\Detour`

func parseManagedFile(b []byte) (*Managed, error) { return ParseManaged(b) }

func init() { readPlatformManaged = readPolicyKey }

// readPolicyKey reads HKLM\SOFTWARE\Policies\Detour: no key is no policy.
func readPolicyKey() (*Managed, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, policyKey, registry.QUERY_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("managed policy: open %s: %w", ManagedPath, err)
	}
	defer k.Close()
	names, err := k.ReadValueNames(0)
	if err != nil {
		return nil, fmt.Errorf("managed policy: %s: %w", ManagedPath, err)
	}
	values := map[string]any{}
	for _, name := range names {
		_, typ, err := k.GetValue(name, nil)
		if err != nil {
			return nil, fmt.Errorf("managed policy: %s\\%s: %w", ManagedPath, name, err)
		}
		switch typ {
		case registry.SZ, registry.EXPAND_SZ:
			values[name], _, err = k.GetStringValue(name)
		case registry.DWORD:
			var n uint64
			n, _, err = k.GetIntegerValue(name)
			values[name] = uint32(n)
		default:
			err = fmt.Errorf("type %d is neither REG_SZ nor REG_DWORD", typ)
		}
		if err != nil {
			return nil, fmt.Errorf("managed policy: %s\\%s: %w", ManagedPath, name, err)
		}
	}
	if len(values) == 0 {
		return nil, nil
	}
	m, err := ManagedFromRegistry(values)
	if err != nil {
		return nil, fmt.Errorf("managed policy %s: %w", ManagedPath, err)
	}
	return m, nil
}
