package userdata

import (
	"os"
	"path/filepath"
	"strings"
)

// OnEC2 tells from the firmware's description of the machine whether it is an EC2 instance, the
// way cloud-init's ds-identify does: the SMBIOS system vendor (Nitro instances), or a product or
// Xen hypervisor UUID that starts with "ec2" (Xen instances). Only then is the instance metadata
// service worth asking: elsewhere its link-local address may be routed to nobody, and every
// first boot would wait for it. sys is /sys, or a directory laid out like it in tests.
func OnEC2(sys string) bool {
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(sys, p))
		if err != nil {
			return ""
		}
		return strings.ToLower(strings.TrimSpace(string(b)))
	}
	if strings.HasPrefix(read("class/dmi/id/sys_vendor"), "amazon ec2") {
		return true
	}
	for _, p := range []string{"class/dmi/id/product_uuid", "hypervisor/uuid"} {
		if strings.HasPrefix(read(p), "ec2") {
			return true
		}
	}
	return false
}
