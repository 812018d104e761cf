//go:build !amd64

package jpegenc

func sseWeights(*Encoder) (w [28]int32, ok bool) { return w, false }

func (s *Strip) loadMCU(mx, my int) { s.loadInside(mx, my) }
