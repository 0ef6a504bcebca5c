// Command podrunner is the test stack's stand-in for kube-scheduler and a kubelet, for the
// Gateway API conformance suite on a machine without a container engine (see
// ../README.md). It registers a Node (Ready, its Lease renewed), binds every Pending pod of
// the default scheduler to it (the Binding subresource), and runs each pod bound to it as
// local processes: the image is looked up in --image (repository name → binary, e.g.
// echo-basic=.tools/bin/echo-basic), each pod gets a network namespace of its own with an
// address from --pod-cidr on a host bridge, the env the pod spec gives (literal values,
// downward API fieldRefs, Secret and ConfigMap keys, envFrom; $(VAR) expansion), Secret,
// ConfigMap and emptyDir volumes as files (paths under a mountPath in env and args are
// rewritten to them: there is no mount namespace). It reports the pod Running and Ready
// with its podIP once the container answers on its port (status subresource), so
// kube-controller-manager's EndpointSlice controller publishes it, restarts containers that
// exit (restartPolicy), and when the pod is deleted stops its processes, removes its
// namespace and deletes the pod object (grace 0), as a kubelet does.
//
// Needs root (network namespaces) and the ip command. One runner per --bridge at a time
// (a lock file); leftovers of a runner that died are removed at start.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
)

type runner struct {
	ctx         context.Context
	kubeletPort int
	client      kubernetes.Interface
	node        string
	net         *network
	images      map[string]string
	workDir     string
	keepFiles   bool
	queue       workqueue.TypedRateLimitingInterface[string]
	pods        cache.Indexer

	mu    sync.Mutex
	state map[string]*podState
}

func (r *runner) logf(format string, args ...any) { log.Printf(format, args...) }

type imageFlag map[string]string

func (f imageFlag) String() string { return fmt.Sprint(map[string]string(f)) }
func (f imageFlag) Set(v string) error {
	k, p, ok := strings.Cut(v, "=")
	if !ok || k == "" || p == "" {
		return fmt.Errorf("want NAME=PATH, got %q", v)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return err
	}
	if st, err := os.Stat(abs); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("image %s: %s is not an executable file", k, abs)
	}
	f[k] = abs
	return nil
}

