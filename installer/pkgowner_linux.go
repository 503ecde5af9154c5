package installer

// platformFinders: a Linux machine may have both databases (rpm on Debian
// to read packages); dpkg first, as the more common owner of /usr/bin.
func platformFinders() []PackageFinder { return []PackageFinder{Dpkg, Rpm} }
