//go:build !ingesttest

package daemon

// testRoutes: a daemon built for use has no HTTP ingestion endpoint
// (ingest_testing.go).
func testRoutes(*server) map[string]endpoint { return nil }
