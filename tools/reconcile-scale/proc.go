package main

import "clerksync/tools/internal/proc"

// cleanEnv returns this process's environment without the settings of the service and of
// Inngest (proc.CleanEnv); extra is appended.
func cleanEnv(extra ...string) []string { return proc.CleanEnv(nil, extra...) }
