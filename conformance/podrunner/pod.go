package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// podState is what the runner holds for one pod it runs: its sandbox (network namespace),
// its files (volumes, logs) and its containers.
type podState struct {
	uid        types.UID
	key        string
	dir        string
	sb         *sandbox
	startTime  metav1.Time
	containers []*container
}

// container is one container of a pod: a local process in the pod's network namespace.
type container struct {
	name  string
	image string
	bin   string

	mu         sync.Mutex
	proc       *exec.Cmd
	done       chan struct{} // closed when proc exits
	running    bool
	ready      bool
	startedAt  metav1.Time
	lastExit   *corev1.ContainerStateTerminated
	restarts   int32
	nextStart  time.Time
	waitReason string
	waitMsg    string
	everRan    bool
	log        *logFile // every run's output, closed when the pod stops
}

var (
	imageName   = regexp.MustCompile(`^(?:.*/)?([^/:@]+)(?::[^/@]*)?(?:@.*)?$`)
	varRef      = regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)
	errNotReady = fmt.Errorf("not ready")
)

// imageKey is the last path element of an image reference without tag or digest:
// registry.k8s.io/gateway-api/echo-basic:v1.5.1 → echo-basic.
func imageKey(image string) string {
	if m := imageName.FindStringSubmatch(image); m != nil {
		return m[1]
	}
	return image
}

// expand does Kubernetes' $(VAR) expansion: defined variables are replaced, $$ is a literal
// $, anything else stays as written.
func expand(s string, vars map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		if v, ok := vars[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// fieldValue answers a downward API fieldRef.
func (r *runner) fieldValue(pod *corev1.Pod, st *podState, fieldPath string) (string, error) {
	switch fieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return st.sb.ip.String(), nil
	case "status.hostIP", "status.hostIPs":
		return r.net.gw.String(), nil
	}
	if m := regexp.MustCompile(`^metadata\.(labels|annotations)\['(.*)'\]$`).FindStringSubmatch(fieldPath); m != nil {
		if m[1] == "labels" {
			return pod.Labels[m[2]], nil
		}
		return pod.Annotations[m[2]], nil
	}
	return "", fmt.Errorf("fieldRef %s is not supported by the pod runner", fieldPath)
}

// keyData fetches one key of a Secret or ConfigMap. found=false: the object or key is
// missing (the caller waits for it, as the kubelet does, unless it is optional).
func (r *runner) keyData(ctx context.Context, ns, kind, name, key string) (data []byte, found bool, err error) {
	all, found, err := r.objectData(ctx, ns, kind, name)
	if err != nil || !found {
		return nil, found, err
	}
	data, found = all[key]
	return data, found, nil
}

func (r *runner) objectData(ctx context.Context, ns, kind, name string) (map[string][]byte, bool, error) {
	out := map[string][]byte{}
	switch kind {
	case "Secret":
		s, err := r.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, false, nil
		} else if err != nil {
			return nil, false, err
		}
		for k, v := range s.Data {
			out[k] = v
		}
		for k, v := range s.StringData {
			out[k] = []byte(v)
		}
	case "ConfigMap":
		c, err := r.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, false, nil
		} else if err != nil {
			return nil, false, err
		}
		for k, v := range c.Data {
			out[k] = []byte(v)
		}
		for k, v := range c.BinaryData {
			out[k] = v
		}
	}
	return out, true, nil
}

