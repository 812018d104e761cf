# The client's (or the platform's) own time tracker, inside the client's
# workspace, where its screenshots can only show this client's desktop
# (docs/trackers.md). The tracker needs the internet to report, so the
# network is NAT; the freelancer's other clients are not in this VM.
extends = "desktop.hcl"

description = "Client work with the platform's own tracker"

provision {
  # What trackers' Linux builds need besides the desktop (Electron/Qt).
  packages = ["libnss3", "libsecret-1-0", "libappindicator3-1"]
  # The tracker's .deb is the client's download: put it in a shared
  # folder (share "installers" { host = "/home/you/installers" }) and it
  # is installed at the first boot. Without one, this says so and passes.
  script = <<-SH
    found=0
    for deb in /mnt/shares/installers/*.deb; do
      [ -e "$deb" ] || continue
      found=1
      echo "installing the tracker from $deb"
      apt-get update -q || true
      cp "$deb" /tmp/ && apt-get install -y "/tmp/$(basename "$deb")"
    done
    [ "$found" = 1 ] || echo "no tracker .deb in /mnt/shares/installers: see docs/trackers.md"
  SH
}
