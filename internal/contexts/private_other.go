//go:build !unix

package contexts

import "io/fs"

// checkPrivate has nothing to check where the file mode says nothing about
// other users (Windows: the user's profile folder is theirs).
func checkPrivate(string, fs.FileInfo) error { return nil }