// writeVolumes writes the pod's Secret, ConfigMap and emptyDir volumes under dir/volumes/<name>
// and returns volume name → host directory. A missing Secret or ConfigMap that is not
// optional is an error the pod waits on (ContainerCreating).
func (r *runner) writeVolumes(ctx context.Context, pod *corev1.Pod, dir string) (map[string]string, error) {
	vols := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		vdir := filepath.Join(dir, "volumes", v.Name)
		if err := os.MkdirAll(vdir, 0o755); err != nil {
			return nil, err
		}
		vols[v.Name] = vdir
		var kind, name string
		var items []corev1.KeyToPath
		var optional bool
		mode := int32(0o644)
		switch {
		case v.Secret != nil:
			kind, name, items = "Secret", v.Secret.SecretName, v.Secret.Items
			optional = v.Secret.Optional != nil && *v.Secret.Optional
			if v.Secret.DefaultMode != nil {
				mode = *v.Secret.DefaultMode
			}
		case v.ConfigMap != nil:
			kind, name, items = "ConfigMap", v.ConfigMap.Name, v.ConfigMap.Items
			optional = v.ConfigMap.Optional != nil && *v.ConfigMap.Optional
			if v.ConfigMap.DefaultMode != nil {
				mode = *v.ConfigMap.DefaultMode
			}
		case v.EmptyDir != nil:
			continue
		default:
			return nil, fmt.Errorf("volume %s: only secret, configMap and emptyDir volumes are supported by the pod runner", v.Name)
		}
		data, found, err := r.objectData(ctx, pod.Namespace, kind, name)
		if err != nil {
			return nil, err
		}
		if !found {
			if optional {
				continue
			}
			return nil, fmt.Errorf("%w: %s %s/%s of volume %s not found", errNotReady, kind, pod.Namespace, name, v.Name)
		}
		if len(items) == 0 {
			for k := range data {
				items = append(items, corev1.KeyToPath{Key: k, Path: k})
			}
		}
		for _, it := range items {
			b, ok := data[it.Key]
			if !ok {
				if optional {
					continue
				}
				return nil, fmt.Errorf("%w: key %s of %s %s/%s not found", errNotReady, it.Key, kind, pod.Namespace, name)
			}
			p := filepath.Join(vdir, filepath.Clean("/"+it.Path))
			m := mode
			if it.Mode != nil {
				m = *it.Mode
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(p, b, os.FileMode(m)&0o777|0o400); err != nil {
				return nil, err
			}
		}
	}
	return vols, nil
}

// mounts maps a container's mount paths to host directories; rewrite turns a path inside the
// container (an env value, an argument) into the host path. No mount namespace: processes
// see the host's file system, so paths under a mountPath are rewritten instead.
type mounts []struct{ at, host string }

func (ms mounts) rewrite(s string) string {
	for _, m := range ms {
		if s == m.at {
			return m.host
		}
		if strings.HasPrefix(s, strings.TrimSuffix(m.at, "/")+"/") {
			return m.host + s[len(strings.TrimSuffix(m.at, "/")):]
		}
	}
	return s
}

func containerMounts(c corev1.Container, vols map[string]string) (mounts, error) {
	var ms mounts
	for _, vm := range c.VolumeMounts {
		host, ok := vols[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volumeMount %s: no such volume", vm.Name)
		}
		if vm.SubPath != "" {
			host = filepath.Join(host, filepath.Clean("/"+vm.SubPath))
		}
		ms = append(ms, struct{ at, host string }{path.Clean(vm.MountPath), host})
	}
	// Longest mount path first, so a nested mount wins.
	sort.Slice(ms, func(i, j int) bool { return len(ms[i].at) > len(ms[j].at) })
	return ms, nil
}

// containerEnv builds a container's environment in the kubelet's order: envFrom, then env
// (each value expanded against what precedes it), with path rewriting for mounts.
func (r *runner) containerEnv(ctx context.Context, pod *corev1.Pod, st *podState, c corev1.Container, ms mounts) ([]string, map[string]string, error) {
	vars := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	set("HOSTNAME", pod.Name)
	for _, ef := range c.EnvFrom {
		var kind, name string
		var optional bool
		switch {
		case ef.ConfigMapRef != nil:
			kind, name = "ConfigMap", ef.ConfigMapRef.Name
			optional = ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional
		case ef.SecretRef != nil:
			kind, name = "Secret", ef.SecretRef.Name
			optional = ef.SecretRef.Optional != nil && *ef.SecretRef.Optional
		default:
			continue
		}
		data, found, err := r.objectData(ctx, pod.Namespace, kind, name)
		if err != nil {
			return nil, nil, err
		}
		if !found && !optional {
			return nil, nil, fmt.Errorf("%w: envFrom %s %s/%s not found", errNotReady, kind, pod.Namespace, name)
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			set(ef.Prefix+k, string(data[k]))
		}
	}
	for _, e := range c.Env {
		var v string
		switch {
		case e.ValueFrom == nil:
			v = expand(e.Value, vars)
		case e.ValueFrom.FieldRef != nil:
			fv, err := r.fieldValue(pod, st, e.ValueFrom.FieldRef.FieldPath)
			if err != nil {
				return nil, nil, err
			}
			v = fv
		case e.ValueFrom.SecretKeyRef != nil || e.ValueFrom.ConfigMapKeyRef != nil:
			kind, name, key, optional := "Secret", "", "", false
			if ref := e.ValueFrom.SecretKeyRef; ref != nil {
				name, key, optional = ref.Name, ref.Key, ref.Optional != nil && *ref.Optional
			} else {
				ref := e.ValueFrom.ConfigMapKeyRef
				kind, name, key, optional = "ConfigMap", ref.Name, ref.Key, ref.Optional != nil && *ref.Optional
			}
			b, found, err := r.keyData(ctx, pod.Namespace, kind, name, key)
			if err != nil {
				return nil, nil, err
			}
			if !found {
				if optional {
					continue
				}
				return nil, nil, fmt.Errorf("%w: env %s: key %s of %s %s/%s not found", errNotReady, e.Name, key, kind, pod.Namespace, name)
			}
			v = string(b)
		default:
			return nil, nil, fmt.Errorf("env %s: only value, fieldRef, secretKeyRef and configMapKeyRef are supported by the pod runner", e.Name)
		}
		set(e.Name, ms.rewrite(v))
	}
	env := make([]string, 0, len(order))
	for _, k := range order {
		env = append(env, k+"="+vars[k])
	}
	return env, vars, nil
}

