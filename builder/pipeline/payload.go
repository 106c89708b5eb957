package pipeline

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/ballast-os/ballast/apiserver/datastore"
	"github.com/ballast-os/ballast/builder/payload"
	"github.com/ballast-os/ballast/contract"
)

// updateDir is the update payload's directory in the output directory.
const updateDir = "update"

// writePayload writes the update payload of this version into Out/update, the files a repository
// serves for it, and records them among the outputs.
func (b *builder) writePayload(context.Context) error {
	b.step("payload: zstd (%s) of root, verity, uki-a, uki-b", payload.Level)
	head := contract.Payload{Variant: b.v.Name, Version: b.version, Arch: string(b.arch), RootHash: b.rootHash,
		VerityBlocks: b.verity.DataBlocks, Salt: b.boots[contract.SlotA].VeritySalt, DatastoreFormat: datastore.FormatVersion}
	dir := filepath.Join(b.Out, updateDir)
	p, err := payload.Write(dir, head, payload.Sources{Root: b.rootImg, Verity: b.hashImg, UKI: b.ukis})
	if err != nil {
		return err
	}
	for _, name := range append(payload.Names(p), payload.FileName) {
		if err := b.record(b.manifest.Outputs, updateDir+"/"+name, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	b.manifest.Update = Update{
		Payload: updateDir + "/" + payload.FileName, Size: payload.Size(p),
		Download:  p.Root.Size + p.Verity.Size + p.UKI[contract.SlotB].Size,
		RootImage: p.Root.RawSize, RootContent: b.rootContent,
		Compression: fmt.Sprintf("zstd %s", payload.Level),
	}
	b.step("payload: %d MiB (root %d MiB from an EROFS image of %d MiB holding %d MiB of files)",
		b.manifest.Update.Size>>20, p.Root.Size>>20, p.Root.RawSize>>20, b.rootContent>>20)
	return nil
}
