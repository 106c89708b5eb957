package cni

import (
	"testing"

	"github.com/containernetworking/cni/libcni"
)

func TestConfList(t *testing.T) {
	b, err := Default().ConfList()
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		t.Fatalf("CNI does not take the configuration: %v\n%s", err, b)
	}
	var types []string
	for _, p := range list.Plugins {
		types = append(types, p.Network.Type)
	}
	if len(types) != 2 || types[0] != "bridge" || types[1] != "portmap" {
		t.Errorf("plugins %v, want bridge then portmap", types)
	}
	if list.Plugins[0].Network.IPAM.Type != "host-local" {
		t.Errorf("IPAM %q, want host-local", list.Plugins[0].Network.IPAM.Type)
	}
	if _, err := libcni.ConfListFromBytes(loopback); err != nil {
		t.Errorf("loopback: %v", err)
	}
}
