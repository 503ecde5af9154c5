package config

// ManagedPath on macOS is the managed preferences of the domain
// org.detour.helper, which the system writes from a configuration profile
// (.mobileconfig pushed by Jamf, Intune or another MDM): a property list
// whose keys are Managed's JSON field names. Placed under a root prefix in
// tests.
const ManagedPath = "/Library/Managed Preferences/org.detour.helper.plist"

func parseManagedFile(b []byte) (*Managed, error) { return ParseManagedPlist(b) }
