package system

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ballast-os/ballast/contract"
)

// avcDenied marks the kernel's AVC denial records ("audit: type=1400 audit(...): avc:  denied
// { read } for ... permissive=0"); the two spaces are the kernel's.
const avcDenied = "avc:  denied"

// denialsShown is how many denials each boot prints in full; after that, every denialsEvery-th
// one, so a storm cannot flood the serial console yet is seen to go on.
const (
	denialsShown = 100
	denialsEvery = 100
)

// seeKernelRecord counts the kernel record msg if it is an SELinux denial, prints it on the
// console (the kernel prints audit records below the console's log level) and keeps the count in
// contract.SELinuxDenials for the hardening report. Only the kernel log's goroutine calls it.
func (i *Init) seeKernelRecord(msg string) {
	if !strings.Contains(msg, avcDenied) {
		return
	}
	i.denials++
	n := i.denials
	switch {
	case n <= denialsShown:
		i.console.Errorf("selinux: %s", msg)
	case n%denialsEvery == 0:
		i.console.Errorf("selinux: %d denials so far, only every %dth printed: %s", n, denialsEvery, msg)
	}
	i.writeDenials()
}

// writeDenials replaces contract.SELinuxDenials with the count, so a reader never sees half a
// number.
func (i *Init) writeDenials() {
	p := i.path(contract.SELinuxDenials)
	tmp := filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".tmp")
	err := os.WriteFile(tmp, []byte(strconv.Itoa(i.denials)+"\n"), 0o644)
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil && !i.denialsErr {
		i.denialsErr = true // once: the console is for denials, not for this
		i.console.Errorf("selinux: %v", fmt.Errorf("denial count: %w", err))
	}
}
