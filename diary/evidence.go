package diary

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/workspace-sandbox/workspace/witness"
)

// An export (format 3) carries the evidence that fixes its log in time and
// against earlier exports:
//
//   - for every witness, the cosigned checkpoints that are the first to
//     cover some entry of the export (those of sizes after the export's
//     first entry up to its checkpoint, and the first one at or beyond
//     it), each with every cosignature kept for it and a consistency
//     proof between it and the export's checkpoint;
//   - every checkpoint of this log exported before, with a consistency
//     proof between it and this export's checkpoint.
//
// A witness's cosignature carries its timestamp: the first cosigned
// checkpoint covering an entry says when, at the latest, the entry
// existed.

type evidence struct {
	Checkpoints []evidenceCheckpoint `json:"checkpoints"`
	Previous    []evidenceCheckpoint `json:"previous,omitempty"`
}

// evidenceCheckpoint is a signed checkpoint of the log (its cosignature
// lines appended to the log's signature) and a consistency proof between
// it and the export's checkpoint, from the smaller to the larger.
type evidenceCheckpoint struct {
	Note  string   `json:"note"`
	Proof []string `json:"proof,omitempty"`
}

// Limits of the evidence a verify reads.
const (
	maxEvidenceCheckpoints = 1 << 20
	maxEvidenceNote        = 16 << 10
	maxEvidenceSigs        = 64
	maxEvidenceProof       = 64
)

// exportCheckpoint returns the signed checkpoint an export carries: the
// given size (one kept among the signed checkpoints) or the latest.
func (s *Store) exportCheckpoint(ctx context.Context, ws string, size int64) ([]byte, Checkpoint, error) {
	tip, err := s.Tip(ctx, ws)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	signed := tip.Note
	if size > 0 && size != tip.Size {
		if size > tip.Size {
			return nil, Checkpoint{}, fmt.Errorf("%w: the log of %q has %d entries, not %d", ErrInvalid, ws, tip.Size, size)
		}
		if signed, err = s.signedCheckpoint(ctx, s.db, ws, size); err != nil {
			return nil, Checkpoint{}, err
		}
	}
	cp, err := parseCheckpointNote(string(signed))
	return signed, cp, err
}

