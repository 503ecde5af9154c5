package installer

// platformFinders: a .pkg leaves a receipt that pkgutil reads.
func platformFinders() []PackageFinder { return []PackageFinder{Pkgutil} }
