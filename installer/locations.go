package installer

// Location is where one browser looks for native-messaging manifests on one
// operating system. Paths may start with a variable that Options expands:
//
//	$HOME    the user's home folder (Options.Home)
//	$CONFIG  the user's config folder ($XDG_CONFIG_HOME, else $HOME/.config)
//
// System paths are absolute and are placed under Options.Root. A browser is
// "found" for a user when the parent of its UserDir exists (the browser's own
// profile folder), so install never creates a browser's folder by itself.
//
// Adding an operating system is adding rows here. (Windows finds manifests
// through registry keys rather than folders; its rows will name the key, and
// the writer for it is the one piece that is not data.)
type Location struct {
	Browser   string
	UserDir   string // per-user manifest folder
	SystemDir string // machine-wide manifest folder; "" when the browser has none
}

// Browsers lists the browsers Detour registers with, in display order.
var Browsers = []string{"chrome", "chromium", "edge", "brave", "vivaldi", "opera", "firefox"}

// IsFirefox says whether a browser reads Firefox-style manifests
// (allowed_extensions) rather than Chrome-style ones (allowed_origins).
func IsFirefox(browser string) bool { return browser == "firefox" }

// locations holds the manifest folders per GOOS. Sources: Chrome's and
// Edge's native-messaging documentation, MDN for Firefox, and the vendors'
// packages for Brave (/etc/opt/brave.com), Vivaldi (/etc/opt/vivaldi).
// Opera documents no machine-wide folder on Linux.
var locations = map[string][]Location{
	"linux": {
		{Browser: "chrome", UserDir: "$CONFIG/google-chrome/NativeMessagingHosts", SystemDir: "/etc/opt/chrome/native-messaging-hosts"},
		{Browser: "chromium", UserDir: "$CONFIG/chromium/NativeMessagingHosts", SystemDir: "/etc/chromium/native-messaging-hosts"},
		{Browser: "edge", UserDir: "$CONFIG/microsoft-edge/NativeMessagingHosts", SystemDir: "/etc/opt/edge/native-messaging-hosts"},
		{Browser: "brave", UserDir: "$CONFIG/BraveSoftware/Brave-Browser/NativeMessagingHosts", SystemDir: "/etc/opt/brave.com/brave/native-messaging-hosts"},
		{Browser: "vivaldi", UserDir: "$CONFIG/vivaldi/NativeMessagingHosts", SystemDir: "/etc/opt/vivaldi/native-messaging-hosts"},
		{Browser: "opera", UserDir: "$CONFIG/opera/NativeMessagingHosts"},
		{Browser: "firefox", UserDir: "$HOME/.mozilla/native-messaging-hosts", SystemDir: "/usr/lib/mozilla/native-messaging-hosts"},
	},
	"darwin": {
		{Browser: "chrome", UserDir: "$HOME/Library/Application Support/Google/Chrome/NativeMessagingHosts", SystemDir: "/Library/Google/Chrome/NativeMessagingHosts"},
		{Browser: "chromium", UserDir: "$HOME/Library/Application Support/Chromium/NativeMessagingHosts", SystemDir: "/Library/Application Support/Chromium/NativeMessagingHosts"},
		{Browser: "edge", UserDir: "$HOME/Library/Application Support/Microsoft Edge/NativeMessagingHosts", SystemDir: "/Library/Microsoft/Edge/NativeMessagingHosts"},
		{Browser: "brave", UserDir: "$HOME/Library/Application Support/BraveSoftware/Brave-Browser/NativeMessagingHosts"},
		{Browser: "vivaldi", UserDir: "$HOME/Library/Application Support/Vivaldi/NativeMessagingHosts"},
		{Browser: "opera", UserDir: "$HOME/Library/Application Support/com.operasoftware.Opera/NativeMessagingHosts"},
		{Browser: "firefox", UserDir: "$HOME/Library/Application Support/Mozilla/NativeMessagingHosts", SystemDir: "/Library/Application Support/Mozilla/NativeMessagingHosts"},
	},
}

// Locations returns the rows for goos, or nil where Detour cannot install yet.
func Locations(goos string) []Location {
	return append([]Location(nil), locations[goos]...)
}