// start makes the pod's sandbox and files; its containers are started by supervise.
func (r *runner) start(ctx context.Context, pod *corev1.Pod) (*podState, error) {
	sb, err := r.net.create()
	if err != nil {
		return nil, fmt.Errorf("pod network: %w", err)
	}
	st := &podState{
		uid:       pod.UID,
		key:       pod.Namespace + "/" + pod.Name,
		dir:       filepath.Join(r.workDir, "pods", fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID)),
		sb:        sb,
		startTime: metav1.Now(),
	}
	if pod.Status.StartTime != nil {
		st.startTime = *pod.Status.StartTime
	}
	if err := os.MkdirAll(st.dir, 0o755); err != nil {
		r.net.remove(sb)
		return nil, err
	}
	for _, c := range pod.Spec.Containers {
		st.containers = append(st.containers, &container{name: c.Name, image: c.Image, waitReason: "ContainerCreating"})
	}
	r.logf("pod %s: sandbox %s, IP %s", st.key, sb.netns, sb.ip)
	return st, nil
}

// supervise starts the containers that should run now (the first time, or restarts after
// their backoff) and returns when the pod should be looked at again (0: on events only).
func (r *runner) supervise(ctx context.Context, pod *corev1.Pod, st *podState) time.Duration {
	var vols map[string]string
	var volErr error
	volsDone := false
	var again time.Duration
	for i, c := range st.containers {
		spec := pod.Spec.Containers[i]
		c.mu.Lock()
		if c.running {
			c.mu.Unlock()
			continue
		}
		if c.everRan && !shouldRestart(pod.Spec.RestartPolicy, c.lastExit) {
			c.mu.Unlock()
			continue
		}
		if wait := time.Until(c.nextStart); wait > 0 {
			if again == 0 || wait < again {
				again = wait
			}
			c.mu.Unlock()
			continue
		}
		c.mu.Unlock()
		if !volsDone {
			vols, volErr = r.writeVolumes(ctx, pod, st.dir)
			volsDone = true
		}
		err := volErr
		if err == nil {
			err = r.startContainer(ctx, pod, st, c, spec, vols)
		}
		if err != nil {
			c.mu.Lock()
			c.waitReason, c.waitMsg = "CreateContainerConfigError", err.Error()
			if errors.Is(err, errNotReady) {
				c.waitReason = "ContainerCreating"
			} else if c.bin == "" {
				c.waitReason = "ErrImagePull"
			}
			c.mu.Unlock()
			if again == 0 || time.Second < again {
				again = time.Second
			}
		}
	}
	return again
}

func shouldRestart(policy corev1.RestartPolicy, exit *corev1.ContainerStateTerminated) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exit == nil || exit.ExitCode != 0
	}
	return true
}

