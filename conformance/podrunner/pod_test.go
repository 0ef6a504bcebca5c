package main

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestImageKey(t *testing.T) {
	for in, want := range map[string]string{
		"registry.k8s.io/gateway-api/echo-basic:v1.5.1": "echo-basic",
		"registry.k8s.io/coredns/coredns:v1.12.2":       "coredns",
		"echo-basic": "echo-basic",
		"localhost:5000/a/echo-basic@sha256:0123456789abc": "echo-basic",
		"localhost:5000/echo-basic:latest":                 "echo-basic",
	} {
		if got := imageKey(in); got != want {
			t.Errorf("imageKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "POD_NAME": "p"}
	for in, want := range map[string]string{
		"$(A)-$(POD_NAME)": "1-p",
		"$(MISSING)":       "$(MISSING)",
		"$$(A)":            "$(A)",
		"plain $ sign":     "plain $ sign",
	} {
		if got := expand(in, vars); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMountsRewrite(t *testing.T) {
	ms, err := containerMounts(corev1.Container{VolumeMounts: []corev1.VolumeMount{
		{Name: "s", MountPath: "/etc/secret-volume"},
		{Name: "n", MountPath: "/etc/secret-volume/nested/"},
	}}, map[string]string{"s": "/tmp/p/volumes/s", "n": "/tmp/p/volumes/n"})
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"/etc/secret-volume/crt":        "/tmp/p/volumes/s/crt",
		"/etc/secret-volume":            "/tmp/p/volumes/s",
		"/etc/secret-volume/nested/key": "/tmp/p/volumes/n/key",
		"/etc/secret-volume-other/crt":  "/etc/secret-volume-other/crt",
		"1":                             "1",
	} {
		if got := ms.rewrite(in); got != want {
			t.Errorf("rewrite(%q) = %q, want %q", in, got, want)
		}
	}
	if _, err := containerMounts(corev1.Container{VolumeMounts: []corev1.VolumeMount{{Name: "x", MountPath: "/x"}}}, nil); err == nil {
		t.Error("a mount of a volume that does not exist is no error")
	}
}

func TestReadinessPorts(t *testing.T) {
	echo := corev1.Container{Image: "registry.k8s.io/gateway-api/echo-basic:v1.5.1"}
	if got := readinessPorts(echo, "echo-basic", map[string]string{}); len(got) != 1 || got[0].port != 3000 || got[0].proto != corev1.ProtocolTCP {
		t.Errorf("echo-basic default: %+v", got)
	}
	if got := readinessPorts(echo, "echo-basic", map[string]string{"HTTP_PORT": "8080"}); got[0].port != 8080 {
		t.Errorf("echo-basic HTTP_PORT: %+v", got)
	}
	if got := readinessPorts(corev1.Container{}, "coredns", nil); len(got) != 1 || got[0].port != 53 || got[0].proto != corev1.ProtocolUDP {
		t.Errorf("coredns: %+v", got)
	}
	withPorts := corev1.Container{Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 9000}}}
	if got := readinessPorts(withPorts, "echo-basic", nil); len(got) != 1 || got[0].port != 9000 {
		t.Errorf("containerPorts win over the image's: %+v", got)
	}
}

func TestNetworkAddresses(t *testing.T) {
	n, err := newNetwork("br", "sbpod", netip.MustParsePrefix("10.244.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	if n.gw.String() != "10.244.0.1" {
		t.Errorf("gateway %s", n.gw)
	}
	if a := n.addrOf(258); a.String() != "10.244.1.2" {
		t.Errorf("addrOf(258) = %s", a)
	}
	small, _ := newNetwork("br", "sbpod", netip.MustParsePrefix("10.245.0.0/28"))
	seen := map[int]bool{}
	for range 13 { // .2 to .14
		idx, err := small.alloc()
		if err != nil || seen[idx] || idx < 2 || idx > 14 {
			t.Fatalf("alloc: %d %v (seen %v)", idx, err, seen)
		}
		seen[idx] = true
	}
	if _, err := small.alloc(); err == nil {
		t.Error("a full CIDR allocated an address")
	}
	small.release(5)
	if idx, err := small.alloc(); err != nil || idx != 5 {
		t.Errorf("after release: %d %v", idx, err)
	}
	if _, err := newNetwork("br", "toolongprefix", netip.MustParsePrefix("10.244.0.0/16")); err == nil {
		t.Error("a prefix too long for interface names accepted")
	}
}
