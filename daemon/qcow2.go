package daemon

import (
	"encoding/binary"
	"fmt"

	"github.com/workspace-sandbox/workspace/api"
)

// An imported disk is untrusted: QEMU opens it as the workspace's disk, and
// a qcow2 header can point QEMU at other files on the host (a backing file,
// an external data file). Only the header fields below are accepted.
const (
	qcow2Magic = "QFI\xfb"

	// maxVirtualSize bounds an imported disk's virtual size (and so every
	// overlay made on it): 16 TiB, the largest file ext4 holds.
	maxVirtualSize = 16 << 40

	// qcow2HeadBytes is how much of an upload is read before it is streamed
	// on: the header and its extensions must lie in it.
	qcow2HeadBytes = 64 << 10

	qcow2V3HeaderLen = 104

	// Incompatible feature bits (qcow2 spec): a reader must refuse an image
	// with a bit it does not know.
	qcow2IncDirty       = 1 << 0 // refcounts may be stale: QEMU repairs them
	qcow2IncCorrupt     = 1 << 1 // QEMU refuses to write it
	qcow2IncDataFile    = 1 << 2 // guest data lives in another host file
	qcow2IncCompression = 1 << 3 // a compression type field (zlib, zstd)
	qcow2IncExtendedL2  = 1 << 4 // subclusters

	// qcow2IncAllowed are the bits an imported image may carry.
	qcow2IncAllowed = qcow2IncDirty | qcow2IncCompression | qcow2IncExtendedL2

	// Header extension types that name host files.
	qcow2ExtEnd        = 0x00000000
	qcow2ExtBackingFmt = 0xe2792aca
	qcow2ExtDataFile   = 0x44415441

	// An autoclear bit: the external data file is a raw image.
	qcow2AutoclearRaw = 1 << 1
)

// sniffDisk reads a disk's format from its first bytes (up to
// qcow2HeadBytes of them); size is the whole upload's length. A qcow2 is
// refused when it names a backing file or an external data file, carries
// an incompatible feature bit this daemon does not know, or is larger than
// maxVirtualSize; a raw disk larger than that too.
func sniffDisk(head []byte, size int64) (diskHeader, error) {
	if len(head) >= 4 && string(head[:4]) == qcow2Magic {
		return sniffQcow2(head)
	}
	if size <= 0 {
		return diskHeader{}, fmt.Errorf("%w: disk is empty", api.ErrInvalid)
	}
	if uint64(size) > maxVirtualSize {
		return diskHeader{}, fmt.Errorf("%w: raw disk of %d bytes is larger than the %s an image may be", api.ErrInvalid, size, sizeName(maxVirtualSize))
	}
	return diskHeader{format: "raw", virtualSize: uint64(size)}, nil
}

func sniffQcow2(head []byte) (diskHeader, error) {
	bad := func(format string, args ...any) (diskHeader, error) {
		return diskHeader{}, fmt.Errorf("%w: qcow2 image: "+format, append([]any{api.ErrInvalid}, args...)...)
	}
	if len(head) < 72 {
		return bad("header is truncated (%d bytes)", len(head))
	}
	be := binary.BigEndian
	version := be.Uint32(head[4:8])
	if version != 2 && version != 3 {
		return bad("version %d is not 2 or 3", version)
	}
	if backing := be.Uint64(head[8:16]); backing != 0 {
		return bad("it has a backing file; flatten it first (qemu-img convert -O qcow2)")
	}
	clusterBits := be.Uint32(head[20:24])
	if clusterBits < 9 || clusterBits > 21 {
		return bad("cluster bits %d outside 9..21", clusterBits)
	}
	vs := be.Uint64(head[24:32])
	if vs == 0 {
		return bad("virtual size of 0")
	}
	if vs > maxVirtualSize {
		return bad("virtual size of %d bytes is larger than the %s an image may be", vs, sizeName(maxVirtualSize))
	}
	if crypt := be.Uint32(head[32:36]); crypt != 0 {
		return bad("it is encrypted (method %d); decrypt it first", crypt)
	}
	headerLen := uint64(72)
	if version == 3 {
		if len(head) < qcow2V3HeaderLen {
			return bad("version 3 header is truncated (%d bytes)", len(head))
		}
		inc := be.Uint64(head[72:80])
		if inc&qcow2IncDataFile != 0 {
			return bad("it keeps its data in an external data file (incompatible feature bit 2); convert it first (qemu-img convert -O qcow2)")
		}
		if inc&qcow2IncCorrupt != 0 {
			return bad("it is marked corrupt (incompatible feature bit 1); repair it first (qemu-img check -r all)")
		}
		if unknown := inc &^ qcow2IncAllowed; unknown != 0 {
			return bad("incompatible feature bits %#x that this daemon does not know", unknown)
		}
		if auto := be.Uint64(head[88:96]); auto&qcow2AutoclearRaw != 0 {
			return bad("its data file is raw external data (autoclear bit 1)")
		}
		headerLen = uint64(be.Uint32(head[100:104]))
		if headerLen < qcow2V3HeaderLen || headerLen%8 != 0 {
			return bad("header length %d is not a multiple of 8 of at least %d", headerLen, qcow2V3HeaderLen)
		}
	}
	// Header extensions follow the header, up to the first cluster; they
	// must all lie in what was read, and none may name another file.
	limit := uint64(1) << clusterBits
	if uint64(len(head)) < limit {
		limit = uint64(len(head))
	}
	off := headerLen
	for {
		if off+8 > limit {
			return bad("header extensions run past the first %d bytes", limit)
		}
		typ, n := be.Uint32(head[off:off+4]), uint64(be.Uint32(head[off+4:off+8]))
		off += 8
		if typ == qcow2ExtEnd {
			break
		}
		if typ == qcow2ExtDataFile {
			return bad("it names an external data file (header extension \"DATA\"); convert it first (qemu-img convert -O qcow2)")
		}
		if typ == qcow2ExtBackingFmt {
			return bad("it names a backing file format (a backing chain is not accepted)")
		}
		off += (n + 7) &^ 7
		if off > limit {
			return bad("a header extension runs past the first %d bytes", limit)
		}
	}
	return diskHeader{format: "qcow2", virtualSize: vs}, nil
}

// sizeName writes a byte count the way profiles do ("16TiB").
func sizeName(n uint64) string {
	for _, u := range []struct {
		name string
		n    uint64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}} {
		if n >= u.n && n%u.n == 0 {
			return fmt.Sprintf("%d%s", n/u.n, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
