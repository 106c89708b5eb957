package policy

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ballast-os/ballast/tests/testutil"
	"github.com/ballast-os/ballast/trust/tpm/pcr"
	"github.com/google/go-tpm-tools/simulator"
	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

var keys struct {
	once sync.Once
	a, b *rsa.PrivateKey
}

// testKeys returns two RSA-2048 keys, generated once: generation is the slow part of the tests.
func testKeys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	keys.once.Do(func() {
		var err error
		if keys.a, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
		if keys.b, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	})
	return keys.a, keys.b
}

func val(s string) []byte { v := pcr.ExtendData(pcr.Zero, []byte(s)); return v.Bytes() }

// TestPCRDigestMatchesGoTPM compares with go-tpm's own policy calculator, an implementation
// written independently from the same specification.
func TestPCRDigestMatchesGoTPM(t *testing.T) {
	for name, values := range map[string]map[int][]byte{
		"pcr 11":   {11: val("a")},
		"pcr 7":    {7: val("b")},
		"7 and 11": {11: val("c"), 7: val("d")},
		"0 and 23": {0: val("e"), 23: val("f")},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := PCRDigest(Zero(), values)
			if err != nil {
				t.Fatal(err)
			}
			calc, _ := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
			var pcrs []int
			h := sha256.New()
			for p := 0; p <= MaxPCR; p++ {
				if v, ok := values[p]; ok {
					pcrs = append(pcrs, p)
					h.Write(v)
				}
			}
			sel, _ := Selection(pcrs)
			if err := (tpm2.PolicyPCR{PcrDigest: tpm2.TPM2BDigest{Buffer: h.Sum(nil)}, Pcrs: sel}).Update(calc); err != nil {
				t.Fatal(err)
			}
			if want := calc.Hash().Digest; !bytes.Equal(got, want) {
				t.Fatalf("PCRDigest = %x, go-tpm = %x", got, want)
			}
		})
	}
}

