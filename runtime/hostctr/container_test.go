package hostctr

import (
	"testing"

	"github.com/ballast-os/ballast/contract"
)

// A container restarts when anything that makes it changes, and only then.
func TestDesiredHash(t *testing.T) {
	m := &Manager{}
	base := contract.HostContainer{Name: "web", Source: "r.example/web:1", Enabled: true, UserData: "aGk="}
	h := m.desiredHost(base, 0, contract.ContainerDefaults{}).hash
	if again := m.desiredHost(base, 0, contract.ContainerDefaults{}).hash; again != h {
		t.Fatal("the same configuration hashes differently")
	}
	changes := map[string]func(*contract.HostContainer, *contract.ContainerDefaults){
		"source":         func(c *contract.HostContainer, _ *contract.ContainerDefaults) { c.Source = "r.example/web:2" },
		"user data":      func(c *contract.HostContainer, _ *contract.ContainerDefaults) { c.UserData = "aG8=" },
		"superpowered":   func(c *contract.HostContainer, _ *contract.ContainerDefaults) { c.Superpowered = true },
		"api access":     func(c *contract.HostContainer, _ *contract.ContainerDefaults) { c.APIAccess = true },
		"host network":   func(c *contract.HostContainer, _ *contract.ContainerDefaults) { c.HostNetwork = true },
		"user namespace": func(c *contract.HostContainer, _ *contract.ContainerDefaults) { c.UserNS = true },
		"default memory": func(_ *contract.HostContainer, d *contract.ContainerDefaults) { d.Memory = 1 << 30 },
		"default caps": func(_ *contract.HostContainer, d *contract.ContainerDefaults) {
			d.Capabilities = map[string]bool{"CAP_CHOWN": false}
		},
	}
	for name, change := range changes {
		c, d := base, contract.ContainerDefaults{}
		change(&c, &d)
		if m.desiredHost(c, 0, d).hash == h {
			t.Errorf("a change of %s does not restart the container", name)
		}
	}
}

func TestExitText(t *testing.T) {
	for code, want := range map[uint32]string{0: "exit status 0", 3: "exit status 3", 137: "signal: killed", 143: "signal: terminated"} {
		if got := exitText(code); got != want {
			t.Errorf("exitText(%d) = %q, want %q", code, got, want)
		}
	}
}

func TestLineWriter(t *testing.T) {
	w := newLineWriter(nil, "x")
	w.Write([]byte("a\npartial"))
	if string(w.buf) != "partial" {
		t.Errorf("held back %q, want the unfinished line", w.buf)
	}
	w.Write(make([]byte, contract.MaxLogText*2))
	if len(w.buf) >= contract.MaxLogText {
		t.Errorf("a line longer than a record is held back whole (%d bytes)", len(w.buf))
	}
	w.Flush()
	if len(w.buf) != 0 {
		t.Error("Flush kept bytes")
	}
}
