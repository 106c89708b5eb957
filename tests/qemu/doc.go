// Package qemu boots a Ballast disk image under QEMU with OVMF (UEFI) firmware and
// talks to it over the serial console and QMP, for image tests and `make run`.
//
// The guest console is normalized before matching: OVMF and the kernel write
// "\r\n" line ends, ANSI colour and cursor sequences and, under TCG, often one
// byte per write, so Expect works on clean text lines rather than raw bytes.
//
// Tests typically do:
//
//	err := qemu.Available()
//	testutil.Need(t, err == nil, "%v", err) // skips on a developer's machine, fails in CI
//	vm, err := qemu.Start(ctx, qemu.Config{Disk: copyOfImage, LogFile: logPath})
//	...
//	defer vm.Kill()
//	if _, err := vm.Expect(regexp.MustCompile(`ballast: ready`), 0); err != nil {
//		t.Fatal(err) // the error carries the last console lines and the log path
//	}
//
// Guests are amd64 (q35, OVMF: Debian's qemu-system-x86 and ovmf) or, with
// Config.Arch, arm64 (virt, AAVMF: qemu-system-arm and qemu-efi-aarch64), on
// Linux hosts; AvailableArch checks for the latter.
package qemu