func TestPCRDigestBadInput(t *testing.T) {
	for name, tc := range map[string]struct {
		prev   []byte
		values map[int][]byte
	}{
		"short prev": {make([]byte, 20), map[int][]byte{11: val("a")}},
		"no pcrs":    {Zero(), nil},
		"pcr 24":     {Zero(), map[int][]byte{24: val("a")}},
		"pcr -1":     {Zero(), map[int][]byte{-1: val("a")}},
		"sha1 value": {Zero(), map[int][]byte{11: make([]byte, 20)}},
	} {
		if _, err := PCRDigest(tc.prev, tc.values); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestAuthorizeMatchesGoTPM(t *testing.T) {
	a, _ := testKeys(t)
	name, err := KeyName(&a.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range [][]byte{nil, []byte("ref")} {
		calc, _ := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
		if err := (tpm2.PolicyAuthorize{PolicyRef: tpm2.TPM2BDigest{Buffer: ref}, KeySign: tpm2.TPM2BName{Buffer: name}}).Update(calc); err != nil {
			t.Fatal(err)
		}
		if got, want := Authorize(name, ref), calc.Hash().Digest; !bytes.Equal(got, want) {
			t.Fatalf("Authorize(ref %q) = %x, go-tpm = %x", ref, got, want)
		}
	}
}

func TestRSAPublicRejects(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RSAPublic(&small.PublicKey); err == nil {
		t.Error("RSA-1024 accepted")
	}
	if _, err := RSAPublic(nil); err == nil {
		t.Error("nil key accepted")
	}
	if _, err := Sign(make([]byte, Size), small); err == nil {
		t.Error("Sign with RSA-1024 accepted")
	}
}

func TestFileRoundTripAndFind(t *testing.T) {
	a, b := testKeys(t)
	fpA, _ := Fingerprint(&a.PublicKey)
	e1, err := NewEntry(val("uki 1"), a)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := NewEntry(val("uki 2"), a)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := NewEntry(val("uki b"), b)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := NewEntry(val("uki 1"), a)
	if !equalEntry(again, e1) {
		t.Fatal("signing is not deterministic")
	}
	raw, err := Marshal(File{SHA256: []Entry{e1, e2, eb}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(raw), `{"sha256":[{"pcrs":[11],"pkfp":"`) {
		t.Fatalf("unexpected JSON shape: %s", raw)
	}
	f, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pcr11   string
		wantErr error
		want    Entry
	}{
		{"uki 1", nil, e1},
		{"uki 2", nil, e2},
		{"uki b", ErrOtherKey, Entry{}},
		{"unsigned", ErrNoPolicy, Entry{}},
	} {
		got, err := f.Find(val(tc.pcr11), fpA)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("Find(%s) error = %v, want %v", tc.pcr11, err, tc.wantErr)
			continue
		}
		if err == nil {
			if got.Sig != tc.want.Sig {
				t.Errorf("Find(%s) = %+v, want %+v", tc.pcr11, got, tc.want)
			}
			if err := got.Verify(&a.PublicKey); err != nil {
				t.Error(err)
			}
			if err := got.Verify(&b.PublicKey); err == nil {
				t.Error("verified with the wrong key")
			}
		}
	}
}

func TestParseBad(t *testing.T) {
	for name, in := range map[string]string{
		"not json":  `{"sha256":`,
		"bad pol":   `{"sha256":[{"pcrs":[11],"pkfp":"00","pol":"xyz","sig":"AAAA"}]}`,
		"short pol": `{"sha256":[{"pcrs":[11],"pkfp":"00","pol":"0011","sig":"AAAA"}]}`,
		"bad sig":   `{"sha256":[{"pcrs":[11],"pkfp":"00","pol":"` + strings.Repeat("00", 32) + `","sig":"!!"}]}`,
		"bad pcr":   `{"sha256":[{"pcrs":[99],"pkfp":"00","pol":"` + strings.Repeat("00", 32) + `","sig":"AAAA"}]}`,
	} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Other banks are systemd's business, not an error.
	if _, err := Parse([]byte(`{"sha1":[{"pcrs":[11],"pkfp":"x","pol":"y","sig":"z"}],"sha256":[]}`)); err != nil {
		t.Errorf("file with a sha1 bank: %v", err)
	}
}

// TestMatchesSystemdMeasureSign has systemd 252 sign the same UKI with the same key: PKCS#1 v1.5
// is deterministic, so pkfp, pol and sig must all be identical, which pins the file format, the
// fingerprint rule and what is signed.
func TestMatchesSystemdMeasureSign(t *testing.T) {
	tool := ""
	for _, p := range []string{"/usr/lib/systemd/systemd-measure", "/lib/systemd/systemd-measure"} {
		if _, err := os.Stat(p); err == nil {
			tool = p
		}
	}
	testutil.Need(t, tool != "", "systemd-measure not found (apt-get install systemd)")
	a, _ := testKeys(t)
	dir := t.TempDir()
	der, _ := x509.MarshalPKCS8PrivateKey(a)
	pubDER, _ := x509.MarshalPKIXPublicKey(&a.PublicKey)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	priv := write("priv.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	pub := write("pub.pem", pubPEM)
	linux := []byte("a kernel")
	osrel := []byte("ID=ballast\n")
	// systemd 252 has a TPM compute the policy digest (a trial session), so it gets swtpm.
	out, err := exec.Command(tool, "sign", "--bank=sha256", "--phase=",
		"--linux="+write("linux", linux), "--osrel="+write("osrel", osrel), "--pcrpkey="+pub,
		"--private-key="+priv, "--public-key="+pub, "--tpm2-device="+swtpm(t)).Output()
	if err != nil {
		t.Fatalf("systemd-measure sign: %v: %s", err, exitStderr(err))
	}
	theirs, err := Parse(out)
	if err != nil {
		t.Fatalf("parsing systemd-measure's output %s: %v", out, err)
	}
	pcr11 := pcr.PredictUKI(map[string][]byte{".linux": linux, ".osrel": osrel, ".pcrpkey": pubPEM})
	ours, err := NewEntry(pcr11.Bytes(), a)
	if err != nil {
		t.Fatal(err)
	}
	if len(theirs.SHA256) != 1 {
		t.Fatalf("systemd-measure wrote %d sha256 entries: %s", len(theirs.SHA256), out)
	}
	got := theirs.SHA256[0]
	if !equalEntry(got, ours) {
		t.Fatalf("systemd-measure: %+v\nours:           %+v", got, ours)
	}
}

func equalEntry(a, b Entry) bool {
	return len(a.PCRs) == len(b.PCRs) && a.PCRs[0] == b.PCRs[0] && strings.EqualFold(a.PKFP, b.PKFP) &&
		strings.EqualFold(a.Pol, b.Pol) && a.Sig == b.Sig
}

// TestOnSimulator runs the policy commands on a TPM and compares each session digest with the
// software computation: PolicyPCR in a trial session, the Name of the loaded key, and the real
// PolicyPCR(11) -> PolicyAuthorize -> PolicyPCR(7) chain the unlock performs.
func TestOnSimulator(t *testing.T) {
	sim, err := simulator.GetWithFixedSeedInsecure(1)
	if err != nil {
		t.Fatal(err)
	}
	tpm := transport.FromReadWriteCloser(sim)
	defer tpm.Close()
	a, _ := testKeys(t)

	// Give PCRs 7 and 11 values, as a boot would.
	for p, data := range map[int]string{7: "secure boot", 11: "uki"} {
		d := sha256.Sum256([]byte(data))
		_, err := tpm2.PCRExtend{
			PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(p), Auth: tpm2.PasswordAuth(nil)},
			Digests:   tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: d[:]}}},
		}.Execute(tpm)
		if err != nil {
			t.Fatal(err)
		}
	}
	pcr7 := pcr.ExtendData(pcr.Zero, []byte("secure boot")).Bytes()
	pcr11 := pcr.ExtendData(pcr.Zero, []byte("uki")).Bytes()

	t.Run("trial PolicyPCR", func(t *testing.T) {
		sess, closer, err := tpm2.PolicySession(tpm, tpm2.TPMAlgSHA256, 16, tpm2.Trial())
		if err != nil {
			t.Fatal(err)
		}
		defer closer()
		values := map[int][]byte{7: val("x"), 11: val("y")}
		h := sha256.New()
		h.Write(values[7])
		h.Write(values[11])
		sel, _ := Selection([]int{7, 11})
		if _, err := (tpm2.PolicyPCR{PolicySession: sess.Handle(), PcrDigest: tpm2.TPM2BDigest{Buffer: h.Sum(nil)}, Pcrs: sel}).Execute(tpm); err != nil {
			t.Fatal(err)
		}
		got := digest(t, tpm, sess)
		want, _ := PCRDigest(Zero(), values)
		if !bytes.Equal(got, want) {
			t.Fatalf("TPM %x, software %x", got, want)
		}
	})

	t.Run("authorize chain", func(t *testing.T) {
		tmpl, err := RSAPublic(&a.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		key, err := tpm2.LoadExternal{InPublic: tpm2.New2B(tmpl), Hierarchy: tpm2.TPMRHOwner}.Execute(tpm)
		if err != nil {
			t.Fatal(err)
		}
		defer tpm2.FlushContext{FlushHandle: key.ObjectHandle}.Execute(tpm)
		name, _ := KeyName(&a.PublicKey)
		if !bytes.Equal(key.Name.Buffer, name) {
			t.Fatalf("TPM key name %x, software %x", key.Name.Buffer, name)
		}
		e, err := NewEntry(pcr11, a)
		if err != nil {
			t.Fatal(err)
		}
		pol, _ := e.Policy()
		sig, _ := e.Signature()
		ver, err := tpm2.VerifySignature{
			KeyHandle: key.ObjectHandle,
			Digest:    tpm2.TPM2BDigest{Buffer: AHash(pol)},
			Signature: tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgRSASSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgRSASSA,
				&tpm2.TPMSSignatureRSA{Hash: tpm2.TPMAlgSHA256, Sig: tpm2.TPM2BPublicKeyRSA{Buffer: sig}})},
		}.Execute(tpm)
		if err != nil {
			t.Fatal(err)
		}
		sess, closer, err := tpm2.PolicySession(tpm, tpm2.TPMAlgSHA256, 16)
		if err != nil {
			t.Fatal(err)
		}
		defer closer()
		sel11, _ := Selection([]int{11})
		if _, err := (tpm2.PolicyPCR{PolicySession: sess.Handle(), Pcrs: sel11}).Execute(tpm); err != nil {
			t.Fatal(err)
		}
		if got := digest(t, tpm, sess); !bytes.Equal(got, pol) {
			t.Fatalf("after PolicyPCR(11): TPM %x, approved %x", got, pol)
		}
		_, err = tpm2.PolicyAuthorize{PolicySession: sess.Handle(), ApprovedPolicy: tpm2.TPM2BDigest{Buffer: pol},
			KeySign: key.Name, CheckTicket: ver.Validation}.Execute(tpm)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := digest(t, tpm, sess), Authorize(name, nil); !bytes.Equal(got, want) {
			t.Fatalf("after PolicyAuthorize: TPM %x, software %x", got, want)
		}
		sel7, _ := Selection([]int{7})
		if _, err := (tpm2.PolicyPCR{PolicySession: sess.Handle(), Pcrs: sel7}).Execute(tpm); err != nil {
			t.Fatal(err)
		}
		want, err := Sealing(&a.PublicKey, pcr7)
		if err != nil {
			t.Fatal(err)
		}
		if got := digest(t, tpm, sess); !bytes.Equal(got, want) {
			t.Fatalf("after PolicyPCR(7): TPM %x, Sealing %x", got, want)
		}
		t.Logf("sealing policy %s", hex.EncodeToString(want))
	})
}

