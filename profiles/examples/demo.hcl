# The demo's profile (make demo): the test image, small, and 30-second slots
# so the diary fills within a minute.
image  = "test"
cpus   = 1
memory = "512MiB"
disk   = "2GiB"

tracking {
  slot = "30s"
}

client {
  name = "Demo Client"
}
