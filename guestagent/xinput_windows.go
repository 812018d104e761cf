//go:build windows

package guestagent

import "errors"

type noInput struct{}

func newInputSource() inputSource { return noInput{} }

// Run reports that input counting is not there yet on Windows; the agent
// then records activity minutes without counts and says so in its status.
func (noInput) Run(stop <-chan struct{}, _ func(InputKind)) error {
	return errors.New("input counting is not implemented on Windows yet")
}
