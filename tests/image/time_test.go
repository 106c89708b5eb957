package image

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/tests/nettest"
	"github.com/ballast-os/ballast/tests/ntpserver"
	"github.com/ballast-os/ballast/tests/qemu"
	"github.com/ballast-os/ballast/tests/testutil"
)

// The guest's second NIC sits on a tap device in a network namespace of the test's, where the
// test answers DHCP and NTP: QEMU's user networking carries no UDP to the host.
var (
	timeNet     = netip.MustParsePrefix("10.0.3.0/24")
	timeGuest   = netip.MustParseAddr("10.0.3.15")
	timeHonest  = netip.MustParseAddr("10.0.3.1") // answers from the host's clock; also the DHCP server
	timeLiar    = netip.MustParseAddr("10.0.3.2") // answers 5 s ahead
	liarOffset  = 5 * time.Second
	rtcBehind   = 10 * time.Minute // the guest's hardware clock at boot
	timeStratum = 3                // the honest server's
)

// TestTimeSync boots a guest whose hardware clock is 10 minutes slow, with settings.ntp pointing
// at an honest server by a name from settings.network.hosts: the time service must step the clock
// once and then find it right. Then the settings point it at a server 5 s ahead, and the restarted
// service must step the guest's clock by those 5 s.
func TestTimeSync(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	testutil.Root(t, "a network namespace and a tap device carry the guest's NTP traffic")
	if err := qemu.Available(); err != nil {
		t.Fatalf("QEMU is needed for image tests: %v", err)
	}
	ns := nettest.NewNetns(t)
	tap := ns.Tap(t, "tap0", netip.PrefixFrom(timeHonest, timeNet.Bits()).String(), netip.PrefixFrom(timeLiar, timeNet.Bits()).String())
	serveLease(t, ns, "tap0", timeHonest, timeGuest)
	honest := serveNTP(t, ns, timeHonest, ntpserver.Answer{Stratum: uint8(timeStratum), RefID: [4]byte{192, 0, 2, 1},
		RootDelay: 2 * time.Millisecond, RootDispersion: time.Millisecond})
	liar := serveNTP(t, ns, timeLiar, ntpserver.Answer{Stratum: 1, RefID: [4]byte{'G', 'P', 'S'}, Offset: liarOffset})

	cidata := makeCidata(t, fmt.Sprintf(`[settings.ntp]
time-servers = ["ntp.test"]

[settings.network]
hosts = [["%s", ["ntp.test"]]]
`, timeHonest))
	port := freePort(t)
	log := filepath.Join(t.TempDir(), "console.log")
	rtc := time.Now().UTC().Add(-rtcBehind)
	start := time.Now()
	vm, err := startVM(t, qemu.Config{Disk: copyDisk(t, 0), ExtraDisks: []string{cidata}, LogFile: log,
		HostFwd: []string{fmt.Sprintf("tcp:127.0.0.1:%d-:%d", port, contract.DevAPIPort)},
		TapNICs: []qemu.TapNIC{{File: tap, ID: "ntp"}},
		// The RTC runs from this time on; the kernel reads it at boot.
		ExtraArgs: []string{"-rtc", "base=" + rtc.Format("2006-01-02T15:04:05")},
		Timeout:   5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Kill()
		if t.Failed() {
			t.Logf("console log: %s", vm.Console())
		}
	})
	expect(t, vm, readyRE.String())
	ready := time.Now()
	t.Logf("QEMU start → ready line in %.1fs", ready.Sub(start).Seconds())
	pki, err := client.LoadPKI(filepath.Join(buildDir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	c := remoteClient(t, fmt.Sprintf("https://127.0.0.1:%d", port), pki)

	// Synchronised with the honest server, after a step of the 10 minutes and a poll that found
	// the clock right.
	tm, clockErr := waitTime(t, c, "the boot step and a good poll after it", func(tm apitypes.Time) bool {
		return pollAfterStep(tm) && tm.LastSync.Server == "ntp.test"
	})
	t.Logf("ready line → synced after the boot step in %.1fs", time.Since(ready).Seconds())
	ls := tm.LastSync
	if ls.Address != netip.AddrPortFrom(timeHonest, 123).String() || ls.Stratum != timeStratum || ls.ReferenceID != "192.0.2.1" ||
		ls.DelaySeconds <= 0 || ls.RootDistanceSeconds < 0.002 {
		t.Errorf("last sync %+v; want %s, stratum %d, reference 192.0.2.1", *ls, timeHonest, timeStratum)
	}
	if off := ls.OffsetSeconds; off < -0.05 || off > 0.05 {
		t.Errorf("offset after the step %+.6fs, want within 50 ms", off)
	}
	if s := tm.LastStep.Seconds; s < rtcBehind.Seconds()-2 || s > rtcBehind.Seconds()+2 {
		t.Errorf("boot step %+.3fs, want about +%v", s, rtcBehind)
	}
	if clockErr.Abs() > 500*time.Millisecond {
		t.Errorf("the guest's clock is %v off the host's after the sync", clockErr)
	}
	if !tm.Kernel.Synchronised || tm.Kernel.MaxErrorSeconds <= 0 || tm.Kernel.MaxErrorSeconds > 1 {
		t.Errorf("kernel clock %+v: want synchronised with a small max error", tm.Kernel)
	}
	if !slices.Equal(tm.Servers, []string{"ntp.test"}) || tm.PollSeconds < 32 || tm.NextPoll == nil {
		t.Errorf("time status %+v", tm.TimeStatus)
	}

	// A server 5 s ahead: the changed setting restarts the time service, which steps again.
	if err := c.Patch(t.Context(), []byte(fmt.Sprintf(`{"ntp":{"time-servers":["%s"]}}`, timeLiar))); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	res, err := c.CommitAndApplyTx(t.Context(), "")
	if err != nil || !slices.Contains(res.Restarted, "time") || !slices.Contains(res.Files, contract.TimeConfig) {
		t.Fatalf("commit_and_apply of the new servers: %+v, %v; want %s rewritten and time restarted", res, err, contract.TimeConfig)
	}
	before := tm.LastStep.Time
	tm, clockErr = waitTime(t, c, "the step to the server 5 s ahead", func(tm apitypes.Time) bool {
		return pollAfterStep(tm) && !tm.LastStep.Time.Equal(before)
	})
	t.Logf("settings change → synced with the new server after its step in %.1fs", time.Since(changed).Seconds())
	if s := tm.LastStep.Seconds; s < liarOffset.Seconds()-0.1 || s > liarOffset.Seconds()+0.1 {
		t.Errorf("step %+.6fs, want %+v", s, liarOffset)
	}
	if ls := tm.LastSync; ls.Server != timeLiar.String() || ls.Stratum != 1 || ls.ReferenceID != "GPS" || ls.OffsetSeconds > 0.05 || ls.OffsetSeconds < -0.05 {
		t.Errorf("last sync %+v", *ls)
	}
	if d := clockErr - liarOffset; d.Abs() > 500*time.Millisecond {
		t.Errorf("the guest's clock is %v off the host's, want %v", clockErr, liarOffset)
	}
	if honest.Requests() == 0 || liar.Requests() == 0 {
		t.Errorf("requests: honest %d, liar %d", honest.Requests(), liar.Requests())
	}
	// The service says what it did in its log.
	logs, err := c.Logs(t.Context(), "time", false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(logs)
	logs.Close()
	if err != nil {
		t.Fatalf("the time service's log: %v", err)
	}
	// The RTC and the kernel reading it both count whole seconds, and an emulated guest's clock
	// drifts while it boots under load: the boot step is within 2 s of rtcBehind, as above.
	for _, want := range []string{`ballast: time stepped by \+(59[89]|60[012])\.\d+s from ntp\.test \(10\.0\.3\.1:123\)`,
		`ballast: time synced with ntp\.test \(10\.0\.3\.1:123\) stratum=3 `, `ballast: time stepped by \+(4\.9[5-9]|5\.0[0-4])\d*s from 10\.0\.3\.2 `} {
		if !regexp.MustCompile(want).Match(b) {
			t.Errorf("the time service's log lacks a line matching %q:\n%s", want, b)
		}
	}
}

// pollAfterStep reports whether the time service synchronised again after its last step. The
// poll that steps records its sync just after the step; the next one comes seconds later.
func pollAfterStep(tm apitypes.Time) bool {
	ls, step := tm.LastSync, tm.LastStep
	return tm.State == contract.TimeSynced && ls != nil && step != nil && ls.Time.Sub(step.Time) > time.Second
}

// waitTime polls GET /time until done accepts an answer, and returns it with how far the guest's
// clock was from the host's (the host's clock read halfway through the request).
func waitTime(t *testing.T, c *client.Client, what string, done func(apitypes.Time) bool) (apitypes.Time, time.Duration) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var last apitypes.Time
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		sent := time.Now()
		tm, err := c.Time(ctx)
		got := time.Now()
		cancel()
		if err == nil && done(tm) {
			return tm, tm.Clock.Sub(sent.Add(got.Sub(sent) / 2))
		}
		last, lastErr = tm, err
		time.Sleep(time.Second)
	}
	log := ""
	if rc, err := c.Logs(t.Context(), "time", false); err == nil {
		b, _ := io.ReadAll(rc)
		rc.Close()
		log = string(b)
	}
	t.Fatalf("waiting for %s: last GET /time %+v (sync %+v, step %+v), %v\ntime service log:\n%s", what, last.TimeStatus, last.LastSync, last.LastStep, lastErr, log)
	return apitypes.Time{}, 0
}

// serveNTP runs an NTP server on port 123 of addr inside the namespace.
func serveNTP(t *testing.T, ns *nettest.Netns, addr netip.Addr, a ntpserver.Answer) *ntpserver.Server {
	t.Helper()
	conn, err := ns.ListenPacket("udp", netip.AddrPortFrom(addr, 123).String())
	if err != nil {
		t.Fatal(err)
	}
	s := ntpserver.Serve(conn, a, nil)
	t.Cleanup(func() { s.Close() })
	return s
}

// serveLease answers DHCP on ifname inside the namespace with one lease, guest's address on the
// tap's network, and neither router nor name servers: the guest's default route and resolver stay
// on its first NIC.
func serveLease(t *testing.T, ns *nettest.Netns, ifname string, server, guest netip.Addr) {
	t.Helper()
	handler := func(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
		var reply dhcpv4.MessageType
		switch m.MessageType() {
		case dhcpv4.MessageTypeDiscover:
			reply = dhcpv4.MessageTypeOffer
		case dhcpv4.MessageTypeRequest:
			reply = dhcpv4.MessageTypeAck
		default:
			return
		}
		resp, err := dhcpv4.NewReplyFromRequest(m,
			dhcpv4.WithMessageType(reply),
			dhcpv4.WithYourIP(guest.AsSlice()),
			dhcpv4.WithServerIP(server.AsSlice()),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(server.AsSlice())),
			dhcpv4.WithNetmask(net.CIDRMask(timeNet.Bits(), 32)),
			dhcpv4.WithLeaseTime(3600))
		if err != nil {
			t.Errorf("DHCP reply: %v", err)
			return
		}
		conn.WriteTo(resp.ToBytes(), peer)
	}
	var srv *server4.Server
	err := ns.Do(func() (err error) {
		srv, err = server4.NewServer(ifname, &net.UDPAddr{Port: dhcpv4.ServerPort}, handler)
		return err
	})
	if err != nil {
		t.Fatalf("DHCP server on %s: %v", ifname, err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Close() })
}
