//go:build !unix

package main

import "os"

// ownedByMe: without unix owners no file is known to be this user's, so
// the web UI's link is only printed, never handed over through a file.
func ownedByMe(os.FileInfo) bool { return false }
