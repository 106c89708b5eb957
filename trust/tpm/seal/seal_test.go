package seal

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/ballast-os/ballast/trust/tpm/pcr"
	"github.com/ballast-os/ballast/trust/tpm/policy"
	"github.com/google/go-tpm-tools/simulator"
	"github.com/google/go-tpm/tpm2/transport"
)

var keys struct {
	once sync.Once
	a, b *rsa.PrivateKey
	err  error
}

func testKeys(t testing.TB) (owner, other *rsa.PrivateKey) {
	t.Helper()
	keys.once.Do(func() {
		if keys.a, keys.err = rsa.GenerateKey(rand.Reader, 2048); keys.err != nil {
			return
		}
		keys.b, keys.err = rsa.GenerateKey(rand.Reader, 2048)
	})
	if keys.err != nil {
		t.Fatal(keys.err)
	}
	return keys.a, keys.b
}

// machine is a simulated TPM that the test boots into states.
type machine struct {
	t   testing.TB
	sim *simulator.Simulator
	tpm transport.TPM
}

// newMachine opens the simulator with a fixed seed; another seed is another TPM, with another
// owner seed and so another storage root key.
func newMachine(t testing.TB, seed int64) *machine {
	t.Helper()
	sim, err := simulator.GetWithFixedSeedInsecure(seed)
	if err != nil {
		t.Fatal(err)
	}
	m := &machine{t: t, sim: sim, tpm: transport.FromReadWriteCloser(sim)}
	t.Cleanup(m.close)
	return m
}

func (m *machine) close() {
	if !m.sim.IsClosed() {
		m.sim.Close()
	}
}

// boot resets the TPM as a reboot does and makes the measurements firmware and systemd-stub
// would: PCR 7 events, then the UKI's sections into PCR 11.
func (m *machine) boot(pcr7Events []string, uki map[string][]byte) {
	m.t.Helper()
	if err := m.sim.Reset(); err != nil {
		m.t.Fatal(err)
	}
	for _, e := range pcr7Events {
		m.extend(7, []byte(e))
	}
	for _, name := range pcr.UKISections {
		if name == ".pcrsig" || len(uki[name]) == 0 {
			continue
		}
		m.extend(11, append([]byte(name), 0))
		m.extend(11, uki[name])
	}
}

func (m *machine) extend(p int, data []byte) {
	m.t.Helper()
	if err := ExtendPCR(m.tpm, p, data); err != nil {
		m.t.Fatal(err)
	}
}

func (m *machine) pcr(p int) []byte {
	m.t.Helper()
	v, err := ReadPCRs(m.tpm, []int{p})
	if err != nil {
		m.t.Fatal(err)
	}
	return v[p]
}

func uki(version string) map[string][]byte {
	return map[string][]byte{".linux": []byte("kernel " + version), ".osrel": []byte("ID=ballast\nVERSION_ID=" + version + "\n"), ".cmdline": []byte("ro")}
}

