package gate

import (
	"net/http"
	"time"

	"github.com/attestd/attestd/verify/verifyprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// The routes a request can take, the metrics' handler label.
const (
	routeAuth     = "auth"     // forward-auth: /auth and below
	routeProxy    = "proxy"    // proxy mode: checked, then forwarded
	routeMount    = "mount"    // a handler of Config.Mount
	routeHealthz  = "healthz"  // /healthz
	routeReadyz   = "readyz"   // /readyz
	routeMetrics  = "metrics"  // /metrics
	routeNotFound = "notfound" // anything else
)

// httpMetrics are the gate's own metrics, beside verifyprom's:
//
//	attestd_gate_requests_total{handler, code}          counter
//	attestd_gate_request_duration_seconds{handler}      histogram
//	attestd_gate_open_streams                           gauge
//
// handler is one of the routes above; code is the status when the gate
// itself sends it (101, 200, 204, 400, 401, 403, 404, 429, 431, 500,
// 502, 503, 504), else its class (1xx … 5xx), or "none" when no answer
// was written (the client went away). A websocket's duration is not
// observed: it is the whole session.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer, s *streams) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "attestd_gate_requests_total",
			Help: "Requests the gate answered, by route (auth, proxy, mount, healthz, readyz, metrics, notfound) and status.",
		}, []string{"handler", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "attestd_gate_request_duration_seconds",
			Help:    "How long the gate took to answer, by route (websocket sessions not counted).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"handler"}),
	}
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "attestd_gate_open_streams",
		Help: "Connections taken over after an upgrade (websockets) that are open now.",
	}, func() float64 { return float64(s.open()) })
	for _, c := range []prometheus.Collector{m.requests, m.duration, open} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// newRegistry returns a registry with the Go runtime's and the process's
// collectors, for a Config without one.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// observe counts one answered request.
func (m *httpMetrics) observe(route string, w *recorder, elapsed time.Duration) {
	m.requests.WithLabelValues(route, codeLabel(w.status)).Inc()
	if !w.hijacked {
		m.duration.WithLabelValues(route).Observe(elapsed.Seconds())
	}
}

// gateCodes are the statuses the gate sends itself, each its own label.
var gateCodes = map[int]string{
	101: "101", 200: "200", 204: "204", 400: "400", 401: "401", 403: "403", 404: "404",
	429: "429", 431: "431", 500: "500", 502: "502", 503: "503", 504: "504",
}

// codeLabel returns the code label for status (StatusLabel over the
// statuses a gate answers with), whatever an upstream sends.
func codeLabel(status int) string { return verifyprom.StatusLabel(status, gateCodes) }

// instrument wraps h: the handler it runs gets a recorder, and its answer
// is counted under route.
func (g *Gate) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, streams: g.streams}
		defer func() { g.metrics.observe(route, rec, time.Since(start)) }()
		h.ServeHTTP(rec, r)
	})
}
