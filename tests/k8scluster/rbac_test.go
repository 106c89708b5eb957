package k8scluster

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

// TestBootstrapRBAC checks that each step of TLS bootstrapping is granted to the identity that
// takes it: a bootstrap token's group creates CSRs and has them auto-approved, a node renews
// its own, and the apiserver's kubelet client may use the kubelet API.
func TestBootstrapRBAC(t *testing.T) {
	type grant struct{ role, kind, subject string }
	got := map[grant]bool{}
	names := map[string]bool{}
	for _, b := range BootstrapRBAC() {
		if names[b.Name] {
			t.Errorf("binding %s twice", b.Name)
		}
		names[b.Name] = true
		if b.RoleRef.Kind != "ClusterRole" || b.RoleRef.APIGroup != rbacv1.GroupName {
			t.Errorf("%s: roleRef %+v, want a ClusterRole of %s", b.Name, b.RoleRef, rbacv1.GroupName)
		}
		for _, s := range b.Subjects {
			if s.APIGroup != rbacv1.GroupName {
				t.Errorf("%s: subject %+v: apiGroup must be %s for users and groups", b.Name, s, rbacv1.GroupName)
			}
			got[grant{b.RoleRef.Name, s.Kind, s.Name}] = true
		}
	}
	for _, want := range []grant{
		{"system:node-bootstrapper", "Group", "system:bootstrappers"},
		{"system:certificates.k8s.io:certificatesigningrequests:nodeclient", "Group", "system:bootstrappers"},
		{"system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", "Group", "system:nodes"},
		{"system:kubelet-api-admin", "User", "kube-apiserver-kubelet-client"},
	} {
		if !got[want] {
			t.Errorf("no binding of %s to %s %s", want.role, want.kind, want.subject)
		}
	}
	if len(got) != 4 {
		t.Errorf("%d grants, want exactly the 4 above: %v", len(got), got)
	}
}
