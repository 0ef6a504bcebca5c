package main

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
)

// network is the pods' network: a Linux bridge on the host holding the first address of the
// pod CIDR (the pods' default route and the node's InternalIP), and per pod a network
// namespace joined to the bridge by a veth pair, the pod side named eth0 with the pod's
// address. The host reaches every pod directly over the bridge.
//
// Names: the bridge is --bridge; namespaces are <prefix>-<index>, host-side veths
// <prefix><index>h (at most 15 characters). The pod address is the CIDR's base + index.
type network struct {
	bridge string
	prefix string
	cidr   netip.Prefix
	gw     netip.Addr

	mu   sync.Mutex
	used map[int]bool
	next int
	size int
}

type sandbox struct {
	index  int
	netns  string
	hostIf string
	ip     netip.Addr
}

func ipcmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func ipout(args ...string) string {
	out, _ := exec.Command("ip", args...).Output()
	return string(out)
}

func newNetwork(bridge, prefix string, cidr netip.Prefix) (*network, error) {
	if !cidr.Addr().Is4() || cidr.Bits() < 16 || cidr.Bits() > 28 {
		return nil, fmt.Errorf("pod CIDR %s: need an IPv4 prefix of /16 to /28", cidr)
	}
	if len(prefix) > 8 || len(bridge) > 15 {
		return nil, fmt.Errorf("name prefix %q (at most 8 characters) or bridge %q (at most 15) too long", prefix, bridge)
	}
	cidr = cidr.Masked()
	return &network{
		bridge: bridge,
		prefix: prefix,
		cidr:   cidr,
		gw:     cidr.Addr().Next(),
		used:   map[int]bool{},
		next:   2,
		size:   1 << (32 - cidr.Bits()),
	}, nil
}

// cleanup removes the bridge, every namespace <prefix>-* and every link <prefix>*h: those of
// a runner that died (the caller holds the lock that makes this runner the only one).
func (n *network) cleanup() {
	for _, line := range strings.Split(ipout("netns", "list"), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], n.prefix+"-") {
			_ = ipcmd("netns", "del", f[0])
		}
	}
	for _, line := range strings.Split(ipout("-o", "link", "show"), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		dev := strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0]
		if strings.HasPrefix(dev, n.prefix) && strings.HasSuffix(dev, "h") {
			_ = ipcmd("link", "del", dev)
		}
	}
	_ = ipcmd("link", "del", n.bridge)
}

func (n *network) setup() error {
	n.cleanup()
	steps := [][]string{
		{"link", "add", n.bridge, "type", "bridge", "forward_delay", "0", "stp_state", "0"},
		{"addr", "add", fmt.Sprintf("%s/%d", n.gw, n.cidr.Bits()), "dev", n.bridge},
		{"link", "set", n.bridge, "up"},
	}
	for _, s := range steps {
		if err := ipcmd(s...); err != nil {
			n.cleanup()
			return fmt.Errorf("pod network bridge %s: %w", n.bridge, err)
		}
	}
	return nil
}

func (n *network) alloc() (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	// Round robin over the range: an address freed is not handed out again at once, so a
	// stale EndpointSlice does not send traffic to the wrong pod.
	for i := 0; i < n.size; i++ {
		idx := n.next
		n.next++
		if n.next >= n.size-1 {
			n.next = 2
		}
		if idx >= 2 && idx < n.size-1 && !n.used[idx] {
			n.used[idx] = true
			return idx, nil
		}
	}
	return 0, fmt.Errorf("pod CIDR %s is full", n.cidr)
}

func (n *network) release(idx int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.used, idx)
}

func (n *network) addrOf(idx int) netip.Addr {
	a := n.cidr.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(idx)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// create makes a pod's namespace and veth pair on the bridge.
func (n *network) create() (*sandbox, error) {
	idx, err := n.alloc()
	if err != nil {
		return nil, err
	}
	sb := &sandbox{
		index:  idx,
		netns:  fmt.Sprintf("%s-%d", n.prefix, idx),
		hostIf: fmt.Sprintf("%s%dh", n.prefix, idx),
		ip:     n.addrOf(idx),
	}
	peer := fmt.Sprintf("%s%dp", n.prefix, idx)
	steps := [][]string{
		{"netns", "add", sb.netns},
		{"link", "add", sb.hostIf, "type", "veth", "peer", "name", peer, "netns", sb.netns},
		{"link", "set", sb.hostIf, "master", n.bridge},
		{"link", "set", sb.hostIf, "up"},
		{"-n", sb.netns, "link", "set", peer, "name", "eth0"},
		{"-n", sb.netns, "link", "set", "lo", "up"},
		{"-n", sb.netns, "addr", "add", fmt.Sprintf("%s/%d", sb.ip, n.cidr.Bits()), "dev", "eth0"},
		{"-n", sb.netns, "link", "set", "eth0", "up"},
		{"-n", sb.netns, "route", "add", "default", "via", n.gw.String()},
	}
	for _, s := range steps {
		if err := ipcmd(s...); err != nil {
			n.remove(sb)
			return nil, err
		}
	}
	return sb, nil
}

// remove deletes a pod's namespace (which takes its end of the veth pair, and so the pair)
// and frees its address. Idempotent.
func (n *network) remove(sb *sandbox) {
	_ = ipcmd("netns", "del", sb.netns)
	if strings.Contains(ipout("-o", "link", "show", "dev", sb.hostIf), sb.hostIf) {
		_ = ipcmd("link", "del", sb.hostIf)
	}
	n.release(sb.index)
}
