package guestagent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// PortName is the virtio-serial port of the agent channel.
const PortName = "org.workspace.agent.0"

// FindPort returns the path of the agent's virtio-serial port:
// /dev/virtio-ports/NAME (udev's link), else the vportXpY whose
// /sys/class/virtio-ports/*/name says NAME; on Windows the global device.
func FindPort() (string, error) {
	if runtime.GOOS == "windows" {
		return `\\.\Global\` + PortName, nil
	}
	return findPortIn("/dev", "/sys/class/virtio-ports")
}

// findPortIn is FindPort with the device and sysfs folders given (tests).
func findPortIn(devDir, sysDir string) (string, error) {
	link := filepath.Join(devDir, "virtio-ports", PortName)
	if _, err := os.Stat(link); err == nil {
		return link, nil
	}
	names, _ := filepath.Glob(filepath.Join(sysDir, "*", "name"))
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil || strings.TrimSpace(string(b)) != PortName {
			continue
		}
		dev := filepath.Join(devDir, filepath.Base(filepath.Dir(n)))
		if _, err := os.Stat(dev); err == nil {
			return dev, nil
		}
		return "", fmt.Errorf("port %s is %s, but %s does not exist", PortName, filepath.Base(filepath.Dir(n)), dev)
	}
	if len(names) == 0 {
		return "", errors.New("no virtio-serial ports in this machine (is the virtio_console module loaded? is this a workspace VM?)")
	}
	return "", fmt.Errorf("no virtio-serial port named %s among %d ports", PortName, len(names))
}
