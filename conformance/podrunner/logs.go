package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Container logs are kept as the kubelet keeps them (the CRI log format): one line per
// line of output, "<RFC3339Nano time> <stdout|stderr> <F|P> <text>", P for a line cut at
// maxLine. The time lets the kubelet API answer sinceTime/sinceSeconds.
const maxLine = 16 * 1024

// logFile is one container's log; both streams of every run of it append to it.
type logFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func openLog(path string) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &logFile{path: path, f: f}, nil
}

func (l *logFile) write(stream string, partial bool, text []byte) {
	tag := "F"
	if partial {
		tag = "P"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		_, _ = fmt.Fprintf(l.f, "%s %s %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), stream, tag, text)
	}
}

func (l *logFile) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
}

// pipe returns the write end to give a child as stdout or stderr; what it writes is copied
// into the log until every holder of the write end closed it (wg.Done then).
func (l *logFile) pipe(stream string, wg *sync.WaitGroup) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer r.Close()
		br := bufio.NewReaderSize(r, maxLine)
		for {
			line, isPrefix, err := br.ReadLine()
			if len(line) > 0 || (err == nil && !isPrefix) {
				l.write(stream, isPrefix, line)
			}
			if err != nil {
				return
			}
		}
	}()
	return w, nil
}

// serveLogs answers the kubelet API's GET /containerLogs/<namespace>/<pod>/<container>, the
// one the API server proxies `kubectl logs` (pods/log) to, on the node's InternalIP. Options:
// sinceTime, sinceSeconds, timestamps, tailLines, limitBytes, follow (until the container
// exits or the client goes). previous is not kept apart: every run's lines are served.
// Like a kubelet without authentication (the API server here has no kubelet client
// certificate), it serves whoever reaches the bridge address; the certificate is
// self-signed (the API server does not verify it without --kubelet-certificate-authority).
func (r *runner) serveLogs(ctx context.Context, addr string) error {
	cert, err := selfSigned(r.net.gw)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{ns}/{pod}/{container}", r.containerLogs)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("kubelet API on %s: %w", addr, err)
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && err != http.ErrServerClosed {
			r.logf("kubelet API: %v", err)
		}
	}()
	return nil
}

func (r *runner) containerLogs(w http.ResponseWriter, req *http.Request) {
	key := req.PathValue("ns") + "/" + req.PathValue("pod")
	r.mu.Lock()
	st := r.state[key]
	r.mu.Unlock()
	var c *container
	if st != nil {
		for _, x := range st.containers {
			if x.name == req.PathValue("container") {
				c = x
			}
		}
	}
	if c == nil {
		http.Error(w, fmt.Sprintf("container %q of pod %s is not running here", req.PathValue("container"), key), http.StatusNotFound)
		return
	}
	c.mu.Lock()
	path := ""
	if c.log != nil {
		path = c.log.path
	}
	c.mu.Unlock()
	if path == "" {
		http.Error(w, fmt.Sprintf("container %q of pod %s has not started", c.name, key), http.StatusBadRequest)
		return
	}
	q := req.URL.Query()
	var since time.Time
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			http.Error(w, "sinceTime: "+err.Error(), http.StatusBadRequest)
			return
		}
		since = t
	}
	if v := q.Get("sinceSeconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			http.Error(w, "sinceSeconds: not a number of seconds", http.StatusBadRequest)
			return
		}
		since = time.Now().Add(-time.Duration(n) * time.Second)
	}
	timestamps := q.Get("timestamps") == "true"
	follow := q.Get("follow") == "true"
	tail, limit := -1, int64(-1)
	if v := q.Get("tailLines"); v != "" {
		tail, _ = strconv.Atoi(v)
	}
	if v := q.Get("limitBytes"); v != "" {
		limit, _ = strconv.ParseInt(v, 10, 64)
	}

	f, err := os.Open(path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "text/plain")
	var sent int64
	emit := func(line string) bool {
		ts, rest, ok := strings.Cut(line, " ")
		if !ok {
			return true
		}
		_, rest, _ = strings.Cut(rest, " ") // stream
		tag, text, _ := strings.Cut(rest, " ")
		if !since.IsZero() {
			if t, err := time.Parse(time.RFC3339Nano, ts); err == nil && t.Before(since) {
				return true
			}
		}
		out := text
		if tag != "P" {
			out += "\n"
		}
		if timestamps {
			out = ts + " " + out
		}
		if limit >= 0 && sent+int64(len(out)) > limit {
			out = out[:max(0, limit-sent)]
		}
		n, err := io.WriteString(w, out)
		sent += int64(n)
		return err == nil && (limit < 0 || sent < limit)
	}
	br := bufio.NewReaderSize(f, maxLine+64)
	var lines []string
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 && strings.HasSuffix(line, "\n") {
			lines = append(lines, strings.TrimSuffix(line, "\n"))
		}
		if err != nil {
			break
		}
	}
	if tail >= 0 && len(lines) > tail {
		lines = lines[len(lines)-tail:]
	}
	for _, l := range lines {
		if !emit(l) {
			return
		}
	}
	if !follow {
		return
	}
	flusher, _ := w.(http.Flusher)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var pending string
	for {
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-req.Context().Done():
			return
		case <-tick.C:
		}
		for {
			chunk, err := br.ReadString('\n')
			pending += chunk
			if err != nil {
				break
			}
			if !emit(strings.TrimSuffix(pending, "\n")) {
				return
			}
			pending = ""
		}
		c.mu.Lock()
		exited := !c.running
		c.mu.Unlock()
		if exited {
			return
		}
	}
}

func selfSigned(ip interface{ String() string }) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "signalbox-podrunner"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP(ip.String())},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
