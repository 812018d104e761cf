//go:build !amd64

package thumbnail

func addBytes(cols []uint16, row []byte) { addBytesGo(cols, row) }
