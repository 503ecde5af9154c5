package paths
