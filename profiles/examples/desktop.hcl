# A day-to-day desktop workspace for one client: the full desktop image
# (`sudo workspace image build desktop`, imported as "desktop") has XFCE,
# Firefox ESR, git, a text editor, a file manager and a terminal.
description = "XFCE desktop for client work"
image       = "desktop"
cpus        = 2
memory      = "4GiB"
disk        = "20GiB"
clipboard   = "both"

network {
  mode = "nat"
}

display {
  type = "spice"
}

# Shared folders must exist and lie below the daemon's share roots: the
# home folder of the user who runs `workspace create`, or a `--share-root`
# of the daemon. For example (make the folder first):
#
# share "handoff" {
#   host     = "/home/alice/clients/acme/handoff"
#   readonly = true
# }

# Installed once, at the first boot, without the guest needing a network:
# the daemon's host downloads the packages (docs/provision.md).
provision {
  packages    = ["vim"]
  user_script = "git config --global init.defaultBranch main"
}

tracking {
  slot                 = "10m"
  screenshots_per_slot = 2
  idle_timeout         = "5m"
  jpeg_quality         = 70
}
