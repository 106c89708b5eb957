package ntpserver

import (
	"testing"
	"time"

	"github.com/beevik/ntp"
)

// The server is checked with an NTP client that is not Ballast's, so a mistake it shared with the
// client under test could not hide.
func TestServerWithIndependentClient(t *testing.T) {
	s, err := Listen("127.0.0.1:0", Answer{Offset: 3 * time.Second, Stratum: 2, RefID: [4]byte{192, 0, 2, 1},
		RootDelay: 25 * time.Millisecond, RootDispersion: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := s.Addr().String()
	opts := ntp.QueryOptions{Timeout: 2 * time.Second}

	r, err := ntp.QueryWithOptions(addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		t.Errorf("beevik/ntp finds the answer invalid: %v", err)
	}
	if d := r.ClockOffset - 3*time.Second; d.Abs() > 20*time.Millisecond {
		t.Errorf("offset %v, want 3s", r.ClockOffset)
	}
	if r.Stratum != 2 || r.ReferenceString() != "192.0.2.1" || r.Version != 4 || r.Leap != ntp.LeapNoWarning {
		t.Errorf("stratum %d, reference %s, version %d, leap %d", r.Stratum, r.ReferenceString(), r.Version, r.Leap)
	}
	if d := r.RootDelay - 25*time.Millisecond; d.Abs() > time.Millisecond {
		t.Errorf("root delay %v", r.RootDelay)
	}
	if d := r.RootDispersion - 10*time.Millisecond; d.Abs() > time.Millisecond {
		t.Errorf("root dispersion %v", r.RootDispersion)
	}

	// The offset changes while it runs.
	s.Set(Answer{Offset: -5 * time.Second})
	if r, err = ntp.QueryWithOptions(addr, opts); err != nil {
		t.Fatal(err)
	}
	if d := r.ClockOffset + 5*time.Second; d.Abs() > 20*time.Millisecond {
		t.Errorf("offset %v, want -5s", r.ClockOffset)
	}

	s.Set(Answer{Kiss: "RATE"})
	if r, err = ntp.QueryWithOptions(addr, opts); err != nil {
		t.Fatal(err)
	}
	if !r.IsKissOfDeath() || r.KissCode != "RATE" {
		t.Errorf("kiss-o'-death %v, code %q", r.IsKissOfDeath(), r.KissCode)
	}

	s.Set(Answer{Leap: 3})
	if r, err = ntp.QueryWithOptions(addr, opts); err != nil {
		t.Fatal(err)
	}
	if r.Validate() != ntp.ErrInvalidLeapSecond {
		t.Errorf("leap alarm: Validate = %v", r.Validate())
	}

	s.Set(Answer{Silent: true})
	if _, err = ntp.QueryWithOptions(addr, ntp.QueryOptions{Timeout: 200 * time.Millisecond}); err == nil {
		t.Error("a silent server answered")
	}
	if n := s.Requests(); n != 5 {
		t.Errorf("requests counted: %d, want 5", n)
	}
}
