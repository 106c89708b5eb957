package daemon

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/client"
)

// benchSettings is a host's worth of settings, so GET /settings answers a realistic document.
const benchSettings = `{"motd":"Welcome to Ballast","network":{"hostname":"node-1","hosts":[["10.0.0.1",["db","db.internal"]]],
"https-proxy":"proxy.internal:3128","no-proxy":[".internal","10.0.0.0/8"]},
"dns":{"name-servers":["10.0.0.2","10.0.0.3"],"search-list":["internal","example.com"]},
"ntp":{"time-servers":["pool.ntp.org"]},
"kernel":{"lockdown":"integrity","sysctl":{"net.ipv4.ip_forward":"1","vm.swappiness":"10","net.core.somaxconn":"4096"}},
"host-containers":{"admin":{"source":"registry.example.com/ballast/admin:v1.0","enabled":false,"superpowered":true},
"control":{"source":"registry.example.com/ballast/control:v1.0","enabled":true}},
"container-runtime":{"max-concurrent-downloads":3,"enable-unprivileged-ports":true},
"oci-defaults":{"resource-limits":{"max-open-files":{"hard-limit":1048576,"soft-limit":65536}}}}`

// benchServer starts a server on a fresh datastore with benchSettings live.
func benchServer(b *testing.B) *host {
	b.Helper()
	h := newHost(b)
	h.start(b)
	c := client.New(h.socket)
	defer c.Close()
	if err := c.Patch(context.Background(), []byte(benchSettings)); err != nil {
		b.Fatal(err)
	}
	if _, err := c.CommitAndApply(context.Background()); err != nil {
		b.Fatal(err)
	}
	return h
}

// runClients runs b.N operations spread over n concurrent clients, each with its own connection,
// and reports the percentiles of the latencies op returns (op times the part that counts).
func runClients(b *testing.B, h *host, n int, op func(c *client.Client, worker, i int) (time.Duration, error)) {
	b.Helper()
	clients := make([]*client.Client, n)
	for i := range clients {
		clients[i] = client.New(h.socket)
		defer clients[i].Close()
	}
	per := max(b.N/n, 1)
	lat := make([][]time.Duration, n)
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := range n {
		wg.Go(func() {
			lat[w] = make([]time.Duration, 0, per)
			for i := range per {
				d, err := op(clients[w], w, i)
				if err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], d)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	pct := func(p float64) float64 {
		return float64(all[min(int(float64(len(all))*p), len(all)-1)].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkGetSettings measures GET /settings over the Unix socket. Target: p99 <= 2 ms.
func BenchmarkGetSettings(b *testing.B) {
	for _, n := range []int{1, 50} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			h := benchServer(b)
			ctx := context.Background()
			runClients(b, h, n, func(c *client.Client, _, _ int) (time.Duration, error) {
				start := time.Now()
				_, err := c.Do(ctx, http.MethodGet, "/settings", nil)
				return time.Since(start), err
			})
		})
	}
}

// BenchmarkCommitAndApply measures POST /tx/commit_and_apply of a one-key change (motd, which
// renders /etc/motd and restarts nothing), each client in its own transaction. The PATCH that
// stages the change is not counted in the percentiles. Target: p50 <= 20 ms.
func BenchmarkCommitAndApply(b *testing.B) {
	for _, n := range []int{1, 50} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			h := benchServer(b)
			ctx := context.Background()
			runClients(b, h, n, func(c *client.Client, w, i int) (time.Duration, error) {
				tx := fmt.Sprintf("bench-%d", w)
				if err := c.PatchTx(ctx, tx, []byte(fmt.Sprintf(`{"motd":"w%d-%d"}`, w, i))); err != nil {
					return 0, err
				}
				start := time.Now()
				res, err := c.CommitAndApplyTx(ctx, tx)
				if err == nil && len(res.Changed) != 1 {
					err = fmt.Errorf("commit changed %q, want the motd", res.Changed)
				}
				return time.Since(start), err
			})
		})
	}
}
