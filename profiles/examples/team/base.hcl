# The agency's base: every client profile extends this one.
image  = "test"
cpus   = 2
memory = "2GiB"

network {
  mode = "nat"
}

display {
  type = "vnc"
}

tracking {
  slot                 = "10m"
  screenshots_per_slot = 1
  idle_timeout         = "5m"
  blur                 = false
  jpeg_quality         = 75
  spool_limit          = "512MiB"
}