func main() {
	log.SetFlags(log.Ldate | log.Ltime | log.Lmicroseconds)
	log.SetPrefix("podrunner: ")
	images := imageFlag{}
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the API server")
	nodeName := flag.String("node-name", "signalbox-local", "name of the Node to register and run pods for")
	cidr := flag.String("pod-cidr", "10.244.0.0/16", "pod addresses; the first one is the bridge's (the node's InternalIP)")
	bridge := flag.String("bridge", "sbpods0", "host bridge of the pod network")
	prefix := flag.String("prefix", "sbpod", "name prefix of the pods' network namespaces and veths (at most 8 characters)")
	workDir := flag.String("work-dir", "", "pods' files: volumes and container logs (default: a temporary directory)")
	keep := flag.Bool("keep-files", false, "keep a pod's directory (its logs) after it stops")
	readyFile := flag.String("ready-file", "", "written once the Node is registered and the informers synced")
	kubeletPort := flag.Int("kubelet-port", 10250, "port of the kubelet API (container logs) on the node's InternalIP, the bridge address")
	flag.Var(images, "image", "NAME=PATH: run image repository NAME (last path element, no tag) as the binary PATH; repeatable")
	flag.Parse()
	if len(images) == 0 {
		log.Fatal("no --image given: nothing could run")
	}
	prefixOK, err := netip.ParsePrefix(*cidr)
	if err != nil {
		log.Fatalf("--pod-cidr: %v", err)
	}
	nw, err := newNetwork(*bridge, *prefix, prefixOK)
	if err != nil {
		log.Fatal(err)
	}
	if *workDir == "" {
		d, err := os.MkdirTemp("", "podrunner.")
		if err != nil {
			log.Fatal(err)
		}
		*workDir = d
		defer os.RemoveAll(d)
	}
	if err := os.MkdirAll(*workDir, 0o755); err != nil {
		log.Fatal(err)
	}

	// One runner per bridge: it owns the names and addresses.
	lockPath := filepath.Join(os.TempDir(), "signalbox-podrunner-"+*bridge+".lock")
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		log.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		log.Fatalf("another pod runner holds %s (bridge %s): %v", lockPath, *bridge, err)
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatalf("kubeconfig %q: %v", *kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	cfg.UserAgent = "signalbox-podrunner"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Fatal(err)
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()

	if err := nw.setup(); err != nil {
		log.Fatal(err)
	}
	defer nw.cleanup()

	r := &runner{
		ctx:         ctx,
		kubeletPort: *kubeletPort,
		client:      client,
		node:        *nodeName,
		net:         nw,
		images:      images,
		workDir:     *workDir,
		keepFiles:   *keep,
		queue:       workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		state:       map[string]*podState{},
	}
	if err := r.run(ctx, *readyFile); err != nil {
		log.Printf("error: %v", err)
		r.shutdown()
		nw.cleanup()
		os.Exit(1)
	}
	r.shutdown()
}

func (r *runner) run(ctx context.Context, readyFile string) error {
	if err := r.serveLogs(ctx, net.JoinHostPort(r.net.gw.String(), strconv.Itoa(r.kubeletPort))); err != nil {
		return err
	}
	if err := r.registerNode(ctx); err != nil {
		return err
	}
	go r.heartbeat(ctx)

	factory := informers.NewSharedInformerFactory(r.client, 0)
	inf := factory.Core().V1().Pods().Informer()
	r.pods = inf.GetIndexer()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			r.queue.Add(key)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, n any) { enqueue(n) },
		DeleteFunc: enqueue,
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	syncCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
		return fmt.Errorf("pod informer did not sync within 60 s")
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r.next(ctx) {
			}
		}()
	}
	r.logf("node %s ready: pods get %s (bridge %s), images %v", r.node, r.net.cidr, r.net.bridge, r.images)
	if readyFile != "" {
		if err := os.WriteFile(readyFile, []byte(r.node+"\n"), 0o644); err != nil {
			return err
		}
	}
	<-ctx.Done()
	r.queue.ShutDown()
	wg.Wait()
	return nil
}

func (r *runner) next(ctx context.Context) bool {
	key, quit := r.queue.Get()
	if quit {
		return false
	}
	defer r.queue.Done(key)
	again, err := r.sync(ctx, key)
	switch {
	case err != nil && ctx.Err() == nil:
		r.logf("pod %s: %v (retrying)", key, err)
		r.queue.AddRateLimited(key)
	case again > 0:
		r.queue.Forget(key)
		r.queue.AddAfter(key, again)
	default:
		r.queue.Forget(key)
	}
	return true
}

func (r *runner) sync(ctx context.Context, key string) (time.Duration, error) {
	obj, exists, err := r.pods.GetByKey(key)
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	st := r.state[key]
	r.mu.Unlock()
	drop := func(grace time.Duration) {
		r.stop(st, grace)
		r.mu.Lock()
		if r.state[key] == st {
			delete(r.state, key)
		}
		r.mu.Unlock()
		st = nil
	}
	if !exists {
		if st != nil {
			drop(0)
		}
		return 0, nil
	}
	pod := obj.(*corev1.Pod)
	if pod.Spec.NodeName == "" {
		return 0, r.bind(ctx, pod)
	}
	if pod.Spec.NodeName != r.node {
		return 0, nil
	}
	if st != nil && st.uid != pod.UID {
		drop(0)
	}
	if pod.DeletionTimestamp != nil {
		if st != nil {
			grace := 30 * time.Second
			if pod.DeletionGracePeriodSeconds != nil {
				grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
			}
			drop(grace)
		}
		// As the kubelet does once the containers are gone: the final delete.
		zero := int64(0)
		err := r.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: &zero,
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return 0, err
		}
		return 0, nil
	}
	if st == nil {
		if p := pod.Status.Phase; p == corev1.PodSucceeded || p == corev1.PodFailed {
			return 0, nil // finished, nothing to run
		}
		st, err = r.start(ctx, pod)
		if err != nil {
			return 0, err
		}
		r.mu.Lock()
		r.state[key] = st
		r.mu.Unlock()
	}
	again := r.supervise(ctx, pod, st)
	want := r.status(pod, st)
	if !apiequality.Semantic.DeepEqual(pod.Status, want) {
		p := pod.DeepCopy()
		p.Status = want
		if _, err := r.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				return 0, nil // the delete event follows
			}
			return 0, fmt.Errorf("status: %w", err)
		}
	}
	if want.Phase == corev1.PodSucceeded || want.Phase == corev1.PodFailed {
		r.logf("pod %s: %s", key, want.Phase)
		drop(0)
		return 0, nil
	}
	return again, nil
}

