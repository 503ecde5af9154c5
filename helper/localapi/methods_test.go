package localapi

import (
	"reflect"
	"strings"
	"testing"

	"github.com/detour-project/detour/shared/protocol"
)

// Every request type in the contract has its typed method on Client (hello
// is said by Connect): a type added to contract.json without one fails
// here, so callers never fall back to building requests by hand.
func TestEveryRequestTypeHasAMethod(t *testing.T) {
	ct := reflect.TypeOf(&Client{})
	for _, typ := range protocol.RequestTypes {
		if typ == "hello" {
			continue
		}
		name := ""
		for _, part := range strings.Split(typ, "-") {
			name += strings.ToUpper(part[:1]) + part[1:]
		}
		if _, ok := ct.MethodByName(name); !ok {
			t.Errorf("request type %q has no method Client.%s in helper/localapi/methods.go", typ, name)
		}
	}
}