func (r *runner) startContainer(ctx context.Context, pod *corev1.Pod, st *podState, c *container, spec corev1.Container, vols map[string]string) error {
	key := imageKey(spec.Image)
	bin, ok := r.images[key]
	if !ok {
		c.bin = ""
		return fmt.Errorf("image %s: no local binary for %q (pod runner --image %s=PATH)", spec.Image, key, key)
	}
	c.bin = bin
	ms, err := containerMounts(spec, vols)
	if err != nil {
		return err
	}
	env, vars, err := r.containerEnv(ctx, pod, st, spec, ms)
	if err != nil {
		return err
	}
	var args []string
	if len(spec.Command) > 0 {
		// The image's entrypoint may be named; anything else is not in our "image".
		if b := path.Base(spec.Command[0]); b != key && b != filepath.Base(bin) {
			return fmt.Errorf("command %q: the local image %s only runs %s", spec.Command[0], key, bin)
		}
		args = append(args, spec.Command[1:]...)
	}
	args = append(args, spec.Args...)
	for i, a := range args {
		args[i] = ms.rewrite(expand(a, vars))
	}
	c.mu.Lock()
	lf := c.log
	c.mu.Unlock()
	if lf == nil {
		if lf, err = openLog(filepath.Join(st.dir, spec.Name+".log")); err != nil {
			return err
		}
		c.mu.Lock()
		c.log = lf
		c.mu.Unlock()
	}
	var readers sync.WaitGroup
	stdout, err := lf.pipe("stdout", &readers)
	if err != nil {
		return err
	}
	stderr, err := lf.pipe("stderr", &readers)
	if err != nil {
		_ = stdout.Close()
		return err
	}
	wd := st.dir
	if spec.WorkingDir != "" {
		if w := ms.rewrite(spec.WorkingDir); w != spec.WorkingDir {
			wd = w
		}
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", st.sb.netns, bin}, args...)...)
	cmd.Env = env
	cmd.Dir = wd
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Own process group (signals go to the container only); killed if the runner dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	// the child holds the write ends now (or nobody does): the readers end with it
	_ = stdout.Close()
	_ = stderr.Close()
	if err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	done := make(chan struct{})
	c.mu.Lock()
	c.proc, c.done, c.running, c.ready = cmd, done, true, false
	c.startedAt = metav1.Now()
	if c.everRan {
		c.restarts++
	}
	c.everRan = true
	c.waitReason, c.waitMsg = "", ""
	c.mu.Unlock()
	r.logf("pod %s: container %s started: pid %d, %s %s (log %s)", st.key, spec.Name, cmd.Process.Pid, bin, strings.Join(args, " "), lf.path)

	go func() {
		err := cmd.Wait()
		// the last lines it wrote, unless something it started keeps the pipe open
		copied := make(chan struct{})
		go func() { readers.Wait(); close(copied) }()
		select {
		case <-copied:
		case <-time.After(2 * time.Second):
		}
		code := 0
		if err != nil {
			code = -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					code = 128 + int(ws.Signal())
				}
			}
		}
		c.mu.Lock()
		reason := "Completed"
		if code != 0 {
			reason = "Error"
		}
		c.lastExit = &corev1.ContainerStateTerminated{ExitCode: int32(code), Reason: reason, StartedAt: c.startedAt, FinishedAt: metav1.Now()}
		c.running, c.ready = false, false
		// The kubelet's crash-loop backoff, shortened: 1 s doubling up to 30 s.
		backoff := time.Second << min(c.restarts, 5)
		c.nextStart = time.Now().Add(backoff)
		c.mu.Unlock()
		close(done)
		r.logf("pod %s: container %s exited with %d", st.key, spec.Name, code)
		r.queue.Add(st.key)
	}()
	go r.probe(st, c, spec, vars, done)
	return nil
}

type portCheck struct {
	port  int
	proto corev1.Protocol
	http  string // path for an httpGet probe
}

