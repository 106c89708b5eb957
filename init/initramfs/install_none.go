//go:build !ballast_installer

package initramfs

import (
	"context"
	"fmt"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/console"
)

// install is what an initramfs built without the installer (contract.TagInstaller) does with
// ballast.install on its command line: it says so.
func install(context.Context, *console.Writer, contract.Cmdline) error {
	return fmt.Errorf("%s: this image's initramfs has no installer (variants with the iso or netboot format carry one)", contract.ParamInstall)
}
