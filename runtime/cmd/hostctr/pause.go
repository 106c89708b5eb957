package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/platforms"

	"github.com/ballast-os/ballast/contract"
)

// A Kubernetes node's pod sandbox ("pause") image comes from an archive in the image
// (contract.PauseImageArchive, the k8s variant only). The host-container manager, which already
// talks to containerd at every boot, imports it into CRI's namespace under the name CRI is
// configured with (contract.PauseImageRef), unpacked and pinned: no pod ever pulls it, and the
// kubelet's image GC never removes it. The kubelet need not wait: a pod sandbox asked for before
// the import ends is retried by the kubelet.

// criLabels mark the image as CRI's own and pinned.
var criLabels = map[string]string{
	"io.cri-containerd.pinned": "pinned",
	"io.cri-containerd.image":  "managed",
}

// importPause imports archive as name into CRI's namespace, retrying until containerd answers
// or ctx ends; without the archive (an image without a kubelet) it does nothing.
func importPause(ctx context.Context, socket, archive, name string, logf func(string, ...any)) error {
	if _, err := os.Stat(archive); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		err := importPauseOnce(ctx, socket, archive, name, logf)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
			logf("%v; trying again", err)
		}
	}
}

func importPauseOnce(ctx context.Context, socket, archive, name string, logf func(string, ...any)) error {
	client, err := containerd.New(socket, containerd.WithTimeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("pause image: containerd at %s: %w", socket, err)
	}
	defer client.Close()
	ctx = namespaces.WithNamespace(ctx, contract.CRINamespace)
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	defer f.Close()
	start := time.Now()
	imgs, err := client.Import(ctx, f,
		containerd.WithIndexName(name),
		// Only the configured name: the archive's own names would be images CRI does not pin.
		containerd.WithImageRefTranslator(func(string) string { return "" }),
		containerd.WithSkipDigestRef(func(string) bool { return true }),
		containerd.WithImportPlatform(platforms.Default()),
		containerd.WithImageLabels(criLabels),
	)
	if err != nil {
		return fmt.Errorf("pause image: import %s: %w", archive, err)
	}
	for _, i := range imgs {
		if i.Name != name {
			continue
		}
		img := containerd.NewImageWithPlatform(client, i, platforms.Default())
		if ok, err := img.IsUnpacked(ctx, "overlayfs"); err == nil && ok {
			logf("pause image %s (%s) is imported", name, i.Target.Digest)
			return nil
		}
		if err := img.Unpack(ctx, "overlayfs"); err != nil {
			return fmt.Errorf("pause image: unpack %s: %w", name, err)
		}
		logf("pause image %s (%s) imported from %s in %v", name, i.Target.Digest, archive, time.Since(start).Round(time.Millisecond))
		return nil
	}
	return fmt.Errorf("pause image: %s holds no image", archive)
}
