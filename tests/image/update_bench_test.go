package image

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/builder/pipeline"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/updates/tufrepo"
)

// BenchmarkUpdate measures one update under TCG, from the apply request to the new version
// blessed, and what it downloads against the payload and the root it replaces. Each iteration is
// a fresh host on v1 updated to v2 (`make bench` runs it once: -benchtime 1x).
//
// Reported: apply-s (download and write the slot), reboot-s (activate and reboot to the ready
// line on the new slot), bless-s (ready to blessed: the variant's bless-after, 10s here, plus
// the health checks), total-s; download-MiB (what the host took from the repository: one
// slot's payload and the metadata), payload-MiB (the whole payload, both slots' UKIs),
// root-MiB (the EROFS image written to the slot) and content-MiB (the files it holds), and the
// ratios download/content and download/root.
func BenchmarkUpdate(b *testing.B) {
	lab := newUpdateLab(b)
	variant := lab.variant(b, "qemu-updates.toml", nil)
	lab.build(b, variant, "1.0.0")
	out := lab.build(b, variant, "2.0.0")
	lab.publish(b, "2.0.0")
	m, err := tufrepo.Manifest(lab.dir, "qemu", "")
	if err != nil {
		b.Fatal(err)
	}
	p := m.Release("2.0.0").Payload
	var built pipeline.Manifest
	if err := readJSONFile(filepath.Join(out, "manifest.json"), &built); err != nil {
		b.Fatal(err)
	}
	var payload int64
	for _, f := range []contract.PayloadFile{p.Root, p.Verity, p.UKI[contract.SlotA], p.UKI[contract.SlotB]} {
		payload += f.Size
	}
	var apply, reboot, bless, total, download float64
	for i := 0; i < b.N; i++ {
		h := lab.newHost(b, "1.0.0", fmt.Sprintf(`[settings.updates]
metadata-base-url = "http://%[1]s/metadata"
targets-base-url = "http://%[1]s/targets"
`, repoHost))
		h.start(b)
		h.ready(b, "1.0.0", contract.SlotA)
		before := lab.served.Load()
		t0 := time.Now()
		h.action(b, apitypes.UpdateCheck)
		st := h.action(b, apitypes.UpdateApply)
		t1 := time.Now()
		h.action(b, apitypes.UpdateActivate)
		if err := h.c.Reboot(b.Context()); err != nil {
			b.Fatal(err)
		}
		h.rebooted(b, "reboot into 2.0.0")
		h.start(b)
		h.ready(b, "2.0.0", contract.SlotB)
		t2 := time.Now()
		h.blessed(b, "2.0.0", contract.SlotB)
		t3 := time.Now()
		apply += t1.Sub(t0).Seconds()
		reboot += t2.Sub(t1).Seconds()
		bless += t3.Sub(t2).Seconds()
		total += t3.Sub(t0).Seconds()
		download += float64(lab.served.Load() - before)
		b.Logf("host %d: status says %d bytes downloaded, the server sent %d", i, st.BytesDownloaded, lab.served.Load()-before)
		powerdown(b, h.vm)
	}
	n := float64(b.N)
	mib := func(v float64) float64 { return v / (1 << 20) }
	b.ReportMetric(apply/n, "apply-s")
	b.ReportMetric(reboot/n, "reboot-s")
	b.ReportMetric(bless/n, "bless-s")
	b.ReportMetric(total/n, "total-s")
	b.ReportMetric(mib(download/n), "download-MiB")
	b.ReportMetric(mib(float64(payload)), "payload-MiB")
	b.ReportMetric(mib(float64(p.Root.RawSize)), "root-MiB")
	content := float64(built.Update.RootContent)
	b.ReportMetric(mib(content), "content-MiB")
	b.ReportMetric(download/n/content, "download/content")
	b.ReportMetric(download/n/float64(p.Root.RawSize), "download/root")
	b.ReportMetric(0, "ns/op")
}

func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
