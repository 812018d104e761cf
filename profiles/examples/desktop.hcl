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
