//go:build !unix

package embedded

// lockDir takes no lock where flock is missing (Windows, Plan 9, wasm): the service runs in
// Linux containers, and there only one process at a time opens a DATA_DIR (see the unix
// lockDir). It returns a function that does nothing, and no error.
func lockDir(string) (func(), error) { return func() {}, nil }
