// Package sni is the tray's test harness: a small fake
// org.kde.StatusNotifierWatcher that records the items that register with
// it, and a client for the registered item's menu over com.canonical.dbusmenu
// (read the layout, send a click). With a private D-Bus session and Xvfb it
// lets a test drive the real detour-tray as a desktop panel would.
package sni

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
	"github.com/godbus/dbus/v5/prop"
)

const (
	watcherName  = "org.kde.StatusNotifierWatcher"
	watcherPath  = dbus.ObjectPath("/StatusNotifierWatcher")
	itemIface    = "org.kde.StatusNotifierItem"
	dbusmenu     = "com.canonical.dbusmenu"
	itemFallback = dbus.ObjectPath("/StatusNotifierItem")
)

// Item is a registered status notifier item: the bus name that owns it and
// its object path.
type Item struct {
	Dest string
	Path dbus.ObjectPath
}

// Watcher is the fake watcher. It claims the well-known name on conn and says
// a host is registered, so that AppIndicator registers instead of falling
// back to an old-style tray icon.
type Watcher struct {
	conn  *dbus.Conn
	props *prop.Properties

	mu    sync.Mutex
	items []Item
	added chan struct{}
}

// StartWatcher exports the watcher on conn and takes its bus name.
func StartWatcher(conn *dbus.Conn) (*Watcher, error) {
	w := &Watcher{conn: conn, added: make(chan struct{}, 16)}
	if err := conn.Export(w, watcherPath, watcherName); err != nil {
		return nil, fmt.Errorf("sni: export watcher: %w", err)
	}
	props, err := prop.Export(conn, watcherPath, prop.Map{watcherName: {
		"RegisteredStatusNotifierItems":  {Value: []string{}, Emit: prop.EmitTrue},
		"IsStatusNotifierHostRegistered": {Value: true, Emit: prop.EmitTrue},
		"ProtocolVersion":                {Value: int32(0), Emit: prop.EmitTrue},
	}})
	if err != nil {
		return nil, fmt.Errorf("sni: export watcher properties: %w", err)
	}
	w.props = props
	node := &introspect.Node{
		Name: string(watcherPath),
		Interfaces: []introspect.Interface{
			introspect.IntrospectData,
			prop.IntrospectData,
			{
				Name: watcherName,
				Methods: []introspect.Method{
					{Name: "RegisterStatusNotifierItem", Args: []introspect.Arg{{Name: "service", Type: "s", Direction: "in"}}},
					{Name: "RegisterStatusNotifierHost", Args: []introspect.Arg{{Name: "service", Type: "s", Direction: "in"}}},
				},
				Signals: []introspect.Signal{
					{Name: "StatusNotifierItemRegistered", Args: []introspect.Arg{{Name: "service", Type: "s"}}},
					{Name: "StatusNotifierHostRegistered"},
				},
				Properties: props.Introspection(watcherName),
			},
		},
	}
	if err := conn.Export(introspect.NewIntrospectable(node), watcherPath, "org.freedesktop.DBus.Introspectable"); err != nil {
		return nil, fmt.Errorf("sni: export introspection: %w", err)
	}
	reply, err := conn.RequestName(watcherName, dbus.NameFlagDoNotQueue)
	if err != nil {
		return nil, fmt.Errorf("sni: request %s: %w", watcherName, err)
	}
	if reply != dbus.RequestNameReplyPrimaryOwner {
		return nil, fmt.Errorf("sni: %s is already owned on this bus", watcherName)
	}
	return w, nil
}

// RegisterStatusNotifierItem is called by an item. AppIndicator passes its
// object path; KDE-style items pass their bus name.
func (w *Watcher) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	it := Item{Dest: string(sender), Path: itemFallback}
	if strings.HasPrefix(service, "/") {
		it.Path = dbus.ObjectPath(service)
	} else if service != "" {
		it.Dest = service
	}
	w.mu.Lock()
	w.items = append(w.items, it)
	names := make([]string, len(w.items))
	for i, x := range w.items {
		names[i] = x.Dest + string(x.Path)
	}
	w.mu.Unlock()
	w.props.SetMust(watcherName, "RegisteredStatusNotifierItems", names)
	w.conn.Emit(watcherPath, watcherName+".StatusNotifierItemRegistered", service)
	select {
	case w.added <- struct{}{}:
	default:
	}
	return nil
}

// RegisterStatusNotifierHost accepts a host; there is nothing to do.
func (w *Watcher) RegisterStatusNotifierHost(service string) *dbus.Error { return nil }

// Items returns the items registered so far.
func (w *Watcher) Items() []Item {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Item(nil), w.items...)
}

// WaitItem waits until an item has registered and returns the first.
func (w *Watcher) WaitItem(ctx context.Context) (Item, error) {
	for {
		if its := w.Items(); len(its) > 0 {
			return its[0], nil
		}
		select {
		case <-ctx.Done():
			return Item{}, fmt.Errorf("sni: no status notifier item registered: %w", ctx.Err())
		case <-w.added:
		}
	}
}

