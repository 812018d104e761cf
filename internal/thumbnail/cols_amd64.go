package thumbnail

//go:noescape
func addBytesSSE(cols *uint16, row *byte, n int)

// addBytes adds each byte of row to its 16-bit column sum, 16 bytes at a
// time in SSE2.
func addBytes(cols []uint16, row []byte) {
	n := len(row) &^ 15
	if n > 0 {
		_ = cols[n-1]
		addBytesSSE(&cols[0], &row[0], n)
	}
	addBytesGo(cols[n:], row[n:])
}