// buildEvidence gathers an export's witness evidence (see above).
func (s *Store) buildEvidence(ctx context.Context, ws string, first int64, cp Checkpoint, r *hashReader) (*evidence, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT size, witness, line FROM cosignatures WHERE ws=? ORDER BY witness, size`, ws)
	if err != nil {
		return nil, fmt.Errorf("cosignatures of %q: %w", ws, err)
	}
	type cosig struct {
		size          int64
		witness, line string
	}
	var all []cosig
	for rows.Next() {
		var c cosig
		if err := rows.Scan(&c.size, &c.witness, &c.line); err != nil {
			rows.Close()
			return nil, err
		}
		all = append(all, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	lines := map[int64][]string{}
	chosen := map[int64]bool{}
	beyond := map[string]bool{} // witnesses whose first checkpoint at or beyond cp is chosen
	for _, c := range all {
		lines[c.size] = append(lines[c.size], c.line)
		switch {
		case c.size > first && c.size <= cp.Size:
			chosen[c.size] = true
			if c.size == cp.Size {
				beyond[c.witness] = true
			}
		case c.size > cp.Size && !beyond[c.witness]:
			chosen[c.size] = true // rows are by size: the witness's first beyond cp
			beyond[c.witness] = true
		}
	}
	ev := &evidence{Checkpoints: []evidenceCheckpoint{}}
	sizes := make([]int64, 0, len(chosen))
	for n := range chosen {
		sizes = append(sizes, n)
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
	for _, n := range sizes {
		ec, err := s.evidenceFor(ctx, ws, n, cp.Size, r)
		if err != nil {
			return nil, err
		}
		for _, l := range lines[n] {
			ec.Note += l
		}
		ev.Checkpoints = append(ev.Checkpoints, ec)
	}
	prev, err := s.db.QueryContext(ctx, `SELECT size FROM exports WHERE ws=? AND size<>? ORDER BY size`, ws, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("earlier exports of %q: %w", ws, err)
	}
	var psizes []int64
	for prev.Next() {
		var n int64
		if err := prev.Scan(&n); err != nil {
			prev.Close()
			return nil, err
		}
		psizes = append(psizes, n)
	}
	prev.Close()
	for _, n := range psizes {
		ec, err := s.evidenceFor(ctx, ws, n, cp.Size, r)
		if err != nil {
			return nil, err
		}
		ev.Previous = append(ev.Previous, ec)
	}
	return ev, nil
}

// evidenceFor is the kept signed checkpoint of size n with the consistency
// proof between it and size at.
func (s *Store) evidenceFor(ctx context.Context, ws string, n, at int64, r *hashReader) (evidenceCheckpoint, error) {
	signed, err := s.signedCheckpoint(ctx, s.db, ws, n)
	if err != nil {
		return evidenceCheckpoint{}, err
	}
	lo, hi := min(n, at), max(n, at)
	var proof tlog.TreeProof
	if lo > 0 && lo < hi {
		if proof, err = tlog.ProveTree(hi, lo, r); err != nil {
			return evidenceCheckpoint{}, fmt.Errorf("consistency proof of %q from %d to %d: %w", ws, lo, hi, err)
		}
	}
	ec := evidenceCheckpoint{Note: string(signed)}
	for _, h := range proof {
		ec.Proof = append(ec.Proof, base64.StdEncoding.EncodeToString(h[:]))
	}
	return ec, nil
}

// provenCheckpoint is an evidence checkpoint that verify checked: signed
// by the log, consistent with the export's checkpoint.
type provenCheckpoint struct {
	Checkpoint
	text string
	sigs []string
}

// checkEvidenceCheckpoint parses and checks one evidence checkpoint against
// the export's checkpoint cp: the log's signature (by the key derived from
// the signer), the origin, and the consistency proof.
func checkEvidenceCheckpoint(ec evidenceCheckpoint, logKey note.Verifier, cp Checkpoint) (provenCheckpoint, error) {
	if len(ec.Note) > maxEvidenceNote {
		return provenCheckpoint{}, fmt.Errorf("a checkpoint note is larger than %d bytes", maxEvidenceNote)
	}
	if len(ec.Proof) > maxEvidenceProof {
		return provenCheckpoint{}, fmt.Errorf("a consistency proof has %d hashes (at most %d)", len(ec.Proof), maxEvidenceProof)
	}
	text, sigs, err := witness.SplitNote([]byte(ec.Note))
	if err != nil {
		return provenCheckpoint{}, err
	}
	if len(sigs) > maxEvidenceSigs {
		return provenCheckpoint{}, fmt.Errorf("a checkpoint has %d signatures (at most %d)", len(sigs), maxEvidenceSigs)
	}
	n, err := note.Open([]byte(ec.Note), note.VerifierList(logKey))
	if err != nil {
		return provenCheckpoint{}, fmt.Errorf("a cosigned checkpoint is not signed by the log: %w", err)
	}
	c, err := parseC2SP(n.Text, logKey.Name(), cp.Workspace)
	if err != nil {
		return provenCheckpoint{}, err
	}
	proof, err := parseTreeProof(ec.Proof)
	if err != nil {
		return provenCheckpoint{}, fmt.Errorf("checkpoint of size %d: %w", c.Size, err)
	}
	switch {
	case c.Size == cp.Size:
		if c.Root != cp.Root || len(proof) > 0 {
			return provenCheckpoint{}, fmt.Errorf("checkpoint of size %d has another root than the export's checkpoint of the same size: the log forked", c.Size)
		}
	case c.Size < cp.Size:
		if c.Size > 0 && tlog.CheckTree(proof, cp.Size, cp.Root, c.Size, c.Root) != nil {
			return provenCheckpoint{}, fmt.Errorf("checkpoint of size %d: the consistency proof to the export's checkpoint (size %d) does not verify", c.Size, cp.Size)
		}
	default:
		if cp.Size > 0 && tlog.CheckTree(proof, c.Size, c.Root, cp.Size, cp.Root) != nil {
			return provenCheckpoint{}, fmt.Errorf("checkpoint of size %d: the consistency proof from the export's checkpoint (size %d) does not verify", c.Size, cp.Size)
		}
	}
	return provenCheckpoint{Checkpoint: c, text: text, sigs: sigs}, nil
}

func parseTreeProof(p []string) (tlog.TreeProof, error) {
	out := make(tlog.TreeProof, len(p))
	for j, s := range p {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != tlog.HashSize {
			return nil, errors.New("malformed consistency proof hash")
		}
		copy(out[j][:], b)
	}
	return out, nil
}

// checkEvidence checks every checkpoint of an export's evidence; it
// returns the cosigned ones and the earlier exports' ones.
func checkEvidence(ev *evidence, signer string, cp Checkpoint) (cosigned, previous []provenCheckpoint, err error) {
	if ev == nil {
		return nil, nil, nil
	}
	if len(ev.Checkpoints)+len(ev.Previous) > maxEvidenceCheckpoints {
		return nil, nil, fmt.Errorf("witness evidence: more than %d checkpoints", maxEvidenceCheckpoints)
	}
	lkey, err := LogKey(signer, cp.Workspace)
	if err != nil {
		return nil, nil, err
	}
	v, err := note.NewVerifier(lkey)
	if err != nil {
		return nil, nil, err
	}
	for i, ec := range ev.Checkpoints {
		pc, err := checkEvidenceCheckpoint(ec, v, cp)
		if err != nil {
			return nil, nil, fmt.Errorf("witness evidence, checkpoint %d: %w", i+1, err)
		}
		cosigned = append(cosigned, pc)
	}
	for i, ec := range ev.Previous {
		pc, err := checkEvidenceCheckpoint(ec, v, cp)
		if err != nil {
			return nil, nil, fmt.Errorf("earlier export's checkpoint %d: %w", i+1, err)
		}
		previous = append(previous, pc)
	}
	return cosigned, previous, nil
}