// readinessPorts: the readinessProbe's port if there is one (tcpSocket, httpGet), else the
// container's ports, else the ports the image is known to serve.
func readinessPorts(spec corev1.Container, key string, vars map[string]string) []portCheck {
	named := func(p intstr.IntOrString) int {
		if p.Type == intstr.Int {
			return p.IntValue()
		}
		for _, cp := range spec.Ports {
			if cp.Name == p.StrVal {
				return int(cp.ContainerPort)
			}
		}
		return 0
	}
	if rp := spec.ReadinessProbe; rp != nil {
		switch {
		case rp.TCPSocket != nil:
			return []portCheck{{port: named(rp.TCPSocket.Port), proto: corev1.ProtocolTCP}}
		case rp.HTTPGet != nil:
			p := rp.HTTPGet.Path
			if p == "" {
				p = "/"
			}
			return []portCheck{{port: named(rp.HTTPGet.Port), proto: corev1.ProtocolTCP, http: p}}
		}
	}
	var out []portCheck
	for _, cp := range spec.Ports {
		proto := cp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		out = append(out, portCheck{port: int(cp.ContainerPort), proto: proto})
	}
	if len(out) > 0 {
		return out
	}
	envPort := func(names []string, def int) int {
		for _, n := range names {
			if v, err := strconv.Atoi(vars[n]); err == nil {
				return v
			}
		}
		return def
	}
	switch key {
	case "echo-basic":
		// HTTP (and gRPC) on HTTP_PORT, TCP echo on TCP_PORT; default 3000 in every mode.
		if vars["UDP_ECHO_SERVER"] != "" {
			return []portCheck{{port: envPort([]string{"UDP_PORT"}, 3000), proto: corev1.ProtocolUDP}}
		}
		return []portCheck{{port: envPort([]string{"HTTP_PORT", "TCP_PORT"}, 3000), proto: corev1.ProtocolTCP}}
	case "coredns":
		return []portCheck{{port: 53, proto: corev1.ProtocolUDP}}
	}
	return nil
}

// probe marks the container ready once every readiness port answers from the host (TCP
// connect or HTTP 2xx/3xx through the pod's address; UDP: a socket bound on the port in the
// pod's namespace), checking every 100 ms while it runs.
func (r *runner) probe(st *podState, c *container, spec corev1.Container, vars map[string]string, done chan struct{}) {
	checks := readinessPorts(spec, imageKey(spec.Image), vars)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok := true
		for _, pc := range checks {
			if !r.check(st, c, pc) {
				ok = false
				break
			}
		}
		if ok {
			c.mu.Lock()
			if c.done == done {
				c.ready = true
			}
			c.mu.Unlock()
			r.logf("pod %s: container %s ready", st.key, spec.Name)
			r.queue.Add(st.key)
			return
		}
		select {
		case <-done:
			return
		case <-r.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (r *runner) check(st *podState, c *container, pc portCheck) bool {
	addr := net.JoinHostPort(st.sb.ip.String(), strconv.Itoa(pc.port))
	switch pc.proto {
	case corev1.ProtocolUDP:
		c.mu.Lock()
		pid := 0
		if c.proc != nil && c.proc.Process != nil {
			pid = c.proc.Process.Pid
		}
		c.mu.Unlock()
		return pid != 0 && udpBound(pid, pc.port)
	default:
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		if pc.http == "" {
			_ = conn.Close()
			return true
		}
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", pc.http, addr)
		buf := make([]byte, 12)
		n, _ := conn.Read(buf)
		_ = conn.Close()
		return n >= 12 && (buf[9] == '2' || buf[9] == '3')
	}
}

// udpBound: a UDP socket bound on port in pid's network namespace (/proc/<pid>/net/udp*
// shows that namespace's sockets).
func udpBound(pid, port int) bool {
	want := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"udp", "udp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) > 1 && strings.HasSuffix(fields[1], want) {
				return true
			}
		}
	}
	return false
}

// stop ends the pod's containers (SIGTERM, SIGKILL after grace, bounded by 30 s) and removes
// its sandbox and files.
func (r *runner) stop(st *podState, grace time.Duration) {
	if grace > 30*time.Second {
		grace = 30 * time.Second
	}
	var wg sync.WaitGroup
	for _, c := range st.containers {
		c.mu.Lock()
		proc, done, running := c.proc, c.done, c.running
		c.nextStart = time.Now().Add(24 * time.Hour)
		c.mu.Unlock()
		if !running || proc == nil || proc.Process == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = syscall.Kill(-proc.Process.Pid, syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(grace):
				_ = syscall.Kill(-proc.Process.Pid, syscall.SIGKILL)
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					r.logf("pod %s: pid %d did not exit after SIGKILL", st.key, proc.Process.Pid)
				}
			}
		}()
	}
	wg.Wait()
	for _, c := range st.containers {
		c.mu.Lock()
		if c.log != nil {
			c.log.close()
		}
		c.mu.Unlock()
	}
	r.net.remove(st.sb)
	if !r.keepFiles {
		_ = os.RemoveAll(st.dir)
	}
	r.logf("pod %s: stopped, sandbox %s removed", st.key, st.sb.netns)
}

