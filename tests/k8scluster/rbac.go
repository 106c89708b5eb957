package k8scluster

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The cluster roles the apiserver's bootstrap policy makes; the bindings below are the ones
// kubeadm makes so that kubelets join with a bootstrap token.
const (
	// RoleNodeBootstrapper may create and read CertificateSigningRequests.
	RoleNodeBootstrapper = "system:node-bootstrapper"
	// RoleNodeClient lets the csrapproving controller approve a bootstrapper's request for a node
	// client certificate (signer kubernetes.io/kube-apiserver-client-kubelet).
	RoleNodeClient = "system:certificates.k8s.io:certificatesigningrequests:nodeclient"
	// RoleSelfNodeClient lets it approve a node's renewal of its own client certificate.
	RoleSelfNodeClient = "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"
	// RoleKubeletAPIAdmin is everything on the kubelet's API (logs, exec, stats), for the
	// apiserver's client certificate: the kubelet's webhook authorisation asks about it.
	RoleKubeletAPIAdmin = "system:kubelet-api-admin"
	groupNodes          = "system:nodes"
)

// BootstrapRBAC is the ClusterRoleBindings for node TLS bootstrapping and for the apiserver's
// calls to kubelets.
func BootstrapRBAC() []*rbacv1.ClusterRoleBinding {
	bind := func(name, role, kind, subject string) *rbacv1.ClusterRoleBinding {
		return &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: kind, Name: subject}},
		}
	}
	return []*rbacv1.ClusterRoleBinding{
		bind("kubeadm:kubelet-bootstrap", RoleNodeBootstrapper, rbacv1.GroupKind, GroupBootstrappers),
		bind("kubeadm:node-autoapprove-bootstrap", RoleNodeClient, rbacv1.GroupKind, GroupBootstrappers),
		bind("kubeadm:node-autoapprove-certificate-rotation", RoleSelfNodeClient, rbacv1.GroupKind, groupNodes),
		bind("ballast-test:apiserver-kubelet", RoleKubeletAPIAdmin, rbacv1.UserKind, userKubeletClient),
	}
}
