package k8scluster

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// approveKubeletServing approves kubelet serving CSRs until ctx ends, polling: the few a test
// sees do not need a watch.
func approveKubeletServing(ctx context.Context, cs kubernetes.Interface, logf func(string, ...any)) {
	for ctx.Err() == nil {
		list, err := cs.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
		if err == nil {
			for i := range list.Items {
				csr := &list.Items[i]
				if csr.Spec.SignerName != certv1.KubeletServingSignerName || decided(csr) {
					continue
				}
				if err := ServingCSRAcceptable(csr); err != nil {
					logf("k8scluster: not approving %s: %v", csr.Name, err)
					continue
				}
				csr.Status.Conditions = append(csr.Status.Conditions, certv1.CertificateSigningRequestCondition{
					Type: certv1.CertificateApproved, Status: corev1.ConditionTrue,
					Reason: "BallastTestApprover", Message: "a node's own serving certificate",
				})
				if _, err := cs.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
					logf("k8scluster: approving %s: %v", csr.Name, err)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func decided(csr *certv1.CertificateSigningRequest) bool {
	return slices.ContainsFunc(csr.Status.Conditions, func(c certv1.CertificateSigningRequestCondition) bool {
		return c.Type == certv1.CertificateApproved || c.Type == certv1.CertificateDenied
	})
}

// ServingCSRAcceptable says whether a kubelet-serving CSR is a node asking for its own serving
// certificate: made by system:node:<name> in system:nodes, for CN system:node:<name>, O
// system:nodes, and no names but IP addresses and DNS names.
func ServingCSRAcceptable(csr *certv1.CertificateSigningRequest) error {
	node, ok := strings.CutPrefix(csr.Spec.Username, "system:node:")
	if !ok || node == "" || !slices.Contains(csr.Spec.Groups, groupNodes) {
		return fmt.Errorf("requested by %q %v, not a node", csr.Spec.Username, csr.Spec.Groups)
	}
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return fmt.Errorf("request is not a PEM CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	if req.Subject.CommonName != csr.Spec.Username || !slices.Equal(req.Subject.Organization, []string{groupNodes}) {
		return fmt.Errorf("subject %q for requester %q", req.Subject, csr.Spec.Username)
	}
	if len(req.EmailAddresses) > 0 || len(req.URIs) > 0 {
		return fmt.Errorf("e-mail or URI names")
	}
	if len(req.IPAddresses)+len(req.DNSNames) == 0 {
		return fmt.Errorf("no IP address or DNS name")
	}
	for _, u := range csr.Spec.Usages {
		if u != certv1.UsageServerAuth && u != certv1.UsageDigitalSignature && u != certv1.UsageKeyEncipherment {
			return fmt.Errorf("usage %q", u)
		}
	}
	return nil
}
