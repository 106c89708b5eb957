package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ballast-os/ballast/builder/ociarchive"
	"github.com/ballast-os/ballast/builder/programs"
	"github.com/ballast-os/ballast/builder/rootfs"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/packages/gocomponents"
	"github.com/ballast-os/ballast/runtime/spec"
)

// pauseMain is Ballast's pod sandbox program. It is not in contract.Programs: it never runs on
// the host, only inside the image at contract.PauseImageArchive.
const pauseMain = "./runtime/cmd/pause"

// pauseUser is the pod sandbox's uid:gid, the nobody of Kubernetes' own pause image: the
// sandbox needs no privilege at all.
const pauseUser = "65535:65535"

// installsKubelet reports whether the variant's components put a kubelet into the root: only
// then does the image need a pod sandbox image.
func installsKubelet(comps []gocomponents.Built, dev bool) bool {
	for _, c := range comps {
		for _, bin := range installed(c.Binaries, dev) {
			if bin.InstallPath == contract.KubeletPath {
				return true
			}
		}
	}
	return false
}

// pauseImage is the pod sandbox image of goarch: the pause program alone, as an OCI image
// layout tarball named contract.PauseImageRef, so CRI finds it without pulling.
func pauseImage(program []byte, goarch string) ([]byte, error) {
	var buf bytes.Buffer
	err := ociarchive.Write(&buf, ociarchive.Image{
		Name:       contract.PauseImageRef,
		GOARCH:     goarch,
		Entrypoint: []string{"/pause"},
		User:       pauseUser,
		Files:      []ociarchive.File{{Path: "/pause", Mode: 0o755, Data: program}},
	})
	return buf.Bytes(), err
}

// addPauseImage compiles the pause program for the image's architecture and adds the pod
// sandbox image to the root, when the variant installs a kubelet. It is labelled like the rest
// of the root, by the policy's file contexts.
func (b *builder) addPauseImage(ctx context.Context, t *rootfs.Tree) error {
	b.pause = ""
	if !installsKubelet(b.comps, b.v.Dev) {
		return nil
	}
	b.step("root: pod sandbox image %s", contract.PauseImageRef)
	bins, err := programs.Build(ctx, b.Repo, filepath.Join(b.work, "pause"), b.arch,
		[]contract.Program{{Name: "pause", Main: pauseMain}}, b.version)
	if err != nil {
		return err
	}
	program, err := os.ReadFile(bins["pause"])
	if err != nil {
		return err
	}
	img, err := pauseImage(program, b.arch.Info().GOARCH)
	if err != nil {
		return fmt.Errorf("variant %s: %w", b.v.Path, err)
	}
	if err := t.AddFile(contract.PauseImageArchive, img, 0o644, "ballast"); err != nil {
		return err
	}
	b.pause = bins["pause"]
	return addCRIFiles(t)
}

// addCRIFiles adds what CRI reads from the root besides the pause image: the pods' base OCI
// spec and the SELinux labels of pods (runtime/spec, the same defaults as host containers), and
// the link that gives a cluster's CNI daemonset a writable /opt/cni/bin on /local.
func addCRIFiles(t *rootfs.Tree) error {
	base, err := spec.CRIBaseSpecJSON()
	if err != nil {
		return err
	}
	if err := t.AddFile(contract.CRIBaseSpecPath, base, 0o644, "ballast"); err != nil {
		return err
	}
	if err := t.AddFile(contract.CRISELinuxContexts, spec.CRISELinuxContexts(), 0o644, "ballast"); err != nil {
		return err
	}
	return t.AddSymlink(contract.CNIExtraPluginDir, contract.CNIExtraPluginDirOnData, "ballast")
}
