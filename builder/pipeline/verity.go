package pipeline

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/verity"
	"github.com/ballast-os/ballast/packages/digest"
)

// buildVerity hashes the root into its dm-verity tree. The salt and the superblock UUID derive
// from the root's content, so the same root always gives the same tree.
func (b *builder) buildVerity(context.Context) error {
	st, err := os.Stat(b.rootImg)
	if err != nil {
		return err
	}
	b.rootSize = st.Size()
	if b.rootSize > int64(b.v.Partitions.Root) {
		return fmt.Errorf("root filesystem of %d MiB does not fit partitions.root = %d MiB in %s", b.rootSize>>20, int64(b.v.Partitions.Root)>>20, b.v.Path)
	}
	rootSum, err := digest.File(b.rootImg)
	if err != nil {
		return err
	}
	salt := contract.Derive("verity-salt", rootSum)
	b.salt = salt[:]
	b.step("verity: hash %d MiB", b.rootSize>>20)
	in, err := os.Open(b.rootImg)
	if err != nil {
		return err
	}
	defer in.Close()
	b.hashImg = filepath.Join(b.work, "verity.img")
	out, err := os.Create(b.hashImg)
	if err != nil {
		return err
	}
	defer out.Close()
	id := contract.DerivedUUID("verity-uuid", hex.EncodeToString(b.salt))
	b.verity, err = verity.Build(in, b.rootSize, out, verity.Params{Salt: b.salt, UUID: id})
	if err != nil {
		return fmt.Errorf("%s: %w", b.rootImg, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	if b.verity.HashSize > int64(b.v.Partitions.Verity) {
		return fmt.Errorf("tree of %d bytes does not fit partitions.verity in %s", b.verity.HashSize, b.v.Path)
	}
	b.rootHash = hex.EncodeToString(b.verity.RootHash)
	return nil
}
