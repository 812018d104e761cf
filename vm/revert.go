package vm

import "github.com/hashicorp/go-hclog"

// revert undoes steps in reverse order (after incus's shared/revert).
type revert struct {
	steps []struct {
		what string
		fn   func() error
	}
}

func (r *revert) add(what string, fn func() error) {
	r.steps = append(r.steps, struct {
		what string
		fn   func() error
	}{what, fn})
}

func (r *revert) run(log hclog.Logger) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	for i := len(r.steps) - 1; i >= 0; i-- {
		if err := r.steps[i].fn(); err != nil {
			log.Error("rollback step failed", "step", r.steps[i].what, "error", err)
		} else {
			log.Debug("rolled back", "step", r.steps[i].what)
		}
	}
}