// MenuNode is one entry of a dbusmenu layout, with the properties a test
// asserts on (defaults applied as the dbusmenu spec gives them).
type MenuNode struct {
	ID          int32
	Type        string // "standard" or "separator"
	Label       string
	Enabled     bool
	Visible     bool
	ToggleType  string // "", "checkmark" or "radio"
	ToggleState int32  // 0 off, 1 on, -1 indeterminate
	Children    []MenuNode
}

// Flatten lists the node's descendants in menu order.
func (n MenuNode) Flatten() []MenuNode {
	var out []MenuNode
	for _, c := range n.Children {
		out = append(out, c)
		out = append(out, c.Flatten()...)
	}
	return out
}

// Find returns the first visible descendant whose label is label.
func (n MenuNode) Find(label string) (MenuNode, bool) {
	for _, c := range n.Flatten() {
		if c.Visible && c.Label == label {
			return c, true
		}
	}
	return MenuNode{}, false
}

// Menu is a registered item's menu.
type Menu struct {
	conn *dbus.Conn
	dest string
	path dbus.ObjectPath
}

// ItemMenu reads the item's Menu property.
func ItemMenu(conn *dbus.Conn, it Item) (*Menu, error) {
	v, err := conn.Object(it.Dest, it.Path).GetProperty(itemIface + ".Menu")
	if err != nil {
		return nil, fmt.Errorf("sni: read Menu of %s%s: %w", it.Dest, it.Path, err)
	}
	p, ok := v.Value().(dbus.ObjectPath)
	if !ok {
		return nil, fmt.Errorf("sni: Menu of %s%s is %T, not an object path", it.Dest, it.Path, v.Value())
	}
	return &Menu{conn: conn, dest: it.Dest, path: p}, nil
}

// ItemProperty reads one property of the item (e.g. "Title", "Id", "Status").
func ItemProperty(conn *dbus.Conn, it Item, name string) (any, error) {
	v, err := conn.Object(it.Dest, it.Path).GetProperty(itemIface + "." + name)
	if err != nil {
		return nil, fmt.Errorf("sni: read %s: %w", name, err)
	}
	return v.Value(), nil
}

// Layout reads the whole menu tree.
func (m *Menu) Layout(ctx context.Context) (MenuNode, error) {
	var rev uint32
	var root struct {
		ID       int32
		Props    map[string]dbus.Variant
		Children []dbus.Variant
	}
	call := m.conn.Object(m.dest, m.path).CallWithContext(ctx, dbusmenu+".GetLayout", 0, int32(0), int32(-1), []string{})
	if err := call.Store(&rev, &root); err != nil {
		return MenuNode{}, fmt.Errorf("sni: GetLayout: %w", err)
	}
	return node(root.ID, root.Props, root.Children)
}

// Click sends the "clicked" event for item id, as a panel does.
func (m *Menu) Click(ctx context.Context, id int32) error {
	call := m.conn.Object(m.dest, m.path).CallWithContext(ctx, dbusmenu+".Event", 0,
		id, "clicked", dbus.MakeVariant(""), uint32(time.Now().Unix()))
	if call.Err != nil {
		return fmt.Errorf("sni: click %d: %w", id, call.Err)
	}
	return nil
}

// node decodes one (ia{sv}av) layout entry; children arrive as variants
// holding the same structure as []interface{}.
func node(id int32, props map[string]dbus.Variant, children []dbus.Variant) (MenuNode, error) {
	n := MenuNode{ID: id, Type: "standard", Enabled: true, Visible: true}
	for k, v := range props {
		switch k {
		case "label":
			n.Label, _ = v.Value().(string)
		case "type":
			n.Type, _ = v.Value().(string)
		case "enabled":
			n.Enabled, _ = v.Value().(bool)
		case "visible":
			n.Visible, _ = v.Value().(bool)
		case "toggle-type":
			n.ToggleType, _ = v.Value().(string)
		case "toggle-state":
			n.ToggleState, _ = v.Value().(int32)
		}
	}
	for _, cv := range children {
		parts, ok := cv.Value().([]interface{})
		if !ok || len(parts) != 3 {
			return MenuNode{}, fmt.Errorf("sni: layout child is %T, not (ia{sv}av)", cv.Value())
		}
		cid, ok1 := parts[0].(int32)
		cprops, ok2 := parts[1].(map[string]dbus.Variant)
		ckids, ok3 := parts[2].([]dbus.Variant)
		if !ok1 || !ok2 || !ok3 {
			return MenuNode{}, fmt.Errorf("sni: layout child has types %T %T %T", parts[0], parts[1], parts[2])
		}
		c, err := node(cid, cprops, ckids)
		if err != nil {
			return MenuNode{}, err
		}
		n.Children = append(n.Children, c)
	}
	return n, nil
}
