package installer

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/windows/registry"
)

func systemRegistry() Registry { return winRegistry{} }

// winRegistry is the real registry (the 64-bit view for a 64-bit detour).
type winRegistry struct{}

func root(machine bool) registry.Key {
	if machine {
		return registry.LOCAL_MACHINE
	}
	return registry.CURRENT_USER
}

func (winRegistry) Get(machine bool, key string) (string, bool, error) {
	k, err := registry.OpenKey(root(machine), key, registry.QUERY_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	defer k.Close()
	v, _, err := k.GetStringValue("")
	if errors.Is(err, registry.ErrNotExist) {
		return "", true, nil
	}
	if err != nil {
		return "", true, err
	}
	return v, true, nil
}

func (winRegistry) Set(machine bool, key, value string) ([]string, error) {
	var created []string
	parts := strings.Split(key, `\`)
	for i := 1; i <= len(parts); i++ {
		sub := strings.Join(parts[:i], `\`)
		k, existed, err := registry.CreateKey(root(machine), sub, registry.SET_VALUE)
		if err != nil {
			return created, fmt.Errorf("create %s: %w", sub, err)
		}
		if !existed {
			created = append(created, sub)
		}
		if i == len(parts) {
			err = k.SetStringValue("", value)
		}
		k.Close()
		if err != nil {
			return created, err
		}
	}
	return created, nil
}

func (winRegistry) Delete(machine bool, key string) error {
	return registry.DeleteKey(root(machine), key)
}

func (winRegistry) Empty(machine bool, key string) (bool, error) {
	k, err := registry.OpenKey(root(machine), key, registry.QUERY_VALUE|registry.ENUMERATE_SUB_KEYS)
	if err != nil {
		return false, err
	}
	defer k.Close()
	st, err := k.Stat()
	if err != nil {
		return false, err
	}
	return st.SubKeyCount == 0 && st.ValueCount == 0, nil
}
