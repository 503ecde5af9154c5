// Package ids holds the fixed names that the browser, the installer and the
// helper must agree on: the native-messaging host name and the extension IDs.
//
// The Chrome-family ID is pinned by the public key in extension/manifest.base.json
// ("key"); the Firefox ID by browser_specific_settings.gecko.id. Change them
// together or not at all: every installed native-messaging manifest names them.
package ids

// NativeHost is the native-messaging host name registered with every browser.
const NativeHost = "org.detour.helper"

// ChromeExtensionID is derived from the "key" in extension/manifest.base.json.
const ChromeExtensionID = "namjglpjppneocddaipepcedcopfegan"

// FirefoxExtensionID is browser_specific_settings.gecko.id in the Firefox build.
const FirefoxExtensionID = "detour@detour-project.org"

// ChromeOrigin is how a Chrome-family browser names the caller on the relay's
// command line.
func ChromeOrigin(id string) string { return "chrome-extension://" + id + "/" }