// status is the pod status the runner reports for st, keeping the transition times of what
// did not change.
func (r *runner) status(pod *corev1.Pod, st *podState) corev1.PodStatus {
	old := pod.Status
	s := corev1.PodStatus{
		QOSClass:  old.QOSClass,
		HostIP:    r.net.gw.String(),
		HostIPs:   []corev1.HostIP{{IP: r.net.gw.String()}},
		PodIP:     st.sb.ip.String(),
		PodIPs:    []corev1.PodIP{{IP: st.sb.ip.String()}},
		StartTime: &st.startTime,
	}
	allReady, allStarted, anyRunning := len(st.containers) > 0, true, false
	allDone, allSucceeded := true, true
	for i, c := range st.containers {
		c.mu.Lock()
		cs := corev1.ContainerStatus{
			Name:         c.name,
			Image:        c.image,
			ImageID:      "local://" + c.bin,
			ContainerID:  "",
			Ready:        c.running && c.ready,
			RestartCount: c.restarts,
		}
		started := c.running
		cs.Started = &started
		switch {
		case c.running:
			anyRunning = true
			allDone = false
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: c.startedAt}
			cs.ContainerID = fmt.Sprintf("local://%s/%d", st.sb.netns, c.proc.Process.Pid)
		case c.everRan && c.lastExit != nil && !shouldRestart(pod.Spec.RestartPolicy, c.lastExit):
			cs.State.Terminated = c.lastExit
			if c.lastExit.ExitCode != 0 {
				allSucceeded = false
			}
		case c.everRan:
			allDone = false
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: fmt.Sprintf("back-off restarting %s", c.name)}
		default:
			allDone = false
			allStarted = false
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: c.waitReason, Message: c.waitMsg}
		}
		if c.lastExit != nil {
			cs.LastTerminationState.Terminated = c.lastExit
		}
		if !cs.Ready {
			allReady = false
		}
		// Keep the API server's view of the time a container started if it is the same run.
		if i < len(old.ContainerStatuses) && old.ContainerStatuses[i].Name == c.name {
			if o := old.ContainerStatuses[i].State.Running; o != nil && cs.State.Running != nil && o.StartedAt.Equal(&cs.State.Running.StartedAt) {
				cs.State.Running.StartedAt = o.StartedAt
			}
		}
		c.mu.Unlock()
		s.ContainerStatuses = append(s.ContainerStatuses, cs)
	}
	switch {
	case allDone && len(st.containers) > 0:
		s.Phase = corev1.PodSucceeded
		if !allSucceeded {
			s.Phase = corev1.PodFailed
		}
	case allStarted && anyRunning:
		s.Phase = corev1.PodRunning
	case allStarted:
		s.Phase = corev1.PodRunning // between restarts
	default:
		s.Phase = corev1.PodPending
	}
	b := func(v bool) corev1.ConditionStatus {
		if v {
			return corev1.ConditionTrue
		}
		return corev1.ConditionFalse
	}
	ready := allReady && s.Phase == corev1.PodRunning
	conds := []corev1.PodCondition{
		{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue},
		{Type: corev1.ContainersReady, Status: b(ready)},
		{Type: corev1.PodReady, Status: b(ready)},
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
	}
	now := metav1.Now()
	for i := range conds {
		conds[i].LastTransitionTime = now
		for _, o := range old.Conditions {
			if o.Type == conds[i].Type && o.Status == conds[i].Status {
				conds[i].LastTransitionTime = o.LastTransitionTime
				conds[i].LastProbeTime = o.LastProbeTime
				conds[i].Reason, conds[i].Message = o.Reason, o.Message
			}
		}
		if conds[i].Status == corev1.ConditionFalse && conds[i].Reason == "" && (conds[i].Type == corev1.PodReady || conds[i].Type == corev1.ContainersReady) {
			conds[i].Reason = "ContainersNotReady"
		}
	}
	s.Conditions = conds
	return s
}