// bind is the scheduler's part: every pod of the default scheduler goes to this node.
func (r *runner) bind(ctx context.Context, pod *corev1.Pod) error {
	if pod.DeletionTimestamp != nil || (pod.Spec.SchedulerName != "" && pod.Spec.SchedulerName != corev1.DefaultSchedulerName) {
		return nil
	}
	err := r.client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: r.node},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("bind: %w", err)
	}
	if err == nil {
		r.logf("pod %s/%s: bound to %s", pod.Namespace, pod.Name, r.node)
	}
	return nil
}

func (r *runner) nodeStatus() corev1.NodeStatus {
	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory: resource.MustParse("8Gi"),
		corev1.ResourcePods:   resource.MustParse("1000"),
	}
	return corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "pod runner"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "pod runner"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "pod runner"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "signalbox pod runner: pods run as local processes"),
		},
		// InternalIP only: the API server reaches the kubelet API (pods/log) at the first
		// address of --kubelet-preferred-address-types it finds, and Hostname comes first.
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: r.net.gw.String()}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(r.kubeletPort)}},
		NodeInfo: corev1.NodeSystemInfo{
			KubeletVersion:          "signalbox-podrunner",
			ContainerRuntimeVersion: "local://processes",
			OperatingSystem:         "linux",
			Architecture:            runtime.GOARCH,
		},
	}
}

func (r *runner) registerNode(ctx context.Context) error {
	nodes := r.client.CoreV1().Nodes()
	n, err := nodes.Get(ctx, r.node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		n, err = nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name: r.node,
			Labels: map[string]string{
				"kubernetes.io/hostname": r.node,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     runtime.GOARCH,
			},
		}}, metav1.CreateOptions{})
	}
	if err != nil {
		return fmt.Errorf("node %s: %w", r.node, err)
	}
	// kube-controller-manager edits a new Node at once (annotations, taints): on a conflict,
	// read it again.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if n == nil {
			if n, err = nodes.Get(ctx, r.node, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		n.Status = r.nodeStatus()
		_, err := nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{})
		n = nil
		return err
	})
	if err != nil {
		return fmt.Errorf("node %s status: %w", r.node, err)
	}
	return r.renewLease(ctx)
}

// renewLease is the kubelet's node heartbeat (kube-node-lease/<node>): with it renewed the
// node lifecycle controller keeps the node Ready and never taints it unreachable.
func (r *runner) renewLease(ctx context.Context) error {
	leases := r.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Get(ctx, r.node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		d := int32(40)
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: r.node},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &r.node, LeaseDurationSeconds: &d, RenewTime: &now},
		}, metav1.CreateOptions{})
		return err
	} else if err != nil {
		return err
	}
	l.Spec.RenewTime = &now
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

func (r *runner) heartbeat(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.renewLease(ctx); err != nil && ctx.Err() == nil {
				r.logf("node lease: %v", err)
			}
		}
	}
}

// shutdown stops every pod it runs (their objects stay; a new runner starts them again).
func (r *runner) shutdown() {
	r.mu.Lock()
	all := make([]*podState, 0, len(r.state))
	for _, st := range r.state {
		all = append(all, st)
	}
	r.state = map[string]*podState{}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, st := range all {
		wg.Add(1)
		go func() { defer wg.Done(); r.stop(st, 2*time.Second) }()
	}
	wg.Wait()
	r.logf("stopped %d pods", len(all))
}