func digest(t *testing.T, tpm transport.TPM, sess tpm2.Session) []byte {
	t.Helper()
	d, err := tpm2.PolicyGetDigest{PolicySession: sess.Handle()}.Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	return d.PolicyDigest.Buffer
}

func exitStderr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// swtpm starts a software TPM on loopback for the test and returns the TCTI string systemd takes
// as --tpm2-device.
func swtpm(t *testing.T) string {
	t.Helper()
	bin := testutil.Tool(t, "swtpm", "swtpm")
attempts:
	for attempt := 0; ; attempt++ {
		// A free port is picked by letting the kernel choose and releasing it; another process
		// may take it, or the next one, in between, hence the retry. The swtpm TCTI expects the
		// control port right after the server port.
		server := freePort(t)
		ctrl := server + 1
		cmd := exec.Command(bin, "socket", "--tpm2",
			"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", server),
			"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", ctrl),
			"--tpmstate", "dir="+t.TempDir(), "--flags", "not-need-init,startup-clear")
		var stderr testutil.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting swtpm: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-exited })
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-exited:
				if attempt < 3 {
					continue attempts
				}
				t.Fatalf("swtpm exited: %s", stderr.String())
			default:
			}
			if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", server)); err == nil {
				c.Close()
				return fmt.Sprintf("swtpm:host=127.0.0.1,port=%d", server)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("swtpm did not listen within 10s: %s", stderr.String())
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
