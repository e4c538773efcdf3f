// Command podendpoints plays the pods' metrics endpoints for the demo on the local cluster,
// whose kwok pods run no container but each get a loopback IP of their own: it serves
// {"http_server": {"rps": N}} on PORT of every running pod a selector selects, as the
// pods come and go, where N is the total load read from a file, spread evenly over the
// pods served (as a load balancer would).
//
//	podendpoints --namespace NS --selector app=myapp --port 9090 --load-file FILE
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/custompodautoscaler/cpa/internal/kube"
)

func main() {
	ns := flag.String("namespace", "default", "namespace of the pods")
	selector := flag.String("selector", "", "label selector of the pods")
	port := flag.Int("port", 9090, "port to serve on each pod IP")
	loadFile := flag.String("load-file", "", "file holding the total requests per second to spread over the pods")
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig (default: $KUBECONFIG)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *loadFile == "" || *selector == "" {
		fmt.Fprintln(os.Stderr, "podendpoints: --selector and --load-file are required")
		os.Exit(2)
	}
	cfg, err := kube.RESTConfig(*kubeconfig)
	if err != nil {
		log.Error("cluster access", "err", err)
		os.Exit(1)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Error("client", "err", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	s := &servers{load: *loadFile, byIP: map[string]*http.Server{}, log: log}
	for ctx.Err() == nil {
		pods, err := client.CoreV1().Pods(*ns).List(ctx, metav1.ListOptions{LabelSelector: *selector})
		if err == nil {
			s.sync(pods.Items, *port)
		}
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
	s.sync(nil, *port)
}

// servers are the endpoints being served, by pod IP.
type servers struct {
	load string
	log  *slog.Logger
	mu   sync.Mutex
	byIP map[string]*http.Server
}

func (s *servers) sync(pods []corev1.Pod, port int) {
	want := map[string]string{}
	for _, p := range pods {
		if p.Status.PodIP != "" && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			want[p.Status.PodIP] = p.Name
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for ip, srv := range s.byIP {
		if _, ok := want[ip]; !ok {
			_ = srv.Close()
			delete(s.byIP, ip)
		}
	}
	for ip, name := range want {
		if _, ok := s.byIP[ip]; ok {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			s.log.Warn("cannot serve pod", "pod", name, "ip", ip, "err", err)
			continue
		}
		srv := &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 5 * time.Second}
		s.byIP[ip] = srv
		go func() { _ = srv.Serve(ln) }()
		s.log.Info("serving pod metrics", "pod", name, "url", fmt.Sprintf("http://%s/metrics", ln.Addr()))
	}
}

func (s *servers) serve(w http.ResponseWriter, _ *http.Request) {
	b, err := os.ReadFile(s.load)
	total, perr := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil || perr != nil {
		http.Error(w, "no load", http.StatusServiceUnavailable)
		return
	}
	s.mu.Lock()
	n := len(s.byIP)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"http_server": {"rps": %.1f}}`, total/float64(max(n, 1)))
}
