package rootfs

import "golang.org/x/sys/unix"

func getxattr(path, name string, buf []byte) (int, error) { return unix.Lgetxattr(path, name, buf) }
