#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages that building, running and testing Ballast need, or, when it
# cannot (not root, no apt-get), says exactly which are missing and how to install them.
set -euo pipefail

# command → package that provides it
declare -A need=(
  [qemu-system-x86_64]=qemu-system-x86
  [qemu-img]=qemu-utils
  [veritysetup]=cryptsetup-bin
  [mkfs.erofs]=erofs-utils
  [secilc]=secilc
  [mkfs.ext4]=e2fsprogs
  [mkfs.fat]=dosfstools
  [fsck.fat]=dosfstools
  [mcopy]=mtools
  [sgdisk]=gdisk
  [objdump]=binutils
  [cpio]=cpio
  [gcc]=gcc
  [pkg-config]=pkg-config
  [zstd]=zstd
  [faketime]=faketime
  [genisoimage]=genisoimage
  [xorriso]=xorriso
  [losetup]=mount
  # used by tests only
  [e2fsck]=e2fsprogs
  [dumpe2fs]=e2fsprogs
  [mdir]=mtools
  [mtype]=mtools
  [mlabel]=mtools
  [osslsigncode]=osslsigncode
  [sbsign]=sbsigntool
  [sbverify]=sbsigntool
  [sign-efi-sig-list]=efitools
  [cert-to-efi-sig-list]=efitools
  [openssl]=openssl
  [dpkg-deb]=dpkg
  [tar]=tar
  [partx]=util-linux
  [unshare]=util-linux
  [systemd-analyze]=systemd
  # Secure Boot and the TPM: a software TPM for the guests, PCR 11 and sealing cross-checks
  [swtpm]=swtpm
  [swtpm_setup]=swtpm-tools
  [cryptsetup]=cryptsetup-bin
  [tpm2_eventlog]=tpm2-tools
  # the installer's tests: disks holding what a reinstalled machine's disk holds, ISO9660 readers
  [mkfs.xfs]=xfsprogs
  [mkfs.btrfs]=btrfs-progs
  [sfdisk]=fdisk
  [mkswap]=util-linux
  [isoinfo]=genisoimage
  # the pod sandbox image's OCI layout is read back by another implementation
  [skopeo]=skopeo
  # the OVA's descriptor is well-formed XML
  [xmllint]=libxml2-utils
  # arm64: images boot under QEMU's aarch64 system emulator; runc's cgo is cross-compiled with
  # Debian's cross gcc (it brings the static arm64 glibc, libc6-dev-arm64-cross); tests run arm64
  # programs under qemu-user
  [qemu-system-aarch64]=qemu-system-arm
  [aarch64-linux-gnu-gcc]=gcc-aarch64-linux-gnu
  [qemu-aarch64-static]=qemu-user-static
)
# runc is linked statically against libseccomp and glibc (packages/go-components.toml)
files=(/usr/share/OVMF/OVMF_CODE_4M.fd:ovmf /usr/share/OVMF/OVMF_VARS_4M.fd:ovmf /usr/share/OVMF/OVMF_CODE_4M.secboot.fd:ovmf
  # systemd-measure predicts a UKI's PCR 11 (tests only)
  /usr/lib/systemd/systemd-measure:systemd
  /usr/include/seccomp.h:libseccomp-dev /usr/lib/x86_64-linux-gnu/libseccomp.a:libseccomp-dev
  /usr/include/stdio.h:libc6-dev /usr/lib/x86_64-linux-gnu/libc.a:libc6-dev
  # real EFI binaries the Authenticode tests sign (tests only)
  /usr/lib/systemd/boot/efi/systemd-bootx64.efi:systemd-boot-efi /usr/lib/systemd/boot/efi/linuxx64.efi.stub:systemd-boot-efi
  # arm64: the UEFI firmware QEMU boots arm64 images with (AAVMF), runc's static arm64 libseccomp
  # from Debian's multiarch (the package's :arm64 makes this script add the architecture) and libc
  /usr/share/AAVMF/AAVMF_CODE.fd:qemu-efi-aarch64 /usr/share/AAVMF/AAVMF_VARS.fd:qemu-efi-aarch64
  /usr/lib/aarch64-linux-gnu/libseccomp.a:libseccomp-dev:arm64 /usr/include/seccomp.h:libseccomp-dev:arm64
  /usr/aarch64-linux-gnu/lib/libc.a:libc6-dev-arm64-cross
  # arm64's systemd-boot and UKI stub, which the Secure Boot signing and arm64 boot tests read
  /usr/lib/systemd/boot/efi/systemd-bootaa64.efi:systemd-boot-efi:arm64 /usr/lib/systemd/boot/efi/linuxaa64.efi.stub:systemd-boot-efi:arm64)

missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || [ -x "/sbin/$cmd" ] || missing+=("${need[$cmd]}")
done
# path:package, where the package may itself name an architecture (libseccomp-dev:arm64)
for f in "${files[@]}"; do
  [ -e "${f%%:*}" ] || missing+=("${f#*:}")
done
if ! command -v go >/dev/null 2>&1; then
  echo "host-deps: Go is missing: install Go 1.26 (https://go.dev/dl) and put it on PATH" >&2
  exit 1
fi
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
# Packages of another architecture (name:arch) install only once dpkg knows the architecture.
foreign=()
for p in "${missing[@]}"; do
  case "$p" in
  *:*)
    a=${p##*:}
    dpkg --print-foreign-architectures 2>/dev/null | grep -qx "$a" || [ "$(dpkg --print-architecture 2>/dev/null)" = "$a" ] || foreign+=("$a")
    ;;
  esac
done
[ ${#foreign[@]} -eq 0 ] || mapfile -t foreign < <(printf '%s\n' "${foreign[@]}" | sort -u)

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "host-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  for a in "${foreign[@]}"; do
    echo "host-deps: adding the Debian architecture $a (dpkg --add-architecture $a)" >&2
    dpkg --add-architecture "$a"
  done
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "host-deps: missing Debian packages: ${missing[*]}" >&2
for a in "${foreign[@]}"; do
  echo "host-deps: first add their architecture: sudo dpkg --add-architecture $a && sudo apt-get update" >&2
done
echo "host-deps: install them with: sudo apt-get install ${missing[*]}" >&2
exit 1
