package provision

import _ "embed"

// Runner is the provisioning runner the daemon copies into the guest
// (runner.sh): it installs the packages and runs the scripts once, writing
// its status for ParseStatus.
//
//go:embed runner.sh
var Runner []byte
