package verifyprom_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/verifyprom"
)

// Register one Collector, give it to the Client and the Verifier, and
// serve the registry. Here a development Verifier without Apple stands in.
func Example() {
	metrics := verifyprom.New()
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics)
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	// In production: apple, _ := verify.NewClient(verify.Config{…, Observer: metrics})
	// and &verify.Verifier{Client: apple, Observer: metrics}.
	v := &verify.Verifier{AllowDev: true, Observer: metrics}
	token := make([]byte, 32)
	rand.Read(token)
	value, _ := header.Encode(header.Value{Kind: header.KindDev, Token: token, GeneratedAt: time.Now()})
	v.Verify(context.Background(), value)
	v.Verify(context.Background(), value) // the same token again

	families, _ := reg.Gather()
	for _, f := range families {
		if f.GetName() != "attestd_verify_checks_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			l := m.GetLabel()
			fmt.Printf("%s{kind=%q,outcome=%q,reason=%q} %v\n", f.GetName(), l[0].GetValue(), l[1].GetValue(), l[2].GetValue(), m.GetCounter().GetValue())
		}
	}
	// Output:
	// attestd_verify_checks_total{kind="dev",outcome="rejected",reason="replay"} 1
	// attestd_verify_checks_total{kind="dev",outcome="valid",reason="none"} 1
}
