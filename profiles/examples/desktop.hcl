# A day-to-day desktop workspace for one client.
description = "XFCE desktop for client work"
image       = "desktop"
cpus        = 4
memory      = "8GiB"
disk        = "40GiB"
clipboard   = "both"

network {
  mode = "nat"
}

display {
  type = "spice"
}

# A shared folder must lie below the daemon's share roots: the home folder
# of the user who runs `workspace create`, or a `--share-root` of the daemon
# (here: `workspace daemon --share-root /srv/clients`).
share "handoff" {
  host     = "/srv/clients/handoff"
  readonly = true
}

tracking {
  slot                 = "10m"
  screenshots_per_slot = 2
  idle_timeout         = "5m"
  jpeg_quality         = 70
}