func entry(t testing.TB, u map[string][]byte, key *rsa.PrivateKey) policy.Entry {
	t.Helper()
	v := pcr.PredictUKI(u)
	e, err := policy.NewEntry(v.Bytes(), key)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestSealUnseal(t *testing.T) {
	owner, other := testKeys(t)
	secureBoot := []string{"SecureBoot=1", "PK", "KEK", "db", "dbx"}
	uki1, uki2, uki3, unsigned := uki("1"), uki("2"), uki("3"), uki("4")
	sig := policy.File{SHA256: []policy.Entry{entry(t, uki1, owner), entry(t, uki2, owner), entry(t, uki3, other)}}
	secret := []byte("0123456789abcdef0123456789abcdef")

	m := newMachine(t, 1)
	m.boot(secureBoot, uki1)
	if got, want := m.pcr(11), pcr.PredictUKI(uki1); !bytes.Equal(got, want[:]) {
		t.Fatalf("PCR 11 after the simulated stub = %x, PredictUKI = %x", got, want)
	}
	sealed, err := Seal(m.tpm, secret, m.pcr(7), &owner.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(sealed)
	if err != nil {
		t.Fatal(err)
	}
	var stored Sealed
	if err := json.Unmarshal(raw, &stored); err != nil {
		t.Fatal(err)
	}
	t.Logf("sealed token: %d bytes of JSON", len(raw))

	for _, tc := range []struct {
		name    string
		pcr7    []string
		uki     map[string][]byte
		after   func()
		pub     *rsa.PublicKey
		wantErr error
	}{
		{name: "same UKI", pcr7: secureBoot, uki: uki1},
		{name: "signed update", pcr7: secureBoot, uki: uki2},
		{name: "UKI signed by another key, owner key offered", pcr7: secureBoot, uki: uki3, wantErr: ErrWrongKey},
		{name: "UKI signed by another key, that key offered", pcr7: secureBoot, uki: uki3, pub: &other.PublicKey, wantErr: ErrWrongKey},
		{name: "unsigned UKI", pcr7: secureBoot, uki: unsigned, wantErr: ErrNoSignature},
		{name: "db changed", pcr7: append(secureBoot[:len(secureBoot):len(secureBoot)], "db append"), uki: uki1, wantErr: ErrPCR7Changed},
		{name: "Secure Boot off", pcr7: []string{"SecureBoot=0"}, uki: uki2, wantErr: ErrPCR7Changed},
		{name: "after leave-initrd marker", pcr7: secureBoot, uki: uki1, wantErr: ErrNoSignature, after: func() {
			m.extend(11, []byte(pcr.LeaveInitrd))
			if got, want := m.pcr(11), pcr.LeaveInitrd.After(pcr.PredictUKI(uki1)); !bytes.Equal(got, want[:]) {
				t.Fatalf("PCR 11 after the marker = %x, predicted %x", got, want)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m.boot(tc.pcr7, tc.uki)
			if tc.after != nil {
				tc.after()
			}
			pub := &owner.PublicKey
			if tc.pub != nil {
				pub = tc.pub
			}
			got, err := Unseal(m.tpm, stored, sig, pub)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Unseal error = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				t.Logf("as expected: %v", err)
				return
			}
			if !bytes.Equal(got, secret) {
				t.Fatalf("Unseal = %q, want %q", got, secret)
			}
		})
	}

	t.Run("forged entry with the owner's fingerprint", func(t *testing.T) {
		forged := entry(t, unsigned, owner)
		forged.Sig = sig.SHA256[0].Sig // a real signature, of another policy
		m.boot(secureBoot, unsigned)
		_, err := Unseal(m.tpm, stored, policy.File{SHA256: []policy.Entry{forged}}, &owner.PublicKey)
		if !errors.Is(err, ErrNoSignature) {
			t.Fatalf("Unseal error = %v, want %v", err, ErrNoSignature)
		}
	})

	t.Run("another TPM", func(t *testing.T) {
		m.close()
		m2 := newMachine(t, 2)
		m2.boot(secureBoot, uki1)
		_, err := Unseal(m2.tpm, stored, sig, &owner.PublicKey)
		if !errors.Is(err, ErrCannotLoad) {
			t.Fatalf("Unseal error = %v, want %v", err, ErrCannotLoad)
		}
		t.Logf("as expected: %v", err)
	})
}

func TestSealBadInput(t *testing.T) {
	owner, _ := testKeys(t)
	m := newMachine(t, 3)
	pcr7 := m.pcr(7)
	for name, tc := range map[string]struct {
		secret, pcr7 []byte
		pub          *rsa.PublicKey
	}{
		"empty secret":    {nil, pcr7, &owner.PublicKey},
		"secret too long": {make([]byte, MaxSecret+1), pcr7, &owner.PublicKey},
		"short pcr7":      {[]byte("k"), pcr7[:20], &owner.PublicKey},
		"no key":          {[]byte("k"), pcr7, nil},
	} {
		if _, err := Seal(m.tpm, tc.secret, tc.pcr7, tc.pub); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Unseal(m.tpm, Sealed{Public: []byte{1}, Private: []byte{2}}, policy.File{}, &owner.PublicKey); err == nil {
		t.Error("Unseal of garbage: no error")
	}
}

func TestReadPCRsMany(t *testing.T) {
	m := newMachine(t, 4)
	m.extend(16, []byte("debug"))
	all := make([]int, 24)
	for i := range all {
		all[i] = i
	}
	got, err := ReadPCRs(m.tpm, all)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 24 {
		t.Fatalf("read %d PCRs, want 24", len(got))
	}
	if want := pcr.ExtendData(pcr.Zero, []byte("debug")); !bytes.Equal(got[16], want[:]) {
		t.Fatalf("PCR 16 = %x, want %x", got[16], want)
	}
	if _, err := ReadPCRs(m.tpm, []int{24}); err == nil {
		t.Error("PCR 24: no error")
	}
	if err := ExtendPCR(m.tpm, -1, nil); err == nil {
		t.Error("extending PCR -1: no error")
	}
}

// The benchmarks measure the TPM work of one seal and one unseal on the simulator (which runs
// the reference implementation's crypto in-process, so a hardware TPM is slower: its RSA and
// ECC run on a small microcontroller).
func BenchmarkSeal(b *testing.B) {
	owner, _ := testKeys(b)
	m := newMachine(b, 5)
	m.boot([]string{"SecureBoot=1"}, uki("1"))
	pcr7 := m.pcr(7)
	for b.Loop() {
		if _, err := Seal(m.tpm, []byte("secret"), pcr7, &owner.PublicKey); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnseal(b *testing.B) {
	owner, _ := testKeys(b)
	m := newMachine(b, 6)
	u := uki("1")
	m.boot([]string{"SecureBoot=1"}, u)
	s, err := Seal(m.tpm, []byte("secret"), m.pcr(7), &owner.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	sig := policy.File{SHA256: []policy.Entry{entry(b, u, owner)}}
	for b.Loop() {
		if _, err := Unseal(m.tpm, s, sig, &owner.PublicKey); err != nil {
			b.Fatal(err)
		}
	}
}
