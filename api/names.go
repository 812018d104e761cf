package api

import (
	"fmt"
	"regexp"
)

var (
	workspaceName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	imageName     = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
)

// ValidateWorkspaceName checks that name is a DNS label (lower-case letters,
// digits and inner hyphens, at most 63 characters). The error wraps ErrInvalid.
func ValidateWorkspaceName(name string) error {
	if !workspaceName.MatchString(name) {
		return fmt.Errorf("%w: workspace name %q must be a DNS label: 1-63 lower-case letters, digits or '-', not starting or ending with '-'", ErrInvalid, name)
	}
	return nil
}

// ValidateImageName checks an image name: lower-case letters, digits, '.',
// '_' and '-', starting with a letter or digit, at most 63 characters.
func ValidateImageName(name string) error {
	if !imageName.MatchString(name) {
		return fmt.Errorf("%w: image name %q must be 1-63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", ErrInvalid, name)
	}
	return nil
}
