# The smallest profile: an image; everything else takes its default
# (2 CPUs, 2GiB memory, 20GiB overlay, NAT network, SPICE display, clipboard off).
image = "test"
